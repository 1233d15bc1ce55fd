from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from batchsite import api
from batchsite import views as site_views

handler400 = api.bad_request
handler403 = api.permission_denied
handler404 = api.page_not_found
handler500 = api.server_error

urlpatterns = [
    path("", include("accounts.urls")),
    path("settings/webhooks/", include("notifications.urls")),
    path("dashboard/", include("batches.urls")),
    path("billing/", include("accounts.billing.urls")),
    path("accounts/", include("allauth.urls")),
    path("admin/overview/", site_views.staff_overview, name="staff_overview"),
    path("admin/", admin.site.urls),
    path("healthz", site_views.healthz, name="healthz"),
    path("favicon.ico", site_views.favicon, name="favicon"),
    path("metrics", site_views.metrics, name="metrics"),
    path("api/v1/", include("batches.api.urls")),
    path("api/v1/", include("accounts.api.urls")),
    path("api/v1/", include("notifications.api.urls")),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="api_schema"),
    path(
        "api/v1/docs/",
        SpectacularSwaggerView.as_view(url_name="api_schema", template_name="api/docs.html"),
        name="api_docs",
    ),
]
