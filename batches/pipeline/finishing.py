"""Settling and finishing: a document's outcome stored under its lease, the batch's counters
derived from its documents, and the batch finished exactly once when nothing is left open."""

from __future__ import annotations

import logging
import random
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Q, QuerySet, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from accounts.services import (
    quota_release,
)
from batches.checks import batch_checks_refresh
from batches.models import BatchProcess
from batches.pipeline.circuits import pause_for_provider
from batches.pipeline.claims import Claim, held
from batches.runs import run_result_store, run_settle, unless_staged
from documents.models import Document, result_value_counts
from extraction.contract import RATE_LIMITED, ErrorKind, ExtractionError, ExtractionRequest
from extraction.fields import FieldSpec
from extraction.statuses import settle
from notifications.services import (
    outbox_batch_finished,
    outbox_batch_progress,
    outbox_document_completed,
    outbox_documents_failed,
)

logger = logging.getLogger(__name__)


def settled(result: dict[str, Any], request: ExtractionRequest) -> dict[str, Any]:
    """The engine's (and the XML's) result with a status on every value asked for: the one
    step every stored result passes through (an earlier result reused is settled again, so one
    stored before statuses existed gains them)."""
    # With no fields asked, the engine inferred them from the prompt: its answer names them.
    fields = request.fields or [
        FieldSpec(name=name, type="string", description="") for name in result.get("fields", {})
    ]
    if request.kept_fields:
        # A re-run that only added fields: the earlier values stand beside the new ones.
        found = result.get("fields") or {}
        result = {**result, "fields": {**request.kept_cells, **found}}
        fields = [*request.kept_fields, *fields]
    return settle(result, fields, request.text, layout=request.layout)


def document_complete(
    *,
    claim: Claim,
    result: dict[str, Any],
    cost_usd: Decimal | None = None,
    usage: dict[str, int] | None = None,
    reused_from: Document | None = None,
    read: dict[str, Any] | None = None,
) -> str:
    """Store a result under the lease (with the read, when it was not stored before)."""
    now = timezone.now()
    if reused_from is not None:
        result = {**result, "reused_from": str(reused_from.pk)}
        cost_usd, usage = Decimal(0), {}
    counts = result_value_counts(result)
    spent = costs_added(claim=claim, cost_usd=cost_usd, usage=usage)
    cached = {
        "result": result,
        "values_total": counts.total,
        "values_found": counts.found,
        "values_verified": counts.verified,
        **{f"count_{status}": n for status, n in counts.statuses.items()},
    }
    # A staged run's outcome goes to its own row only. The claim read whether the run is staged
    # (it cannot change while the document is held: a run settles after its last document);
    # a claim made elsewhere asks the database, in the UPDATE (compiling that per column cost
    # the worker more than the rest of a document's work).
    staged = getattr(claim.document, "run_staged", None)
    cached = unless_staged(cached) if staged is None else {} if staged else cached
    with transaction.atomic():
        done = held(claim).update(
            status=Document.Status.COMPLETED,
            **cached,
            **spent,
            reused_from=reused_from,
            error_code="",
            error_message="",
            error_kind="",
            rate_limited_since=None,
            lease_token=None,
            lease_expires_at=None,
            completed_at=now,
            updated_at=now,
            **(read or {}),
        )
        if done:
            _run_result_store(claim=claim, result=result, spent=spent)
            if reused_from is not None:
                # Never sent to an engine: it holds none of the month's documents.
                quota_give_back(Document.objects.filter(pk=claim.document_id))
            document = claim.document or Document.objects.filter(pk=claim.document_id).first()
            if document is not None and not document.batch.is_trial:
                # The event last: see notifications.services._event_insert.
                outbox_document_completed(
                    document=document, statuses=counts.statuses, completed_at=now
                )
    if not done:
        _paid_anyway(claim=claim, cost_usd=cost_usd, usage=usage)
        return "lost"
    _settle_batch(batch_id=claim.batch_id, now=now)
    return Document.Status.COMPLETED


