from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin.utils import flatten_fieldsets
from django.db.models import Q, QuerySet, Sum
from django.http import HttpRequest
from django.urls import reverse
from django.utils.dateformat import format as date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.timezone import localtime

from accounts.plans import PlanKey
from batches.health import (
    batch_health_problems,
    batch_top_error_codes,
    batches_with_health,
    unhealthy_condition,
    with_owner_plan,
)
from batches.models import BatchProcess, EngineCircuit, Run
from batches.pipeline import circuits_probe_soon
from batches.selectors import batch_failures_by_kind
from batches.services import batch_cancel, batch_retry_failed
from batchsite.errors import Rejected
from batchsite.json_tables import json_table
from documents.models import Document

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

    from batches.health import Health

    class Changelist(Health):
        """What the batch changelist's queryset annotates on each batch."""

        owner_plan: str
        cost_usd: Decimal | None

    ChangelistBatch = WithAnnotations[BatchProcess, Changelist]


class DocumentInline(admin.TabularInline[Document, BatchProcess]):
    model = Document
    fields = (
        "original_filename",
        "status",
        "attempts",
        "page_count",
        "size",
        "error_code",
        "error_kind",
        "error_message",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # as on the document's own page


class RunInline(admin.TabularInline[Run, BatchProcess]):
    """The batch's runs, read-only: the upload is run 1."""

    model = Run
    fk_name = "batch"
    fields = ("number", "engine", "model", "created_at", "finished_at", "cost_usd")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


def _facts(*lines: str) -> str:
    """Several short facts in one changelist cell, one per line; empty ones left out."""
    return format_html(
        '<ul class="sheaf-facts">{}</ul>',
        format_html_join("", "<li>{}</li>", ((line,) for line in lines if line)),
    )


def _when(moment: datetime) -> str:
    return date_format(localtime(moment), "Y-m-d H:i")


def _duration(value: timedelta | None) -> str:
    if value is None:
        return "—"
    seconds = round(value.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m {seconds:02d}s" if hours else f"{minutes}m {seconds:02d}s"


class HealthFilter(admin.SimpleListFilter):
    title = "health"
    parameter_name = "health"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("unhealthy", "Unhealthy"), ("healthy", "Healthy")]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[ChangelistBatch]
    ) -> QuerySet[ChangelistBatch]:
        if self.value() == "unhealthy":
            return queryset.filter(unhealthy_condition())
        if self.value() == "healthy":
            return queryset.exclude(unhealthy_condition())
        return queryset


class OwnerPlanFilter(admin.SimpleListFilter):
    """The owner's effective plan now (override, else subscription, else Free); the `plan`
    filter is the plan the batch was submitted under."""

    title = "owner's plan now"
    parameter_name = "owner_plan"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return list(PlanKey.choices)

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[ChangelistBatch]
    ) -> QuerySet[ChangelistBatch]:
        plan = self.value()
        if plan in PlanKey.values:
            return queryset.filter(owner_plan=plan)
        return queryset


