from __future__ import annotations

import uuid
from dataclasses import dataclass
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


class ErrorKind(models.TextChoices):
    """Why a document's last attempt failed, as stored with its error (DESIGN.md "Errors").

    The first three are the engines' kinds (`extraction.contract.ErrorKind`); `gave_up` is a
    transient error that spent the document's attempts (or its time waiting out rate limits):
    a retry may well succeed, where a permanent one would fail again.
    """

    PERMANENT = "permanent"
    TRANSIENT = "transient"
    CRITICAL = "critical", "Critical (provider unavailable)"
    GAVE_UP = "gave_up", "Gave up"


class Document(models.Model):
    """One uploaded file and everything Sheaf learns from it. The table is the ledger of work."""

    Status = DocumentStatus
    ErrorKind = ErrorKind

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
    # The run the document was last sent to (the worker reads its prompt and fields from it).
    run = models.ForeignKey(
        "batches.Run", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
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
    read_result = models.FileField(
        max_length=500,
        blank=True,
        help_text="What the read gave (each page's size, text and words with boxes, the "
        "e-invoice XML), gzip JSON beside the original; removed with it.",
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    lease_token = models.UUIDField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(default=timezone.now, null=True, blank=True)
    rate_limited_since = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the provider's rate limit began holding this document back (its 429s "
        "spend no attempt); cleared by any other outcome.",
    )
    quota_month = models.DateField(
        null=True, blank=True, help_text="The month this document's quota was reserved in."
    )
    error_code = models.CharField(max_length=32, blank=True)
    error_message = models.TextField(blank=True)
    error_kind = models.CharField(
        max_length=16,
        choices=ErrorKind.choices,
        blank=True,
        help_text="The kind of the error; blank without one, and for a canceled document.",
    )
    result = models.JSONField(null=True, blank=True)
    # Kept with the result so that the batch page's counts of values are SUMs, not a read of
    # every result on each poll.
    values_total = models.PositiveIntegerField(
        null=True, blank=True, help_text="Fields of the result, with a value or without."
    )
    values_found = models.PositiveIntegerField(
        null=True, blank=True, help_text="Fields of the result with a value."
    )
    values_verified = models.PositiveIntegerField(
        null=True, blank=True, help_text="Of those, values whose quote was found in the text."
    )
    # One counter per value status (VALUE_STATUSES); null until the document has a result.
    count_found = models.PositiveIntegerField(
        null=True, blank=True, help_text="Values whose quote was located on their page."
    )
    count_checked = models.PositiveIntegerField(
        null=True, blank=True, help_text="Values found that also passed an arithmetic check."
    )
    count_unverified = models.PositiveIntegerField(
        null=True, blank=True, help_text="Values whose quote was not found in the text."
    )
    count_invalid = models.PositiveIntegerField(
        null=True, blank=True, help_text="Answers that did not validate (value null)."
    )
    count_missing = models.PositiveIntegerField(
        null=True, blank=True, help_text="Fields without a value."
    )
    ocr_confidence = models.FloatField(
        null=True,
        blank=True,
        help_text="The lowest mean word confidence (0-100) of its pages read by OCR; null when "
        "no page was.",
    )
    reviews = models.JSONField(
        default=dict,
        blank=True,
        help_text="A person's corrections and confirmations, by field name: {value, by, at}. "
        "Kept apart from the machine's result (a re-run never overwrites them); they win over "
        "it in exports and the API.",
    )
    reviewed_at = models.DateTimeField(
        null=True, blank=True, help_text="When a value was last reviewed; null without reviews."
    )
    cost_usd = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    estimated_cost_usd = models.DecimalField(
        max_digits=12, decimal_places=6, null=True, blank=True, help_text="Set once it is read."
    )
    in_flight_usd = models.DecimalField(
        max_digits=12,
        decimal_places=6,
        null=True,
        blank=True,
        help_text="What its current attempt is expected to cost, set when a batch with a budget "
        "dispatches it; counts against the budget while it is processing.",
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
            # The check for an identical earlier document (same user, same bytes) before a paid
            # call: with only the user's index, SQLite read every document of the user for it.
            models.Index(fields=["user", "sha256"], name="document_user_sha256"),
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
    def reviewed_result(self) -> dict[str, Any] | None:
        """The result as the API and exports show it: each field's `review` (or null) beside
        the machine's value."""
        return result_with_reviews(self.result, self.reviews)

    @property
    def is_terminal(self) -> bool:
        return self.status in self.TERMINAL_STATUSES

    @property
    def error(self) -> dict[str, str | None] | None:
        """The error as the API, the exports and webhooks show it: `{"code", "message",
        "kind"}` (kind null for a canceled document), or None without one."""
        if not self.error_code:
            return None
        return {
            "code": self.error_code,
            "message": self.error_message,
            "kind": self.error_kind or None,
        }

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

    @property
    def read_result_path(self) -> str:
        """Where its read result is stored: beside the original, named after the document."""
        return f"uploads/{self.user_id}/{self.batch_id}/{self.pk}.read.json.gz"


# The per-status counters, in the order a user reads them (DESIGN.md "Results").
VALUE_STATUSES = ("found", "checked", "unverified", "invalid", "missing")


@dataclass(frozen=True)
class ValueCounts:
    """How many fields a result has, how many have a value, how many of those were found in
    the document's text (the others' quotes were not), and how many values have each status."""

    total: int
    found: int
    verified: int
    statuses: dict[str, int]


def value_status(cell: dict[str, Any]) -> str:
    """A cell's status; a result stored before statuses existed gets the one it would have had."""
    status = cell.get("status")
    if status in VALUE_STATUSES:
        return str(status)
    if cell.get("value") is None:
        return "missing"
    return "found" if cell.get("verified") else "unverified"


def result_value_counts(result: dict[str, Any] | None) -> ValueCounts:
    """The counts of a result in the shape of DESIGN.md "Results"."""
    total = found = verified = 0
    statuses = dict.fromkeys(VALUE_STATUSES, 0)
    for cell in (result or {}).get("fields", {}).values():
        if not isinstance(cell, dict):
            continue
        total += 1
        statuses[value_status(cell)] += 1
        if cell.get("value") is not None:
            found += 1
            verified += bool(cell.get("verified"))
    return ValueCounts(total=total, found=found, verified=verified, statuses=statuses)


def result_with_reviews(
    result: dict[str, Any] | None, reviews: dict[str, Any] | None
) -> dict[str, Any] | None:
    """`result` with each field's review from `reviews` (null for a field nobody reviewed)."""
    if not isinstance(result, dict):
        return result
    fields = result.get("fields")
    if not isinstance(fields, dict):
        return result
    reviews = reviews or {}
    return {
        **result,
        "fields": {
            name: {**cell, "review": reviews.get(name)} if isinstance(cell, dict) else cell
            for name, cell in fields.items()
        },
    }
