from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts import views as account_views
from batchsite import api
from batchsite import views as site_views

handler400 = api.bad_request
handler403 = api.permission_denied
handler404 = api.page_not_found
handler500 = api.server_error

urlpatterns = [
    path("", account_views.home, name="home"),
    path("pricing/", account_views.pricing, name="pricing"),
    path("settings/", account_views.account_settings, name="settings"),
    path("settings/keys/", account_views.api_key_new, name="settings_key_new"),
    path(
        "settings/keys/<int:key_id>/revoke/",
        account_views.api_key_delete,
        name="settings_key_revoke",
    ),
    path("settings/delete/", account_views.account_delete, name="settings_account_delete"),
    path(
        "settings/notifications/",
        account_views.notifications_update,
        name="settings_notifications",
    ),
    path("settings/webhooks/", account_views.webhook_new, name="settings_webhook_new"),
    path(
        "settings/webhooks/<int:endpoint_id>/delete/",
        account_views.webhook_delete,
        name="settings_webhook_delete",
    ),
    path("dashboard/", include("batches.urls")),
    path("billing/", include("accounts.billing.urls")),
    path("accounts/", include("allauth.urls")),
    path("admin/overview/", site_views.staff_overview, name="staff_overview"),
    path("admin/", admin.site.urls),
    path("healthz", site_views.healthz, name="healthz"),
    path("api/v1/", include("batches.api.urls")),
    path("api/v1/", include("accounts.api.urls")),
    path("api/v1/", include("notifications.api.urls")),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="api_schema"),
    path("api/v1/docs/", SpectacularSwaggerView.as_view(url_name="api_schema"), name="api_docs"),
]