def costs_added(
    *, claim: Claim, cost_usd: Decimal | None, usage: dict[str, int] | None
) -> dict[str, Any]:
    """The document's `cost_usd` and `usage` with an attempt's added: every paid call counts,
    also those of failed attempts, so the document, its batch's total and the exports show
    what was really spent. Empty when the attempt cost nothing (a free engine)."""
    if cost_usd is None and not usage:
        return {}
    total, tokens = _sum_spent(_spent_so_far(claim), (cost_usd, usage))
    return {"cost_usd": total, "usage": tokens}


Spent = tuple[Decimal | None, dict[str, int] | None]


def _sum_spent(before: Spent, attempt: Spent) -> tuple[Decimal, dict[str, int] | None]:
    """A cost and token counts with an attempt's added."""
    tokens = dict(before[1] or {})
    for name, count in (attempt[1] or {}).items():
        tokens[name] = tokens.get(name, 0) + count
    return (before[0] or Decimal(0)) + (attempt[0] or Decimal(0)), tokens or None


def _run_result_store(
    *,
    claim: Claim,
    result: dict[str, Any] | None,
    spent: dict[str, Any],
    error: tuple[str, str, str] = ("", "", ""),
) -> None:
    """The document's outcome into its run's row: what it cost in all, as on the document."""
    cost_usd, usage = (spent["cost_usd"], spent["usage"]) if spent else _spent_so_far(claim)
    run_result_store(
        document_id=claim.document_id,
        result=result,
        cost_usd=cost_usd,
        usage=usage,
        status=Document.Status.COMPLETED if result is not None else Document.Status.FAILED,
        error=error,
    )


def _paid_anyway(*, claim: Claim, cost_usd: Decimal | None, usage: dict[str, int] | None) -> None:
    """An attempt that lost its lease (a re-run canceled while it was in flight, a lease that
    ran out) cannot store what it brought, but a paid call was paid: its cost and tokens are added
    to the document's all the same, so the document and its batch show what was spent."""
    if not cost_usd and not usage:
        return
    with transaction.atomic():
        row = Document.objects.select_for_update(no_key=True).filter(pk=claim.document_id).first()
        if row is None:
            return  # the batch was deleted meanwhile
        row.cost_usd, row.usage = _sum_spent((row.cost_usd, row.usage), (cost_usd, usage))
        row.save(update_fields=["cost_usd", "usage"])


def _spent_so_far(claim: Claim) -> Spent:
    """What the claimed document had cost before this attempt: from the row the claim read
    (only the lease holder writes it), else from the database."""
    if claim.document is not None:
        return claim.document.cost_usd, claim.document.usage
    row = Document.objects.filter(pk=claim.document_id).values_list("cost_usd", "usage").first()
    return row if row is not None else (None, None)


def retry_delay(*, attempts: int, retry_after: float | None = None) -> float:
    """Exponential backoff with full jitter, at least `retry-after` (capped) when one was given."""
    base = settings.SHEAF_RETRY_BASE_SECONDS
    return _jittered(base * 2 ** max(attempts - 1, 0), retry_after=retry_after)


def rate_limit_delay(*, waited: float, retry_after: float | None = None) -> float:
    """Backoff for a document the provider's rate limit holds back: its 429s spend no attempt,
    so the wait grows with the time already waited instead (full jitter up to that time, so it
    roughly doubles each round), at least `retry-after`."""
    return _jittered(waited, retry_after=retry_after)


def _jittered(ceiling: float, *, retry_after: float | None) -> float:
    base = settings.SHEAF_RETRY_BASE_SECONDS
    cap = settings.SHEAF_RETRY_MAX_SECONDS
    delay = random.uniform(base, min(cap, max(base, ceiling)))  # noqa: S311
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap))
    return delay


