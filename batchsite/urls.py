from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from accounts import views as account_views

urlpatterns = [
    path("", account_views.home, name="home"),
    path("pricing/", account_views.pricing, name="pricing"),
    path("settings/", account_views.account_settings, name="settings"),
    path("dashboard/", include("batches.urls")),
    path("billing/", include("accounts.billing.urls")),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
]
