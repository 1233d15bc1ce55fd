from __future__ import annotations

from django.urls import path

from batches.api import runs, views

urlpatterns = [
    path("batches/", views.BatchListCreateApi.as_view(), name="api_batches"),
    path("batches/<uuid:batch_id>/", views.BatchDetailApi.as_view(), name="api_batch"),
    path("batches/<uuid:batch_id>/retry/", views.BatchRetryApi.as_view(), name="api_batch_retry"),
    path(
        "batches/<uuid:batch_id>/cancel/", views.BatchCancelApi.as_view(), name="api_batch_cancel"
    ),
    path(
        "batches/<uuid:batch_id>/results/",
        views.BatchResultsApi.as_view(),
        name="api_batch_results",
    ),
    path("batches/<uuid:batch_id>/runs/", runs.BatchRunsApi.as_view(), name="api_batch_runs"),
    path(
        "batches/<uuid:batch_id>/runs/<int:number>/diff/",
        runs.BatchRunDiffApi.as_view(),
        name="api_batch_run_diff",
    ),
    path(
        "batches/<uuid:batch_id>/runs/<int:number>/keep/",
        runs.BatchRunKeepApi.as_view(),
        name="api_batch_run_keep",
    ),
    path("documents/<uuid:document_id>/", views.DocumentDetailApi.as_view(), name="api_document"),
    path(
        "documents/<uuid:document_id>/original/",
        views.DocumentOriginalApi.as_view(),
        name="api_document_original",
    ),
    path(
        "documents/<uuid:document_id>/review/",
        views.DocumentReviewApi.as_view(),
        name="api_document_review",
    ),
]
