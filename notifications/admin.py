"""Staff see the outbox, the endpoints and every delivery; none of it is edited by hand."""

from __future__ import annotations

from typing import TypeVar

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest

from batchsite.json_tables import json_table
from notifications.models import Event, WebhookDelivery, WebhookEndpoint

_M = TypeVar("_M", bound=Model)


class ReadOnlyAdmin(admin.ModelAdmin[_M]):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin[Event]):
    list_display = ("kind", "key", "user", "created_at", "emailed_at", "dispatched_at")
    list_filter = ("kind",)
    search_fields = ("key", "user__email")
    list_select_related = ("user",)
    exclude = ("payload",)
    readonly_fields = ("payload_table",)

    @admin.display(description="payload")
    def payload_table(self, event: Event) -> str:
        return json_table(event.payload)


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ReadOnlyAdmin[WebhookEndpoint]):
    list_display = ("url", "user", "events", "created_at")
    search_fields = ("url", "user__email")
    list_select_related = ("user",)
    exclude = ("secret", "events")
    readonly_fields = ("events_list",)

    @admin.display(description="events")
    def events_list(self, endpoint: WebhookEndpoint) -> str:
        return json_table(endpoint.events)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin[WebhookDelivery]):
    list_display = (
        "event",
        "endpoint",
        "status",
        "attempts",
        "response_status",
        "next_attempt_at",
        "delivered_at",
    )
    list_filter = ("status",)
    search_fields = ("endpoint__url", "endpoint__user__email")
    list_select_related = ("event", "endpoint")
