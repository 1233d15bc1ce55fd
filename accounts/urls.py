from __future__ import annotations

from django.urls import path

from accounts import views

# No app_name: every app's URL names are site-wide (`dashboard`, `billing`, allauth's
# `account_login`), and one namespaced app would give templates two schemes to remember.
urlpatterns = [
    path("", views.home, name="home"),
    path("pricing/", views.pricing, name="pricing"),
    path("settings/", views.account_settings, name="settings"),
    path("settings/keys/", views.api_key_new, name="settings_key_new"),
    path("settings/keys/<int:key_id>/revoke/", views.api_key_delete, name="settings_key_revoke"),
    path("settings/delete/", views.account_delete, name="settings_account_delete"),
    path("settings/notifications/", views.notifications_update, name="settings_notifications"),
]
