from __future__ import annotations

from django.urls import path

from accounts.api import views

urlpatterns = [
    path("me/", views.MeApi.as_view(), name="api_me"),
    path("keys/", views.ApiKeyListCreateApi.as_view(), name="api_keys"),
    path("keys/<int:key_id>/", views.ApiKeyRevokeApi.as_view(), name="api_key_revoke"),
]
