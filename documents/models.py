from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import models
from django.template.defaultfilters import pluralize
from django.utils import timezone
from django.utils.formats import date_format


class DocumentStatus(models.TextChoices):
    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"


class Document(models.Model):
    """One uploaded file and everything Sheaf learns from it. The table is the ledger of work."""

    Status = DocumentStatus

    TERMINAL_STATUSES = (Status.COMPLETED, Status.FAILED, Status.CANCELED)
    # Documents in these states give their monthly quota back.
    REFUNDED_STATUSES = (Status.FAILED, Status.CANCELED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    batch = models.ForeignKey(
        "batches.BatchProcess", on_delete=models.CASCADE, related_name="documents"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="documents"
    )
    original_filename = models.CharField(max_length=255, help_text="For display only.")
    file = models.FileField(max_length=500, blank=True)
    file_removed_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the original file was deleted (retention); text and result are kept.",
    )
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    content_type = models.CharField(max_length=100)
    page_count = models.PositiveIntegerField(null=True, blank=True)
    text = models.TextField(blank=True)
    text_truncated = models.BooleanField(default=False)
    read_at = models.DateTimeField(
        null=True, blank=True, help_text="When the text was read; a retry does not read again."
    )
    einvoice_xml = models.TextField(
        blank=True,
        help_text="The e-invoice XML the read found (an uploaded UBL or CII file, or the XML a "
        "PDF carries), checked and kept so every run maps its fields without reading again.",
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    lease_token = models.UUIDField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(default=timezone.now, null=True, blank=True)
    quota_month = models.DateField(
        null=True, blank=True, help_text="The month this document's quota was reserved in."
    )
    error_code = models.CharField(max_length=32, blank=True)
    error_message = models.TextField(blank=True)
    result = models.JSONField(null=True, blank=True)
    # Kept with the result so that the batch page's "verified" share is a SUM, not a read of
    # every result on each poll.
    values_found = models.PositiveIntegerField(
        null=True, blank=True, help_text="Fields of the result with a value."
    )
    values_verified = models.PositiveIntegerField(
        null=True, blank=True, help_text="Of those, values whose quote was found in the text."
    )
    cost_usd = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    estimated_cost_usd = models.DecimalField(
        max_digits=12, decimal_places=6, null=True, blank=True, help_text="Set once it is read."
    )
    usage = models.JSONField(null=True, blank=True, help_text="Tokens the engine reported.")
    provider_batch_id = models.CharField(
        max_length=100,
        blank=True,
        help_text="Economy lane: the provider's message batch this document was sent in, or "
        "'fallback' when it returned to the standard path.",
    )
    reused_from = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="An earlier identical document whose result was reused at no cost.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="document_claimable"),
            models.Index(fields=["batch", "status"], name="document_batch_status"),
            models.Index(fields=["user", "created_at"], name="document_user_created"),
            models.Index(fields=["sha256"], name="document_sha256"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=DocumentStatus.values),
                name="document_status_valid",
            ),
            models.CheckConstraint(
                condition=~models.Q(status="processing") | models.Q(lease_token__isnull=False),
                name="document_processing_has_lease",
            ),
        ]

    def __str__(self) -> str:
        return self.original_filename

    @property
    def is_terminal(self) -> bool:
        return self.status in self.TERMINAL_STATUSES

    @property
    def original_removed_notice(self) -> str:
        """Why an original is gone, e.g. "original removed after 30 days, on Nov. 24, 2026"
        ("" while it is kept)."""
        if self.file_removed_at is None:
            return ""
        days = settings.SHEAF_RETENTION_DAYS
        after = f" after {days} day{pluralize(days)}" if days else ""
        on = date_format(timezone.localtime(self.file_removed_at), "DATE_FORMAT")
        return f"original removed{after}, on {on}"

    @property
    def extension(self) -> str:
        name = self.file.name or ""
        return name.rsplit(".", 1)[-1] if "." in name else ""

    @staticmethod
    def storage_path(*, user_id: int, batch_id: uuid.UUID, document_id: uuid.UUID, ext: str) -> str:
        """Where an upload is stored: never derived from the client's filename."""
        return f"uploads/{user_id}/{batch_id}/{document_id}.{ext}"


def result_value_counts(result: dict[str, Any] | None) -> tuple[int, int]:
    """(values found, values verified) of a result in the shape of DESIGN.md "Results"."""
    found = verified = 0
    for cell in (result or {}).get("fields", {}).values():
        if isinstance(cell, dict) and cell.get("value") is not None:
            found += 1
            verified += bool(cell.get("verified"))
    return found, verified