def document_fail(
    *,
    claim: Claim,
    error: ExtractionError,
    read: dict[str, Any] | None = None,
    max_attempts: int | None = None,
) -> str:
    """Record a failed attempt: requeue a transient failure with backoff while attempts remain
    (the document's attempts in all, against `max_attempts`, by default SHEAF_MAX_ATTEMPTS),
    otherwise fail the document for good (and give its quota back). A rate-limited attempt
    spends nothing and is bounded by time instead (`_rate_limited`)."""
    now = timezone.now()
    spent = costs_added(claim=claim, cost_usd=error.cost_usd, usage=error.usage)
    if error.kind == ErrorKind.CRITICAL:
        return pause_for_provider(claim=claim, error=error, now=now, spent=spent)
    if error.kind == ErrorKind.TRANSIENT and error.code == RATE_LIMITED:
        failed, changes = _rate_limited(claim=claim, error=error, now=now)
    elif error.kind != ErrorKind.PERMANENT and claim.attempts < (
        max_attempts or settings.SHEAF_MAX_ATTEMPTS
    ):
        delay = retry_delay(attempts=claim.attempts, retry_after=error.retry_after)
        failed, changes = (
            False,
            {
                "next_attempt_at": now + timedelta(seconds=delay),
                "error_code": error.code,
                "error_message": error.message,
                "error_kind": Document.ErrorKind.TRANSIENT,
                "rate_limited_since": None,
            },
        )
    else:
        message, kind = error.message, Document.ErrorKind.PERMANENT
        if error.kind != ErrorKind.PERMANENT:
            message = f"{message} (gave up after {claim.attempts} attempts)"
            kind = Document.ErrorKind.GAVE_UP
        failed, changes = (
            True,
            {
                "error_code": error.code,
                "error_message": message,
                "error_kind": kind,
                "rate_limited_since": None,
            },
        )
    if failed:
        changes.update(status=Document.Status.FAILED, completed_at=now)
    else:
        changes.update(status=Document.Status.QUEUED)
    with transaction.atomic():
        changed = held(claim).update(
            lease_token=None,
            lease_expires_at=None,
            updated_at=now,
            **changes,
            **spent,
            **(read or {}),
        )
        if not changed:
            _paid_anyway(claim=claim, cost_usd=error.cost_usd, usage=error.usage)
            return "lost"
        if failed:
            error_of = (changes["error_code"], changes["error_message"], changes["error_kind"])
            _run_result_store(claim=claim, result=None, spent=spent, error=error_of)
            refund(document_ids=[claim.document_id])
            outbox_documents_failed(document_ids=[claim.document_id], failed_at=now)
    _settle_batch(batch_id=claim.batch_id, now=now)
    return Document.Status.FAILED if failed else Document.Status.QUEUED


def _rate_limited(
    *, claim: Claim, error: ExtractionError, now: datetime
) -> tuple[bool, dict[str, Any]]:
    """A 429 is the account's limit, not the document's fault: the attempt is given back and
    the document waits a backoff that grows with the time it has waited, until the provider has
    held it back for SHEAF_RATE_LIMIT_GIVE_UP_SECONDS; then it fails (`provider_rate_limited`,
    gave up). The engine's rate governor has already slowed every call of this process down.
    Returns (fails now, the document's changes)."""
    since, filename = _rate_limit_state(claim)
    since = since or now
    waited = now - since
    given_back = Greatest(F("attempts") - 1, Value(0))
    give_up = settings.SHEAF_RATE_LIMIT_GIVE_UP_SECONDS
    if waited.total_seconds() < give_up:
        delay = rate_limit_delay(waited=waited.total_seconds(), retry_after=error.retry_after)
        return False, {
            "attempts": given_back,
            "rate_limited_since": since,
            "next_attempt_at": now + timedelta(seconds=delay),
            "error_code": error.code,
            "error_message": error.message,
            "error_kind": Document.ErrorKind.TRANSIENT,
        }
    return True, {
        "attempts": given_back,
        "error_code": RATE_LIMITED,
        "error_message": (
            f"{filename}: the provider's rate limit held this document back for "
            f"{_minutes(waited)}, longer than SHEAF_RATE_LIMIT_GIVE_UP_SECONDS "
            f"({_minutes(timedelta(seconds=give_up))}) allows; gave up. Retry it when the "
            "account's other work has eased."
        ),
        "error_kind": Document.ErrorKind.GAVE_UP,
    }


