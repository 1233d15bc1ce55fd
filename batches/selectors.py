"""Reads of batches and documents; every lookup of a user-owned object is scoped to its owner."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Count, Min, Q, QuerySet, Sum
from django.http import Http404
from django.utils import timezone

from accounts.models import User
from batches.models import BatchProcess
from documents.models import Document


def batch_list_for_user(*, user: User, status: str | None = None) -> QuerySet[BatchProcess]:
    batches = BatchProcess.objects.filter(user=user).order_by("-created_at", "-id")
    if status:
        batches = batches.filter(status=status)
    return batches


def batch_get_for_user(*, user: User, batch_id: uuid.UUID | str) -> BatchProcess:
    """The user's batch, or Http404 (another user's batch does not exist for them)."""
    try:
        return BatchProcess.objects.get(pk=batch_id, user=user)
    except (BatchProcess.DoesNotExist, ValueError) as exc:
        raise Http404("No such batch.") from exc


def document_get_for_user(*, user: User, document_id: uuid.UUID | str) -> Document:
    try:
        return Document.objects.select_related("batch").get(pk=document_id, user=user)
    except (Document.DoesNotExist, ValueError) as exc:
        raise Http404("No such document.") from exc


def batch_documents(*, batch: BatchProcess) -> QuerySet[Document]:
    return batch.documents.order_by("created_at", "id").defer("text")


@dataclass(frozen=True)
class Progress:
    total: int
    queued: int
    processing: int
    completed: int
    failed: int
    canceled: int
    percent: int
    eta_seconds: int | None

    @property
    def done(self) -> int:
        return self.completed + self.failed + self.canceled


def batch_progress(*, batch: BatchProcess, now: datetime | None = None) -> Progress:
    """Counts per state from the documents, and an ETA from the throughput observed so far."""
    counts = {
        row["status"]: row["n"]
        for row in batch.documents.order_by().values("status").annotate(n=Count("id"))
    }
    total = sum(counts.values())
    finished = sum(counts.get(s, 0) for s in Document.TERMINAL_STATUSES)
    remaining = total - finished
    eta = None
    if remaining and not batch.is_terminal:
        eta = _eta_seconds(batch=batch, remaining=remaining, now=now or timezone.now())
    return Progress(
        total=total,
        queued=counts.get(Document.Status.QUEUED, 0),
        processing=counts.get(Document.Status.PROCESSING, 0),
        completed=counts.get(Document.Status.COMPLETED, 0),
        failed=counts.get(Document.Status.FAILED, 0),
        canceled=counts.get(Document.Status.CANCELED, 0),
        percent=round(100 * finished / total) if total else 0,
        eta_seconds=eta,
    )


ETA_WINDOW = timedelta(minutes=10)


def _eta_seconds(*, batch: BatchProcess, remaining: int, now: datetime) -> int | None:
    """Remaining documents over the throughput of the last ten minutes (not since the batch
    started, which after a retry of an old batch would be days)."""
    recent = batch.documents.filter(completed_at__gte=now - ETA_WINDOW).aggregate(
        n=Count("id"), since=Min("started_at")
    )
    if not recent["n"] or recent["since"] is None:
        return None
    elapsed = (now - recent["since"]).total_seconds()
    if elapsed <= 0:
        return None
    return round(remaining * elapsed / recent["n"])


def batch_field_names(*, batch: BatchProcess) -> list[str]:
    """The batch's field names: its field list, else those inferred from the prompt."""
    from batches.fields import fields_from_prompt

    fields = batch.fields or fields_from_prompt(batch.extraction_prompt)
    return [spec["name"] for spec in fields]


@dataclass(frozen=True)
class Costs:
    actual_usd: Decimal
    estimated_usd: Decimal | None
    verified_share: int | None  # percent of found values whose quote was found in the text


def batch_costs(*, batch: BatchProcess) -> Costs:
    """The money spent so far, an estimate of the whole batch (spent + estimates of documents
    read but not finished, scaled up for those not read yet), and the share of verified values."""
    documents = batch.documents.exclude(status=Document.Status.CANCELED)
    totals = documents.aggregate(
        actual=Sum("cost_usd"),
        pending=Sum("estimated_cost_usd", filter=Q(cost_usd__isnull=True)),
        known=Count("id", filter=Q(cost_usd__isnull=False) | Q(estimated_cost_usd__isnull=False)),
        total=Count("id"),
        found=Sum("values_found", filter=Q(status=Document.Status.COMPLETED)),
        verified=Sum("values_verified", filter=Q(status=Document.Status.COMPLETED)),
    )
    actual = totals["actual"] or Decimal(0)
    estimated = None
    if totals["known"]:
        known_sum = actual + (totals["pending"] or Decimal(0))
        estimated = (known_sum * totals["total"] / totals["known"]).quantize(Decimal("0.0001"))
    found, verified = totals["found"], totals["verified"] or 0
    share = round(100 * verified / found) if found else None
    return Costs(actual_usd=actual, estimated_usd=estimated, verified_share=share)
