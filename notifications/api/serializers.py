from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from notifications.models import DEFAULT_WEBHOOK_EVENTS, SUBSCRIBABLE_EVENTS, WebhookEndpoint


class WebhookEndpointOutputSerializer(serializers.Serializer[WebhookEndpoint]):
    id = serializers.IntegerField()
    url = serializers.URLField()
    events = serializers.ListField(child=serializers.ChoiceField(choices=SUBSCRIBABLE_EVENTS))
    created_at = serializers.DateTimeField()


class WebhookEndpointCreatedOutputSerializer(WebhookEndpointOutputSerializer):
    secret = serializers.CharField(
        help_text="Signs every delivery (Sheaf-Signature). Shown this once."
    )


@extend_schema_field({"type": "string", "enum": list(SUBSCRIBABLE_EVENTS)})
class EventNameField(serializers.CharField):
    """Documented as the event names; any string reaches the service, whose message lists them."""


class WebhookEndpointCreateInputSerializer(serializers.Serializer[None]):
    # A plain string: the service says what is wrong with it (scheme, private address, ...).
    url = serializers.CharField(max_length=500, help_text="http:// or https://, a public address.")
    events = serializers.ListField(
        child=EventNameField(),
        required=False,
        help_text=f"Any of {', '.join(SUBSCRIBABLE_EVENTS)}; when left out: "
        f"{', '.join(DEFAULT_WEBHOOK_EVENTS)}.",
    )
