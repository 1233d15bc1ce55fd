from __future__ import annotations

from django.urls import path

from notifications.api import views

urlpatterns = [
    path("events/", views.EventStreamApi.as_view(), name="api_events"),
    path("webhooks/", views.WebhookListCreateApi.as_view(), name="api_webhooks"),
    path(
        "webhooks/<int:endpoint_id>/", views.WebhookDeleteApi.as_view(), name="api_webhook_delete"
    ),
]
