from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet, Sum
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html

from batches.models import BatchProcess, EngineCircuit
from documents.models import Document


class DocumentInline(admin.TabularInline):
    model = Document
    fields = (
        "original_filename",
        "status",
        "attempts",
        "page_count",
        "size",
        "error_code",
        "error_message",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(BatchProcess)
class BatchProcessAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "user",
        "status",
        "paused_reason",
        "plan",
        "engine",
        "mode",
        "progress",
        "cost",
        "created_at",
    )
    list_filter = ("status", "plan", "engine", "mode", "created_at")
    search_fields = ("name", "user__email", "documents__original_filename")
    list_select_related = ("user",)
    date_hierarchy = "created_at"
    readonly_fields = (
        "id",
        "user",
        "plan",
        "priority",
        "engine",
        "total_documents",
        "processed_documents",
        "failed_documents",
        "created_at",
        "updated_at",
        "started_at",
        "completed_at",
    )
    inlines = [DocumentInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[BatchProcess]:
        return super().get_queryset(request).annotate(cost_usd=Sum("documents__cost_usd"))

    @admin.display(description="cost (USD)", ordering="cost_usd")
    def cost(self, batch: BatchProcess) -> str:
        return "—" if batch.cost_usd is None else f"${batch.cost_usd:.4f}"

    @admin.display(description="progress")
    def progress(self, batch: BatchProcess) -> str:
        return format_html(
            '<progress max="100" value="{}"></progress> {}/{}',
            batch.progress_percent,
            batch.processed_documents,
            batch.total_documents,
        )

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[BatchProcess], search_term: str
    ) -> tuple[QuerySet[BatchProcess], bool]:
        queryset, _ = super().get_search_results(request, queryset, search_term)
        return queryset.distinct(), False


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = (
        "original_filename",
        "batch",
        "user",
        "status",
        "attempts",
        "error_code",
        "created_at",
    )
    list_filter = ("status", "error_code", "content_type", "created_at")
    search_fields = ("original_filename", "sha256", "user__email", "batch__name")
    list_select_related = ("batch", "user")
    readonly_fields = [f.name for f in Document._meta.fields]
    exclude = ("text",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(EngineCircuit)
class EngineCircuitAdmin(admin.ModelAdmin):
    """Open circuits: an engine whose provider refused the account (bad key, no credit).
    Dispatch to it is paused; the sweep probes it and closes the circuit when it answers."""

    list_display = ("engine", "reason", "opened_at", "probes", "next_probe_at")
    readonly_fields = ("engine", "reason", "opened_at", "probes")
    actions = ["probe_now"]

    @admin.action(description="Probe the provider at the next sweep")
    def probe_now(self, request: HttpRequest, queryset: QuerySet[EngineCircuit]) -> None:
        queryset.update(next_probe_at=timezone.now())
