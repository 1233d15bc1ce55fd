from __future__ import annotations

import uuid
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.plans import PlanKey


class BatchStatus(models.TextChoices):
    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    COMPLETED_WITH_ERRORS = "completed_with_errors", "Completed with errors"
    FAILED = "failed"
    CANCELED = "canceled"


class BatchProcess(models.Model):
    """A submission of documents with one prompt and one field list."""

    Status = BatchStatus

    class Mode(models.TextChoices):
        STANDARD = "standard"
        ECONOMY = "economy"

    class Engine(models.TextChoices):
        LOCAL = "local", "Offline (local)"
        ANTHROPIC = "anthropic", "Claude (Anthropic)"

    TERMINAL_STATUSES = (
        Status.COMPLETED,
        Status.COMPLETED_WITH_ERRORS,
        Status.FAILED,
        Status.CANCELED,
    )

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="batches"
    )
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    extraction_prompt = models.TextField()
    fields = models.JSONField(
        default=list,
        blank=True,
        help_text='List of {"name", "type", "description"}; inferred from the prompt when empty.',
    )
    status = models.CharField(max_length=24, choices=Status.choices, default=Status.QUEUED)
    plan = models.CharField(max_length=16, choices=PlanKey.choices, help_text="At submission.")
    priority = models.PositiveSmallIntegerField(help_text="From the plan; higher runs first.")
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.STANDARD)
    engine = models.CharField(max_length=16, choices=Engine.choices)
    paused_reason = models.CharField(max_length=200, blank=True)
    # Dispatching stops when what the batch spent plus the estimates of its documents in flight
    # reaches this (`batches.pipeline.budgets`); null: no budget.
    budget_usd = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    # Set while the budget holds the batch: its queued documents are not due. Each pause is one
    # notification (its time names it).
    budget_paused_at = models.DateTimeField(null=True, blank=True)
    # Derived from document states by `batch_refresh_counts`, never incremented blindly.
    total_documents = models.PositiveIntegerField(default=0)
    processed_documents = models.PositiveIntegerField(default=0)
    failed_documents = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # A scheduled batch: its documents are not due before this (their `next_attempt_at` is set
    # to it at creation). Null: as soon as a worker is free.
    start_at = models.DateTimeField(
        null=True, blank=True, help_text="When it was told to start; null: at once."
    )
    # Claims go to the batch served longest ago first: round-robin between batches of a priority.
    last_claimed_at = models.DateTimeField(null=True, blank=True)
    # An API client's Idempotency-Key: the same key from the same user returns this batch again.
    idempotency_key = models.CharField(max_length=255, blank=True, default="")
    # SHA-256 of the request that made the batch (services.request_fingerprint), so that a key
    # sent again with a different request is refused instead of answered with this batch.
    # Empty for batches made before it was kept: a repeated key then returns the batch.
    request_fingerprint = models.CharField(max_length=64, blank=True, default="")
    # How many times the batch has finished (a retry reopens it): names each finish once, so
    # its notification cannot be recorded twice.
    finish_seq = models.PositiveIntegerField(default=0)
    # The run whose results the batch serves (Document.result is its cache); one column, so a
    # batch has one current run whatever writes race. Null only between the insert of a new
    # batch and its run 1, in the same transaction.
    current_run = models.ForeignKey(
        "Run", on_delete=models.SET_NULL, null=True, blank=True, related_name="current_of"
    )
    # "Try on one document" from the upload page: a one-document batch that counts against the
    # month's documents but is no submission, and is left out of the batch lists and the API.
    is_trial = models.BooleanField(default=False)
    # "Try it with example invoices" on the empty dashboard: a batch of invoices Sheaf draws
    # itself (`batch_sample_create`), outside every plan limit and the month's quota; a user has
    # at most one at a time.
    is_sample = models.BooleanField(default=False)
    # What `batches.checks` found over the current values when the batch last finished (or a
    # review changed a value): duplicates, missing values, outliers, currency mix. Null until
    # then.
    checks = models.JSONField(null=True, blank=True)

    class Meta:
        verbose_name = "batch"
        verbose_name_plural = "batches"
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="batch_user_created"),
            models.Index(fields=["status", "priority"], name="batch_status_priority"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=BatchStatus.values),
                name="batch_status_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(processed_documents__lte=models.F("total_documents")),
                name="batch_processed_within_total",
            ),
            models.UniqueConstraint(
                fields=["user", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="batch_user_idempotency_key",
            ),
            models.UniqueConstraint(
                fields=["user"],
                condition=models.Q(is_sample=True),
                name="batch_one_sample_per_user",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_terminal(self) -> bool:
        return self.status in self.TERMINAL_STATUSES

    @property
    def waits_for_start(self) -> bool:
        """Queued with a start time still ahead: nothing of it is due yet."""
        return (
            self.status == BatchStatus.QUEUED
            and self.start_at is not None
            and self.start_at > timezone.now()
        )

    @property
    def progress_percent(self) -> int:
        if not self.total_documents:
            return 0
        return round(100 * self.processed_documents / self.total_documents)


class FieldTemplate(models.Model):
    """A prompt and field list a user saved to start new batches from. The templates Sheaf ships
    (Invoice, Receipt, Bank statement) are not rows: see `batches.shipped_templates`."""

    NAME_MAX_LENGTH = 100

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="field_templates"
    )
    name = models.CharField(max_length=NAME_MAX_LENGTH)
    prompt = models.TextField()
    fields = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "name"], name="field_template_user_name"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def shipped(self) -> bool:
        return self.user_id is None


