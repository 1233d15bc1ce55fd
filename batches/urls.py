from __future__ import annotations

from django.urls import path

from batches import document_views, draft_views, field_views, views

urlpatterns = [
    path("", views.batch_list, name="dashboard"),
    path("batch-upload/", views.batch_upload, name="batch_upload"),
    path("sample/", views.batch_sample_new, name="batch_sample_new"),
    path("batch-upload/try/", field_views.batch_trial, name="batch_trial"),
    path("trials/<uuid:document_id>/", field_views.document_trial, name="document_trial"),
    path("fields/check/", field_views.fields_check, name="fields_check"),
    path("templates/", field_views.field_template_list, name="field_templates"),
    path(
        "templates/<uuid:template_id>/delete/",
        field_views.field_template_delete,
        name="field_template_delete",
    ),
    path(
        "batches/<uuid:batch_id>/save-template/",
        field_views.field_template_save,
        name="field_template_save",
    ),
    path("batch-upload/files/", draft_views.draft_file_add, name="draft_file_add"),
    path(
        "batch-upload/files/<int:file_id>/",
        draft_views.draft_file_remove,
        name="draft_file_remove",
    ),
    path("batches/<uuid:batch_id>/", views.batch_detail, name="batch_detail"),
    path("batches/<uuid:batch_id>/delete/", views.batch_delete, name="batch_delete"),
    path("batches/<uuid:batch_id>/review/", document_views.batch_review, name="batch_review"),
    path("batches/<uuid:batch_id>/progress/", views.batch_progress, name="batch_progress"),
    path("batches/<uuid:batch_id>/cancel/", views.batch_cancel, name="batch_cancel"),
    path("batches/<uuid:batch_id>/retry/", views.batch_retry, name="batch_retry"),
    path("batches/<uuid:batch_id>/runs/", views.batch_run_start, name="batch_run_start"),
    path("batches/<uuid:batch_id>/runs/<int:number>/", views.batch_run, name="batch_run"),
    path(
        "batches/<uuid:batch_id>/runs/<int:number>/keep/",
        views.batch_run_keep,
        name="batch_run_keep",
    ),
    path("batches/<uuid:batch_id>/budget/", views.batch_budget, name="batch_budget"),
    path("batches/<uuid:batch_id>/export/<str:fmt>/", views.batch_export, name="batch_export"),
    path("documents/<uuid:document_id>/", document_views.document_detail, name="document_detail"),
    path(
        "documents/<uuid:document_id>/pages/<int:number>/",
        document_views.document_page,
        name="document_page",
    ),
    path(
        "documents/<uuid:document_id>/replace/",
        document_views.document_replace,
        name="document_replace",
    ),
    path(
        "documents/<uuid:document_id>/review/",
        document_views.document_review,
        name="document_review",
    ),
    path("documents/<uuid:document_id>/rerun/", views.document_rerun, name="document_rerun"),
    path(
        "documents/<uuid:document_id>/original/",
        views.document_original,
        name="document_original",
    ),
]
