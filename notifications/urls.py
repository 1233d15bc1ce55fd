from __future__ import annotations

from django.urls import path

from notifications import views

# Mounted at /settings/webhooks/: a section of the settings page, whose names it shares.
urlpatterns = [
    path("", views.webhook_new, name="settings_webhook_new"),
    path("<int:endpoint_id>/delete/", views.webhook_delete, name="settings_webhook_delete"),
    path("<int:endpoint_id>/ping/", views.webhook_ping_send, name="settings_webhook_ping"),
    path(
        "deliveries/<int:delivery_id>/redeliver/",
        views.webhook_delivery_redeliver,
        name="settings_webhook_redeliver",
    ),
]
