from __future__ import annotations

from django.urls import path

from batches import views

urlpatterns = [
    path("", views.batch_list, name="dashboard"),
    path("batch-upload/", views.batch_upload, name="batch_upload"),
    path("batches/<uuid:batch_id>/", views.batch_detail, name="batch_detail"),
    path("batches/<uuid:batch_id>/delete/", views.batch_delete, name="batch_delete"),
    path(
        "documents/<uuid:document_id>/original/",
        views.document_original,
        name="document_original",
    ),
]
