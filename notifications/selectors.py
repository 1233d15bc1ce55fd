"""Owner-scoped reads of webhook endpoints and their deliveries."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from accounts.models import User
from notifications.models import WebhookDelivery, WebhookEndpoint


def webhook_endpoint_list_for_user(*, user: User) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(user=user).order_by("-created_at", "-pk")


def webhook_endpoint_get_for_user(*, user: User, endpoint_id: int) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.filter(user=user, pk=endpoint_id).first()
    if endpoint is None:
        raise Http404("No such webhook endpoint.")
    return endpoint


def webhook_delivery_list_for_user(*, user: User, limit: int = 20) -> list[WebhookDelivery]:
    """The user's latest deliveries, newest first, for the delivery log."""
    return list(
        WebhookDelivery.objects.filter(endpoint__user=user)
        .select_related("endpoint", "event")
        .order_by("-created_at", "-pk")[:limit]
    )


def webhook_delivery_get_for_user(*, user: User, delivery_id: int) -> WebhookDelivery:
    delivery = (
        WebhookDelivery.objects.filter(endpoint__user=user, pk=delivery_id)
        .select_related("endpoint", "event")
        .first()
    )
    if delivery is None:
        raise Http404("No such webhook delivery.")
    return delivery