class EngineCircuit(models.Model):
    """An open circuit: dispatch to this engine is paused (bad key, no credit) until a probe
    succeeds. No row means the engine is healthy."""

    engine = models.CharField(max_length=32, unique=True)
    reason = models.TextField()
    opened_at = models.DateTimeField(auto_now_add=True)
    next_probe_at = models.DateTimeField()
    probes = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.engine}: {self.reason}"


class HealthProbe(models.Model):
    """One row that `/healthz` rewrites on every probe, so that a node whose database answers
    reads but refuses writes (a read-only replica after a failover, a full disk) reports itself
    unhealthy before it takes uploads it cannot store."""

    checked_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"health probe at {self.checked_at:%Y-%m-%d %H:%M:%S}"


class EconomySubmission(models.Model):
    """Documents on their way to a provider's batch API, recorded before anything is sent, so
    that a worker killed mid-submission never leads to a second paid submission.

    Its documents carry `submitting:<id>` in `provider_batch_id` until the provider's batch id
    replaces it. `custom_ids` (the requests' ids, one per document) is stored before the request
    goes out; a submission left behind (past `reconcile_after`) is matched against the
    provider's own list of batches by those ids before anything is sent again. No row: nothing
    is on its way.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    engine = models.CharField(max_length=32)
    custom_ids = models.JSONField(
        default=list, blank=True, help_text="Empty while the requests are being prepared."
    )
    created_at = models.DateTimeField(
        help_text="When it was recorded: the provider's batch holding it is created after."
    )
    reconcile_after = models.DateTimeField(
        help_text="When a submitter that has not finished is presumed dead."
    )

    def __str__(self) -> str:
        return f"{self.engine}: {len(self.custom_ids)} request(s) since {self.created_at}"


class Run(models.Model):
    """One extraction of a batch's documents with one prompt and field list; the upload is run 1.

    The batch's current run is `BatchProcess.current_run` (one column, so there is always at
    most one); its documents' results are also kept on `Document.result`, which everything reads.
    """

    batch = models.ForeignKey(BatchProcess, on_delete=models.CASCADE, related_name="runs")
    number = models.PositiveIntegerField(help_text="1, 2, … within its batch; the upload is 1.")
    prompt = models.TextField()
    fields = models.JSONField(default=list, blank=True)
    engine = models.CharField(max_length=16, choices=BatchProcess.Engine.choices)
    model = models.CharField(max_length=100, blank=True, help_text="The engine's model, if any.")
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    # A re-run is staged until it finishes: its documents' outcomes go to its rows only, and the
    # batch serves its current run meanwhile; finishing makes it current (a trial never is).
    staged = models.BooleanField(default=False)
    trial = models.BooleanField(
        default=False, help_text="Tried on the reviewed documents only; never made current."
    )
    canceled_at = models.DateTimeField(null=True, blank=True)
    asked = models.JSONField(
        default=list,
        blank=True,
        help_text="The fields asked of the engine when only fields were added; empty: all.",
    )

    class Meta:
        ordering = ["batch", "number"]
        constraints = [
            models.UniqueConstraint(fields=["batch", "number"], name="run_batch_number"),
        ]

    def __str__(self) -> str:
        return f"run {self.number} of {self.batch_id}"

    @property
    def cost_usd(self) -> Decimal:
        """What its documents cost, failed attempts included."""
        total = self.results.aggregate(total=models.Sum("cost_usd"))["total"]
        return total if total is not None else Decimal(0)


class RunResult(models.Model):
    """A document's outcome in one run: its status and error, its result (None when it failed),
    the counts of its values, and what it cost. One row per (run, document): a retry overwrites
    it. A document a run did not extract (a one-document run) has its earlier outcome carried
    into the run when it finishes (`carried`), so every finished run holds every document."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="results")
    document = models.ForeignKey(
        "documents.Document", on_delete=models.CASCADE, related_name="run_results"
    )
    status = models.CharField(max_length=16, blank=True, help_text="Blank in rows kept before.")
    error_code = models.CharField(max_length=32, blank=True)
    error_message = models.TextField(blank=True)
    error_kind = models.CharField(max_length=16, blank=True)
    carried = models.BooleanField(default=False, help_text="Carried from an earlier run.")
    result = models.JSONField(null=True, blank=True)
    values_total = models.PositiveIntegerField(null=True, blank=True)
    values_found = models.PositiveIntegerField(null=True, blank=True)
    values_verified = models.PositiveIntegerField(null=True, blank=True)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    usage = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "document"], name="run_result_run_document"),
        ]

    def __str__(self) -> str:
        return f"{self.document_id} in run {self.run_id}"