def _rate_limit_state(claim: Claim) -> tuple[datetime | None, str]:
    """When the rate limit began holding the claimed document back, and its filename: from the
    row the claim read (only the lease holder writes it), else from the database."""
    if claim.document is not None:
        return claim.document.rate_limited_since, claim.document.original_filename
    row = (
        Document.objects.filter(pk=claim.document_id)
        .values_list("rate_limited_since", "original_filename")
        .first()
    )
    return row if row is not None else (None, "")


def _minutes(span: timedelta) -> str:
    minutes = max(round(span.total_seconds() / 60), 1)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def refund(*, document_ids: list[uuid.UUID]) -> None:
    # Only documents that really ended failed or canceled: one that completed in the meantime
    # keeps its reservation.
    quota_give_back(
        Document.objects.filter(pk__in=document_ids, status__in=Document.REFUNDED_STATUSES)
    )


def quota_give_back(documents: QuerySet[Document]) -> None:
    """`documents` give back the month's quota they hold, and hold none any more."""
    holding = documents.filter(quota_month__isnull=False)
    rows = holding.values("user_id", "quota_month").annotate(n=Count("id"))
    for row in rows:
        month = row["quota_month"]
        if month is not None:  # always, by the filter; the row's type cannot say so
            quota_release(user_id=row["user_id"], month=month, documents=row["n"])
    holding.update(quota_month=None)


OPEN_STATUSES = (Document.Status.QUEUED, Document.Status.PROCESSING)
COUNTERS_EVERY = timedelta(seconds=1)


_SETTLE_SQL = """
SELECT status, updated_at < %s, EXISTS(
    SELECT 1 FROM {documents} WHERE batch_id = %s AND status IN (%s, %s)
)
FROM {batches} WHERE id = %s
"""


def _settle_batch(*, batch_id: uuid.UUID, now: datetime) -> None:
    """After one of its documents changed state: finish the batch when nothing is left open,
    else refresh its counters at most once a second (a full refresh per document serialised
    busy batches on the batch row).

    This runs after the document's own commit, so when two workers finish a batch's last two
    documents at once, the later of the two checks sees both and finishes the batch.
    """
    # Raw SQL because this runs after every document: the ORM took three times the CPU.
    sql = _SETTLE_SQL.format(
        batches=connection.ops.quote_name(BatchProcess._meta.db_table),
        documents=connection.ops.quote_name(Document._meta.db_table),
    )
    pk = BatchProcess._meta.pk.get_db_prep_value(batch_id, connection)
    stale = connection.ops.adapt_datetimefield_value(now - COUNTERS_EVERY)
    with connection.cursor() as cursor:
        cursor.execute(sql, (stale, pk, *OPEN_STATUSES, pk))
        row = cursor.fetchone()
    if row is None:
        return
    status, counters_due, open_documents = row
    # Inside a caller's transaction, our document is not committed yet: another worker
    # finishing the last document now would count ours as open. And the caller may hold the
    # event log's lock (it recorded our document's event), which a worker holding the batch row
    # may be waiting for (notifications.services._event_insert): never wait for that row here.
    inside = transaction.get_connection().in_atomic_block
    refreshed = None
    if not open_documents or status == BatchProcess.Status.CANCELED:
        with transaction.atomic():
            refreshed = batch_refresh(batch_id=batch_id, unless_busy=inside)
    elif counters_due:
        # Only counters are due: when another worker is refreshing them right now, its
        # refresh will do, and waiting for its lock would hold up this worker and the claims.
        with transaction.atomic():
            batch_refresh(batch_id=batch_id, unless_busy=True)
    if inside and (open_documents or refreshed is None):
        # Look again once ours is committed.
        transaction.on_commit(lambda: _settle_batch(batch_id=batch_id, now=timezone.now()))


