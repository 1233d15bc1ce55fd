from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.db.models import Q, QuerySet, Sum
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

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


def _metric(field: str, description: str) -> Callable[[Any, BatchProcess], object]:
    """A sortable column showing one annotation of `batches_with_health`."""

    @admin.display(description=description, ordering=field)
    def show(self: Any, batch: BatchProcess) -> object:
        return getattr(batch, field)

    return show


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
    `batches.health` for the definitions)."""

    list_display = (
        "name",
        "user",
        "status",
        "health",
        "computed",
        "plan",
        "owner_plan_now",
        "engine",
        "total",
        "completed",
        "failed",
        "permanent",
        "in_progress",
        "queued",
        "max_attempts",
        "error_rate_percent",
        "processing_time",
        "latest_error_at",
        "top_errors",
        "cost",
        "created_at",
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
    readonly_fields = (
        "id",
        "user",
        "plan",
        "priority",
        "engine",
        "health",
        "computed",
        "top_errors",
        "processing_time",
        "total_documents",
        "processed_documents",
        "failed_documents",
        # Set through the service (`manage.py batch budget`, the API, the batch page), which
        # resumes a paused batch; a plain save would not.
        "budget_usd",
        "budget_paused_at",
        "created_at",
        "updated_at",
        "start_at",  # its documents' next_attempt_at was set from it at creation
        "started_at",
        "completed_at",
    )
    inlines = [RunInline, DocumentInline]
    actions = ["retry_failed", "cancel"]

    total = _metric("n_total", "total")
    completed = _metric("n_completed", "completed")
    failed = _metric("n_failed", "failed")
    permanent = _metric("n_permanent", "permanent failures")
    in_progress = _metric("n_processing", "in progress")
    queued = _metric("n_queued", "queued")
    max_attempts = _metric("max_attempts_used", "highest attempt")
    latest_error_at = _metric("latest_error_at", "latest error")

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

    @admin.display(description="owner's plan now", ordering="owner_plan")
    def owner_plan_now(self, batch: ChangelistBatch) -> str:
        return batch.owner_plan

    @admin.display(description="error rate", ordering="error_rate")
    def error_rate_percent(self, batch: ChangelistBatch) -> str:
        return "—" if batch.error_rate is None else f"{batch.error_rate:.1f}%"

    @admin.display(description="processing time", ordering="processing_time")
    def processing_time(self, batch: ChangelistBatch) -> str:
        return _duration(batch.processing_time)

    @admin.display(description="top errors")
    def top_errors(self, batch: ChangelistBatch) -> str:
        return ", ".join(batch_top_error_codes(batch)) or "—"

    @admin.display(description="cost (USD)", ordering="cost_usd")
    def cost(self, batch: ChangelistBatch) -> str:
        return "—" if batch.cost_usd is None else f"${batch.cost_usd:.4f}"

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
    readonly_fields = [f.name for f in Document._meta.fields]
    exclude = ("text",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


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