class UploadDraft(models.Model):
    """Files uploaded one by one from the upload page, kept until the form is submitted.

    A draft is not a batch: no list, count, quota or API sees it. Submitting makes a batch from
    its files through `batch_create` and deletes it; otherwise it expires with its files a day
    after it was started (`batches.drafts.drafts_expire`)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="upload_drafts"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # Set while a submission makes a batch of it, so a second submission cannot use it too.
    submitted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "created_at"], name="draft_user_created")]

    def __str__(self) -> str:
        return f"upload draft {self.pk}"


class DraftFile(models.Model):
    """One file of a draft, checked as an upload is and stored as an original is, under
    ``uploads/<user>/drafts/<draft>/<uuid>.<ext>``; its auto id keeps the order of arrival."""

    draft = models.ForeignKey(UploadDraft, on_delete=models.CASCADE, related_name="files")
    file = models.FileField(max_length=500)
    original_filename = models.CharField(max_length=255, help_text="For display only.")
    size = models.PositiveBigIntegerField()
    content_type = models.CharField(max_length=100)
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.original_filename

    @staticmethod
    def storage_path(*, user_id: int, draft_id: uuid.UUID, ext: str) -> str:
        """Where a draft's file is stored: never derived from the client's filename."""
        return f"uploads/{user_id}/drafts/{draft_id}/{uuid.uuid4()}.{ext}"


class InvoiceKey(models.Model):
    """What makes a document the same invoice as another, normalised, one row per document of
    a finished batch (`batches.checks`): so a batch's duplicates are found among the user's
    earlier batches with two indexed lookups instead of reading every earlier result."""

    SUPPLIER_MAX_LENGTH = 200
    NUMBER_MAX_LENGTH = 100

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="invoice_keys"
    )
    batch = models.ForeignKey(BatchProcess, on_delete=models.CASCADE, related_name="invoice_keys")
    document = models.OneToOneField(
        "documents.Document", on_delete=models.CASCADE, related_name="invoice_key"
    )
    supplier_norm = models.CharField(max_length=SUPPLIER_MAX_LENGTH, blank=True)
    number_norm = models.CharField(max_length=NUMBER_MAX_LENGTH, blank=True)
    total = models.DecimalField(max_digits=20, decimal_places=4, null=True, blank=True)
    date = models.DateField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["user", "number_norm"], name="invoice_key_user_number"),
            models.Index(fields=["user", "date", "total"], name="invoice_key_user_date_total"),
        ]

    def __str__(self) -> str:
        return f"{self.supplier_norm} {self.number_norm} {self.total} {self.date}"