@admin.register(BatchProcess)
class BatchProcessAdmin(admin.ModelAdmin[BatchProcess]):
    """Batch history with health metrics, all computed in the changelist's one query (see
    `batches.health` for the definitions). Several facts share a cell so that the columns fit
    beside the filters.

    Only the name and description are edited here: a batch's state changes through the
    services, by the actions (retry, cancel), the dashboard, the API or `manage.py batch`."""

    list_display = (
        "name",
        "owner",
        "status_and_engine",
        "health",
        "documents",
        "errors",
        "cost",
        "times",
    )
    list_filter = (
        "status",
        HealthFilter,
        OwnerPlanFilter,
        "plan",
        "engine",
        "mode",
        "created_at",
    )
    search_fields = ("name", "user__email", "documents__original_filename")
    search_help_text = "Batch name, owner's email or a document's filename."
    list_select_related = ("user",)
    date_hierarchy = "created_at"
    fieldsets = (
        (None, {"fields": ("id", "name", "description", "user", "status", "paused_reason")}),
        ("What to extract", {"fields": ("extraction_prompt", "fields_table")}),
        (
            "Health",
            {
                "fields": (
                    "health",
                    "computed",
                    "documents",
                    "errors",
                    "processing_time",
                    "checks_table",
                )
            },
        ),
        (
            "Plan, engine and budget",
            {
                "fields": (
                    "plan",
                    "owner_plan_now",
                    "priority",
                    "mode",
                    "engine",
                    # Set through the service (`manage.py batch budget`, the API, the batch
                    # page), which resumes a paused batch; a plain save would not.
                    "budget_usd",
                    "budget_paused_at",
                )
            },
        ),
        (
            "Times",
            {
                "fields": (
                    "created_at",
                    "updated_at",
                    "start_at",  # its documents' next_attempt_at was set from it at creation
                    "started_at",
                    "completed_at",
                )
            },
        ),
        (
            "Bookkeeping",
            {
                "classes": ("collapse",),
                "fields": (
                    "current_run",
                    "finish_seq",
                    "last_claimed_at",
                    "is_trial",
                    "idempotency_key",
                    "request_fingerprint",
                    "total_documents",
                    "processed_documents",
                    "failed_documents",
                ),
            },
        ),
    )
    # Everything but the name and the description.
    readonly_fields = [f for f in flatten_fieldsets(fieldsets) if f not in ("name", "description")]
    inlines = [RunInline, DocumentInline]
    actions = ["retry_failed", "cancel"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a batch is made by `batch_create`, from the dashboard, the API or the CLI

    def get_queryset(self, request: HttpRequest) -> QuerySet[BatchProcess]:
        batches = super().get_queryset(request).annotate(cost_usd=Sum("documents__cost_usd"))
        return batches_with_health(with_owner_plan(batches))

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[BatchProcess], search_term: str
    ) -> tuple[QuerySet[BatchProcess], bool]:
        # A join on documents for the filename would multiply the health counts.
        term = search_term.strip()
        if not term:
            return queryset, False
        by_filename = Document.objects.filter(original_filename__icontains=term)
        return queryset.filter(
            Q(name__icontains=term)
            | Q(user__email__icontains=term)
            | Q(pk__in=by_filename.values("batch_id"))
        ), False

    @admin.display(description="health")
    def health(self, batch: ChangelistBatch) -> str:
        problems = batch_health_problems(batch)
        if not problems:
            return mark_safe('<span class="sheaf-healthy">✔ healthy</span>')
        return format_html(
            '<strong class="sheaf-unhealthy">✖ unhealthy</strong><ul>{}</ul>',
            format_html_join("", "<li>{}</li>", ((problem,) for problem in problems)),
        )

    @admin.display(description="computed status", ordering="computed_status")
    def computed(self, batch: ChangelistBatch) -> str:
        return batch.computed_status

    @admin.display(description="owner", ordering="user__email")
    def owner(self, batch: ChangelistBatch) -> str:
        return _facts(str(batch.user), f"plan now: {batch.owner_plan}")

    @admin.display(description="owner's plan now", ordering="owner_plan")
    def owner_plan_now(self, batch: ChangelistBatch) -> str:
        return batch.owner_plan

    @admin.display(description="status", ordering="status")
    def status_and_engine(self, batch: ChangelistBatch) -> str:
        return _facts(
            batch.get_status_display(),
            ""
            if batch.computed_status == batch.status
            else f"(its documents say {batch.computed_status})",
            f"{batch.engine}, {batch.mode}",
            f"plan at submission: {batch.plan}",
        )

    @admin.display(description="documents", ordering="n_total")
    def documents(self, batch: ChangelistBatch) -> str:
        failed = f"{batch.n_failed} failed"
        if batch.n_permanent:
            failed += f" ({batch.n_permanent} permanent)"
        return _facts(
            f"{batch.n_total} total",
            f"{batch.n_completed} completed, {failed}",
            f"{batch.n_processing} in progress, {batch.n_queued} queued",
            f"highest attempt: {batch.max_attempts_used}" if batch.max_attempts_used else "",
        )

    @admin.display(description="errors", ordering="error_rate")
    def errors(self, batch: ChangelistBatch) -> str:
        latest = batch.latest_error_at
        return _facts(
            "no finished document" if batch.error_rate is None else f"{batch.error_rate:.1f}%",
            "" if latest is None else f"latest: {_when(latest)}",
            ", ".join(batch_top_error_codes(batch)),
        )

    @admin.display(description="created", ordering="created_at")
    def times(self, batch: ChangelistBatch) -> str:
        return _facts(
            _when(batch.created_at),
            "" if batch.processing_time is None else f"took {_duration(batch.processing_time)}",
        )

    @admin.display(description="processing time", ordering="processing_time")
    def processing_time(self, batch: ChangelistBatch) -> str:
        return _duration(batch.processing_time)

    @admin.display(description="cost (USD)", ordering="cost_usd")
    def cost(self, batch: ChangelistBatch) -> str:
        return "—" if batch.cost_usd is None else f"${batch.cost_usd:.4f}"

    @admin.display(description="fields")
    def fields_table(self, batch: BatchProcess) -> str:
        return json_table(batch.fields)

    @admin.display(description="checks")
    def checks_table(self, batch: BatchProcess) -> str:
        return json_table(batch.checks)

    @admin.action(description="Retry failed documents of the selected batches")
    def retry_failed(self, request: HttpRequest, queryset: QuerySet[BatchProcess]) -> None:
        for batch in queryset:
            # Read before the retry clears them: staff should know what will likely fail again.
            permanent = batch_failures_by_kind(batch=batch).get(Document.ErrorKind.PERMANENT, 0)
            try:
                count = batch_retry_failed(batch=batch, include_permanent=True)
            except Rejected as rejection:
                self.message_user(request, str(rejection), messages.WARNING)
                continue
            note = (
                f" ({permanent} of them had failed permanently and will likely fail again)"
                if permanent
                else ""
            )
            self.message_user(request, f"{batch.name}: {count} document(s) requeued{note}.")

    @admin.action(description="Cancel the selected batches")
    def cancel(self, request: HttpRequest, queryset: QuerySet[BatchProcess]) -> None:
        for batch in queryset:
            try:
                batch_cancel(batch=batch)
            except Rejected as rejection:
                self.message_user(request, str(rejection), messages.WARNING)
            else:
                self.message_user(request, f"{batch.name}: canceled.")


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin[Document]):
    """Documents are seen here, never edited: their state changes through the services (the
    batch's retry and cancel actions, the review page, re-runs)."""

    list_display = (
        "original_filename",
        "batch",
        "user",
        "status",
        "attempts",
        "error_code",
        "error_kind",
        "created_at",
    )
    list_filter = ("status", "error_kind", "error_code", "content_type", "created_at")
    search_fields = ("original_filename", "sha256", "user__email", "batch__name")
    list_select_related = ("batch", "user")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "original_filename",
                    "review_page",
                    "batch",
                    "user",
                    "run",
                    "status",
                    "attempts",
                    "error_code",
                    "error_kind",
                    "error_message",
                )
            },
        ),
        ("Result", {"fields": ("result_table", "reviews_table", "reviewed_at")}),
        (
            "File",
            {
                "fields": (
                    "content_type",
                    "size",
                    "sha256",
                    "page_count",
                    "file",
                    "file_removed_at",
                    "read_at",
                    "text_truncated",
                    "ocr_confidence",
                    "read_result",
                    "reused_from",
                )
            },
        ),
        (
            "Cost",
            {
                "fields": (
                    "cost_usd",
                    "estimated_cost_usd",
                    "in_flight_usd",
                    "usage_table",
                    "provider_batch_id",
                )
            },
        ),
        (
            "Times",
            {"fields": ("created_at", "updated_at", "started_at", "completed_at", "quota_month")},
        ),
        (
            "Bookkeeping",
            {
                "classes": ("collapse",),
                "fields": (
                    "next_attempt_at",
                    "lease_token",
                    "lease_expires_at",
                    "rate_limited_since",
                    "values_total",
                    "values_found",
                    "values_verified",
                    "count_found",
                    "count_checked",
                    "count_unverified",
                    "count_invalid",
                    "count_missing",
                    "einvoice_xml",
                ),
            },
        ),
    )
    readonly_fields = flatten_fieldsets(fieldsets)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # its batch's counts and quota would not follow

    @admin.display(description="review page")
    def review_page(self, document: Document) -> str:
        return format_html(
            '<a href="{}">Open its review page</a> (it opens for the document&#x27;s owner only)',
            reverse("document_detail", args=[document.pk]),
        )

    @admin.display(description="result")
    def result_table(self, document: Document) -> str:
        return json_table(document.result)

    @admin.display(description="reviews")
    def reviews_table(self, document: Document) -> str:
        return json_table(document.reviews)

    @admin.display(description="usage")
    def usage_table(self, document: Document) -> str:
        return json_table(document.usage)


@admin.register(EngineCircuit)
class EngineCircuitAdmin(admin.ModelAdmin[EngineCircuit]):
    """Open circuits: an engine whose provider refused the account (bad key, no credit).
    Dispatch to it is paused; the sweep probes it and closes the circuit when it answers."""

    list_display = ("engine", "reason", "opened_at", "probes", "next_probe_at")
    readonly_fields = ("engine", "reason", "opened_at", "probes")
    actions = ["probe_now"]

    @admin.action(description="Probe the provider at the next sweep")
    def probe_now(self, request: HttpRequest, queryset: QuerySet[EngineCircuit]) -> None:
        circuits_probe_soon(engines=list(queryset.values_list("engine", flat=True)))
