"""The outbox of things that happened to batches, and where they are sent (owner emails and
outgoing webhooks)."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.db import models


class EventKind(models.TextChoices):
    """The catalogue of events: what webhooks subscribe to and live clients receive (the README's
    "Events" lists each one's payload)."""

    BATCH_STARTED = "batch.started"
    BATCH_PROGRESS = "batch.progress"
    DOCUMENT_COMPLETED = "document.completed"
    DOCUMENT_FAILED = "document.failed"
    BATCH_PAUSED = "batch.paused"
    BATCH_RESUMED = "batch.resumed"
    BATCH_COMPLETED = "batch.completed"
    BATCH_FAILED = "batch.failed"
    BATCH_CANCELED = "batch.canceled"
    # "Send a test event" on the settings page: sent to one endpoint on request, never
    # subscribed to.
    PING = "ping"


# What an endpoint may subscribe to: every event but `ping`.
SUBSCRIBABLE_EVENTS = tuple(kind.value for kind in EventKind if kind != EventKind.PING)


# What a webhook endpoint gets when it names no events: the outcomes a person acts on, not the
# stream of progress and per-document completions (those it can subscribe to by name).
DEFAULT_WEBHOOK_EVENTS = (
    EventKind.BATCH_COMPLETED,
    EventKind.BATCH_FAILED,
    EventKind.BATCH_PAUSED,
    EventKind.DOCUMENT_FAILED,
)


class Event(models.Model):
    """One row of the transactional outbox, written in the transaction of the state change that
    causes it; dispatched (email, webhook deliveries) after commit or by the sweep."""

    Kind = EventKind

    kind = models.CharField(max_length=32, choices=Kind.choices)
    # What makes the event happen once: "batch:<id>:finish:<finish_seq>" for a batch finish,
    # "document:<id>:failed:<completed_at>" for a document that failed for good,
    # "batch:<id>:paused:<budget_paused_at>" for a batch its budget paused.
    key = models.CharField(max_length=160, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_events"
    )
    # The payload carries everything a receiver needs, so a deleted batch leaves its events.
    batch = models.ForeignKey(
        "batches.BatchProcess", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    document = models.ForeignKey(
        "documents.Document", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    payload = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    # A dispatcher holds the event until `claimed_until`; one that died lets it go by itself.
    claimed_until = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                fields=["created_at"],
                condition=models.Q(dispatched_at__isnull=True),
                name="event_undispatched",
            ),
            # A live client resuming after `last_event_id`: its user's events since.
            models.Index(fields=["user", "id"], name="event_user_since"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.key}"

    @property
    def body(self) -> dict[str, Any]:
        """The event as webhooks, the WebSocket and server-sent events all send it:
        ``{"id", "type", "created_at", "data"}``, the id a rising whole number (the one
        ``last_event_id`` takes)."""
        return {"id": self.pk, **self.payload}


class WebhookEndpoint(models.Model):
    """A URL of the user's that receives signed POSTs for the events it subscribes to."""

    URL_MAX_LENGTH = 500

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webhook_endpoints"
    )
    url = models.CharField(max_length=URL_MAX_LENGTH, help_text="http(s), public addresses only.")
    events = models.JSONField(default=list, help_text="Event kinds, e.g. ['batch.completed'].")
    # Kept in clear: it signs every delivery. Shown to the user once, when created.
    secret = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.url


class WebhookDelivery(models.Model):
    """One event to one endpoint: attempted until a 2xx answer or the attempts run out."""

    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    # Due time while pending; while an attempt runs, pushed ahead as its lease.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event"], name="delivery_once_per_endpoint")
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(status="pending"),
                name="delivery_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event.kind} → {self.endpoint.url}"

    @property
    def payload_text(self) -> str:
        """The JSON body it sends (the same on every attempt), indented for people to read."""
        return json.dumps(self.event.body, indent=2, ensure_ascii=False)
