"""Budgets: a batch with `budget_usd` is dispatched while what it spent (failed attempts too: they
were paid) plus the estimates of its documents in flight stays below the budget. The decision is
taken under the batch's row lock at each claim, so concurrent workers overshoot by at most one
document's estimate; reaching it pauses the batch (its documents are not due) until the budget is
raised."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import Case, F, Q, Sum, Value, When
from django.db.models.functions import Greatest

from batches.models import BatchProcess
from documents.models import Document
from extraction import get_engine
from extraction.contract import ExtractionError

logger = logging.getLogger(__name__)

BUDGET_REACHED = "budget reached"
# Text-like originals: a byte is about a character. Others (PDF, images, XLSX) are priced by
# their pages, as a scan would be: the dearer guess, which a budget should make.
TEXT_TYPES = ("text/plain", "text/csv", "application/xml", "text/xml")


@dataclass(frozen=True)
class BudgetFigures:
    spent_usd: Decimal
    in_flight_usd: Decimal

    @property
    def committed_usd(self) -> Decimal:
        return self.spent_usd + self.in_flight_usd


def budget_figures(*, batch_id: uuid.UUID, excluding: uuid.UUID | None = None) -> BudgetFigures:
    """What a batch spent (every paid attempt of every document) and what is in flight (the
    estimates of its documents being processed, but `excluding`)."""
    in_flight = Q(status=Document.Status.PROCESSING)
    if excluding is not None:
        in_flight &= ~Q(pk=excluding)
    row = Document.objects.filter(batch_id=batch_id).aggregate(
        spent=Sum("cost_usd"), in_flight=Sum("in_flight_usd", filter=in_flight)
    )
    return BudgetFigures(row["spent"] or Decimal(0), row["in_flight"] or Decimal(0))


def dollars(amount: Decimal) -> str:
    return f"${amount.quantize(Decimal('0.01')):,}"


def paused_reason(figures: BudgetFigures, budget: Decimal) -> str:
    """E.g. "budget reached: $4.98 spent and $0.03 in flight of $5.00"."""
    return (
        f"{BUDGET_REACHED}: {dollars(figures.spent_usd)} spent and "
        f"{dollars(figures.in_flight_usd)} in flight of {dollars(budget)}"
    )


def document_estimate(document: Document, *, engine_name: str, fields: int) -> Decimal:
    """What one attempt at `document` will probably cost: its estimate once read, before that
    one from its size (text) or pages."""
    if document.estimated_cost_usd is not None:
        return document.estimated_cost_usd
    try:
        engine = get_engine(engine_name)
    except ExtractionError:
        return Decimal(0)  # the attempt fails before anything is paid
    text = document.content_type in TEXT_TYPES
    return engine.estimate(
        characters=document.size if text else 0,
        pages=document.page_count or 1,
        fields=max(fields, 1),
    )


def budget_admits(
    *, document: Document, batch: BatchProcess, token: uuid.UUID, now: datetime
) -> bool:
    """Whether the batch's budget lets this just-leased document be sent. Decided under the
    batch's row lock: admitted, the document's estimate is recorded as in flight; refused, the
    lease is given back without spending an attempt and the batch is paused (once).

    Call it after the claim's UPDATE has committed (the document is not locked meanwhile)."""
    with transaction.atomic():
        locked = (
            BatchProcess.objects.select_for_update(no_key=True)
            .filter(pk=batch.pk)
            .values("budget_usd", "budget_paused_at")
            .first()
        )
        if locked is None or locked["budget_usd"] is None:
            return True
        budget, paused_at = locked["budget_usd"], locked["budget_paused_at"]
        figures = budget_figures(batch_id=batch.pk, excluding=document.pk)
        held = Document.objects.filter(
            pk=document.pk, status=Document.Status.PROCESSING, lease_token=token
        )
        if paused_at is None and figures.committed_usd < budget:
            estimate = document_estimate(
                document, engine_name=batch.engine, fields=len(batch.fields)
            )
            held.update(in_flight_usd=estimate)
            document.in_flight_usd = estimate
            return True
        held.update(
            status=Document.Status.QUEUED,
            attempts=Greatest(F("attempts") - 1, Value(0)),
            # Never sent: a document on its first attempt has not started either.
            started_at=Case(When(attempts__lte=1, then=Value(None)), default=F("started_at")),
            lease_token=None,
            lease_expires_at=None,
            in_flight_usd=None,
        )
        if paused_at is None:
            _pause(batch_id=batch.pk, reason=paused_reason(figures, budget), now=now)
    return False


def _pause(*, batch_id: uuid.UUID, reason: str, now: datetime) -> None:
    from notifications.services import outbox_batch_paused

    BatchProcess.objects.filter(pk=batch_id).update(
        budget_paused_at=now, paused_reason=reason, updated_at=now
    )
    outbox_batch_paused(batch_id=batch_id)
    logger.info("batch %s paused: %s", batch_id, reason)


def budget_set(*, batch_id: uuid.UUID, budget_usd: Decimal | None, now: datetime) -> bool:
    """Set a batch's budget (None: no budget). A paused batch resumes when the new budget is
    above what it spent and has in flight; otherwise it stays paused, its reason showing the new
    figures, and no second notification is sent. Returns whether it resumed."""
    with transaction.atomic():
        locked = BatchProcess.objects.select_for_update(no_key=True).get(pk=batch_id)
        changes: dict[str, object] = {"budget_usd": budget_usd, "updated_at": now}
        resumed = False
        if locked.budget_paused_at is not None:
            figures = budget_figures(batch_id=batch_id)
            if budget_usd is None or figures.committed_usd < budget_usd:
                changes.update(budget_paused_at=None, paused_reason="")
                resumed = True
            else:
                changes["paused_reason"] = paused_reason(figures, budget_usd)
        BatchProcess.objects.filter(pk=batch_id).update(**changes)
        if resumed:
            from batches.pipeline.claims import kick_workers
            from notifications.models import EventKind
            from notifications.services import outbox_batch_state

            outbox_batch_state(batch_id=batch_id, kind=EventKind.BATCH_RESUMED, reason="budget")
            transaction.on_commit(kick_workers)
    if resumed:
        logger.info("batch %s resumed: budget %s", batch_id, budget_usd)
    return resumed
