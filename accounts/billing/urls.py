from __future__ import annotations

from django.urls import path

from accounts.billing import views

urlpatterns = [
    path("", views.billing, name="billing"),
    path("checkout/", views.billing_checkout, name="billing_checkout"),
    path("portal/", views.billing_portal, name="billing_portal"),
    path("webhook/", views.billing_webhook, name="billing_webhook"),
]