def batch_refresh(*, batch_id: uuid.UUID, unless_busy: bool = False) -> str | None:
    """Recompute a batch's counters from its documents, and finish it when nothing is left.

    The move to a terminal status is a conditional UPDATE from a running status, so however many
    workers call this at once, the batch finishes exactly once and only that caller notifies.
    `unless_busy`: do nothing (and return None) when another transaction holds the batch row.
    """
    # Lock the batch first: two workers finishing its last two documents at once would each
    # count the other's as still open (PostgreSQL), and neither would finish the batch.
    status = (
        BatchProcess.objects.select_for_update(skip_locked=unless_busy, no_key=True)
        .filter(pk=batch_id)
        .values_list("status", flat=True)
        .first()
    )
    if status is None:
        return None
    if status == BatchProcess.Status.CANCELED:
        _cancel_leftovers(batch_id=batch_id)
    counts = _counts(batch_id)
    changes: dict[str, Any] = {
        "updated_at": timezone.now(),
        "total_documents": counts["total"],
        "processed_documents": counts["total"] - counts["open"],
        "failed_documents": counts["failed"],
    }
    running = status in (BatchProcess.Status.QUEUED, BatchProcess.Status.PROCESSING)
    if running and counts["open"] == 0 and counts["total"]:
        if run_settle(batch_id=batch_id, now=timezone.now()):
            # A trial run's documents show the current run's outcomes again.
            counts = _counts(batch_id)
            changes["failed_documents"] = counts["failed"]
        changes["status"] = finished_status(counts)
        changes.update(
            completed_at=timezone.now(), paused_reason="", finish_seq=F("finish_seq") + 1
        )
    # The status condition keeps "finished exactly once" even without the row lock (SQLite).
    updated = BatchProcess.objects.filter(pk=batch_id, status=status).update(**changes)
    if updated and "status" in changes:
        _checks_refresh(batch_id=batch_id)
        outbox_batch_finished(batch_id=batch_id)  # in this transaction, last; sent after commit
    elif updated and running and status == BatchProcess.Status.PROCESSING:
        outbox_batch_progress(batch_id=batch_id, counts=counts)
    outcome: str = changes.get("status", status)
    return outcome


def _checks_refresh(*, batch_id: uuid.UUID) -> None:
    """The finished batch's checks, in the transaction that finishes it, so that nobody sees it
    finished without them. One read of its results and two indexed lookups: small beside the
    finish. A fault in them is logged and never keeps the batch from finishing."""
    try:
        with transaction.atomic():
            batch_checks_refresh(batch_id=batch_id)
    except Exception:
        logger.exception("batch %s: its checks could not be computed", batch_id)


def _counts(batch_id: uuid.UUID) -> dict[str, int]:
    return Document.objects.filter(batch_id=batch_id).aggregate(
        total=Count("id"),
        open=Count("id", filter=Q(status__in=[Document.Status.QUEUED, Document.Status.PROCESSING])),
        completed=Count("id", filter=Q(status=Document.Status.COMPLETED)),
        failed=Count("id", filter=Q(status=Document.Status.FAILED)),
    )


def finished_status(counts: dict[str, int]) -> str:
    """The status a batch finishes with, by the counts of its documents."""
    canceled = counts["total"] - counts.get("open", 0) - counts["completed"] - counts["failed"]
    if counts["completed"] == counts["total"] - canceled:
        return BatchProcess.Status.COMPLETED
    if counts["completed"] == 0:
        return BatchProcess.Status.FAILED
    return BatchProcess.Status.COMPLETED_WITH_ERRORS


def _cancel_leftovers(*, batch_id: uuid.UUID) -> None:
    """Documents that went back to the queue after their batch was canceled (a transient error
    or an expired lease of a document that was in flight) are canceled, not left waiting."""
    leftovers = list(
        Document.objects.filter(
            batch_id=batch_id,
            status=Document.Status.QUEUED,
            batch__status=BatchProcess.Status.CANCELED,
        ).values_list("pk", flat=True)
    )
    if leftovers:
        _cancel_documents(document_ids=leftovers)


def _cancel_documents(*, document_ids: list[uuid.UUID]) -> None:
    Document.objects.filter(pk__in=document_ids, status=Document.Status.QUEUED).update(
        status=Document.Status.CANCELED,
        error_code="canceled",
        error_message="Canceled before it was processed.",
        error_kind="",  # not a failure: canceled by its owner
        completed_at=timezone.now(),
    )
    refund(document_ids=document_ids)
