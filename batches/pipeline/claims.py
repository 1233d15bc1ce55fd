"""Claims and leases: a worker takes the next due document with one conditional UPDATE and
holds it under a lease token until it records the outcome (or the lease expires)."""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, QuerySet, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from batches.models import BatchProcess, Run
from batches.pipeline.budgets import budget_admits
from batches.selectors import documents_waiting
from documents.models import Document
from notifications.services import outbox_batch_started

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Claim:
    """A document this worker holds under `lease_token` until `document_complete`/`_fail`.

    `document` is the row (with its batch) as the claim read it, so that processing does not
    read it again; code that builds a claim from elsewhere may leave it out.
    """

    document_id: uuid.UUID
    batch_id: uuid.UUID
    lease_token: uuid.UUID
    attempts: int
    document: Document | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of_held(cls, document: Document) -> Claim:
        """The claim a document in `processing` is held under (the economy lane keeps its
        documents leased while the provider works on them)."""
        if document.lease_token is None:
            raise ValueError(f"document {document.pk} is not held under a lease")
        return cls(
            document.pk, document.batch_id, document.lease_token, document.attempts, document
        )


# Round-robin between batches orders claims by the batch's `last_claimed_at`. Stamping it on
# every claim cost a write transaction per document; stamping it when it is older than this
# keeps the rotation (at this granularity) for a fraction of the writes.
ROUND_ROBIN_TICK = timedelta(milliseconds=250)


def document_claim(
    *,
    now: datetime | None = None,
    batch_id: uuid.UUID | None = None,
    document_ids: Collection[uuid.UUID] | None = None,
    known: dict[uuid.UUID, BatchProcess] | None = None,
) -> Claim | None:
    """Claim the next eligible document (of one batch, or among `document_ids`, when given),
    or None when nothing is due.

    Order: plan priority, then the batch served longest ago (round-robin, so one big batch never
    starves a small one), then age (`documents_waiting`). The claim is one conditional UPDATE of
    the first due document, so it is exclusive and costs one round trip: on PostgreSQL its
    candidate is locked with `SKIP LOCKED`, so concurrent workers pass over each other's
    candidates instead of queueing on them; on SQLite the statement holds the write lock.

    `known`: batches a caller that claims many documents keeps between claims (the runner, for
    one run), so that each claim does not read its batch again. What processing reads of a
    batch (engine, fields, prompt, mode) never changes once it is created, and a known batch's
    `last_claimed_at` is this caller's own last stamp.
    """
    if document_ids is not None and not document_ids:
        return None  # narrowed to nothing (a runner whose limit is reserved by other threads)
    known = {} if known is None else known
    # A document its batch's budget holds back pauses that batch, whose documents are then not
    # due: the next claim finds another batch's document (a race with a raise may repeat it).
    for _ in range(BUDGET_REFUSALS):
        claim = _claim_next(now=now, batch_id=batch_id, document_ids=document_ids, known=known)
        if claim is not REFUSED:
            return claim
    return None


BUDGET_REFUSALS = 3
REFUSED = Claim(uuid.UUID(int=0), uuid.UUID(int=0), uuid.UUID(int=0), 0)


def _claim_next(
    *,
    now: datetime | None,
    batch_id: uuid.UUID | None,
    document_ids: Collection[uuid.UUID] | None,
    known: dict[uuid.UUID, BatchProcess],
) -> Claim | None:
    now = now or timezone.now()
    token = uuid.uuid4()
    if batch_id is None and document_ids is None:
        candidate, params, at = _candidate_template(connection.vendor)
        params = (*params[:at], _db_now(now), *params[at + 1 :])
    else:
        waiting = documents_waiting(batch_id=batch_id, document_ids=document_ids)
        candidate, params = _candidate_sql(waiting, now)
    document = _lease_first(candidate, params, token=token, now=now)
    if document is None:
        return None
    batch = known.get(document.batch_id)
    if batch is None:
        batch = BatchProcess.objects.filter(pk=document.batch_id).first()
    else:
        # A budget can be set or changed at any time: a known batch's is the one the claim read.
        budget = getattr(document, "batch_budget_usd", None)
        batch.budget_usd = None if budget is None else Decimal(str(budget))
    if batch is None:
        # The batch was deleted meanwhile, with our document; processing will say "lost".
        return Claim(document.pk, document.batch_id, token, document.attempts)
    if batch.budget_usd is not None and not budget_admits(
        document=document, batch=batch, token=token, now=now
    ):
        return REFUSED
    stamped = batch.last_claimed_at
    if batch.status == BatchProcess.Status.QUEUED:
        # The batch row is touched after the document's statement, never while holding its
        # lock: waiting for the batch lock with a document locked would deadlock a cancel.
        with transaction.atomic():
            started = BatchProcess.objects.filter(
                pk=batch.pk, status=BatchProcess.Status.QUEUED
            ).update(
                last_claimed_at=now,
                started_at=Coalesce(F("started_at"), Value(now)),
                status=BatchProcess.Status.PROCESSING,
            )
            if started:  # this claim started it: one worker records it
                outbox_batch_started(batch_id=batch.pk)
            else:  # another worker did, after this one read the batch
                BatchProcess.objects.filter(pk=batch.pk).update(last_claimed_at=now)
        batch.last_claimed_at, batch.status = now, BatchProcess.Status.PROCESSING
    elif stamped is None or stamped < now - ROUND_ROBIN_TICK:
        BatchProcess.objects.filter(pk=batch.pk).update(last_claimed_at=now)
        batch.last_claimed_at = now
    known[batch.pk] = batch
    document.batch = batch
    return Claim(document.pk, batch.pk, token, document.attempts, document)


# The claim as one statement. Names are Django's defaults for these models (the tables are
# filled in from their meta); every value is a parameter.
_LEASE_FIRST_SQL = """
UPDATE {documents} SET status = %s, lease_token = %s, lease_expires_at = %s,
    attempts = attempts + 1, started_at = COALESCE(started_at, %s), updated_at = %s
WHERE id = ({candidate}) AND status = %s
RETURNING {columns},
    (SELECT {budget} FROM {batches} WHERE {batches}.id = {documents}.batch_id) AS batch_budget_usd,
    (SELECT {staged} FROM {runs} WHERE {runs}.id = {documents}.run_id) AS run_staged
"""


def _candidate_sql(waiting: QuerySet[Document], now: datetime) -> tuple[str, tuple[Any, ...]]:
    """The first of `waiting` that is due at `now`, as SQL for the claim's subquery."""
    return waiting.filter(next_attempt_at__lte=now).values("pk")[:1].query.sql_with_params()


def _db_now(now: datetime) -> Any:
    return Document._meta.get_field("next_attempt_at").get_db_prep_value(now, connection)


@functools.cache
def _candidate_template(vendor: str) -> tuple[str, tuple[Any, ...], int]:
    """The drain's candidate query (nothing narrowed), compiled once per process: building it
    with the ORM took a third of a claim's CPU, and only its `now` parameter ever changes.
    Returns the SQL, its parameters, and the position of `now` among them."""
    marker = datetime(2000, 1, 1, tzinfo=UTC)
    sql, params = _candidate_sql(documents_waiting(), marker)
    (at,) = [n for n, param in enumerate(params) if param == _db_now(marker)]
    return sql, params, at


def _lease_first(
    candidate: str, candidate_params: Sequence[Any], *, token: uuid.UUID, now: datetime
) -> Document | None:
    """Lease the first document the `candidate` query selects to `token` and return it as it
    is now, or None.

    `UPDATE … WHERE id = (SELECT id … LIMIT 1 [FOR NO KEY UPDATE OF document SKIP LOCKED])
    RETURNING …`: in autocommit, one round trip and no read-then-write transaction. It also
    returns the batch's budget as it is now (`batch_budget_usd`), which may change any time, and
    whether the run the document was sent to is staged (`run_staged`, None without a run). The ORM
    compiles the candidate query (the order lives in `documents_waiting`), and `raw()` turns
    the returned row into a model with the fields' converters applied.
    """
    meta, ops = Document._meta, connection.ops
    documents = ops.quote_name(meta.db_table)
    if connection.features.has_select_for_update_skip_locked:
        candidate += " " + ops.for_update_sql(skip_locked=True, of=(documents,), no_key=True)
    sql = _LEASE_FIRST_SQL.format(
        documents=documents,
        batches=ops.quote_name(BatchProcess._meta.db_table),
        budget=ops.quote_name(
            BatchProcess._meta.get_field("budget_usd").get_attname_column()[1] or ""
        ),
        runs=ops.quote_name(Run._meta.db_table),
        staged=ops.quote_name(Run._meta.get_field("staged").get_attname_column()[1] or ""),
        candidate=candidate,
        columns=", ".join(ops.quote_name(f.column) for f in meta.concrete_fields if f.column),
    )
    fields = {f.name: f for f in meta.concrete_fields}

    def prep(name: str, value: Any) -> Any:
        return fields[name].get_db_prep_save(value, connection)

    params = (
        prep("status", Document.Status.PROCESSING),
        prep("lease_token", token),
        prep("lease_expires_at", now + timedelta(seconds=settings.SHEAF_LEASE_SECONDS)),
        prep("started_at", now),
        prep("updated_at", now),
        *candidate_params,
        prep("status", Document.Status.QUEUED),
    )
    return next(iter(Document.objects.raw(sql, params)), None)


def document_renew_leases(*, tokens: list[uuid.UUID], now: datetime | None = None) -> int:
    """Extend the leases this worker still holds (its heartbeat); returns how many it extended.

    Only ever later: the heartbeat copies its tokens before renewing, so a document the economy
    lane took meanwhile (its lease set to a day) would otherwise be cut back to a minute."""
    if not tokens:
        return 0
    now = now or timezone.now()
    until = now + timedelta(seconds=settings.SHEAF_LEASE_SECONDS)
    return Document.objects.filter(
        status=Document.Status.PROCESSING, lease_token__in=tokens, lease_expires_at__lt=until
    ).update(lease_expires_at=until)


def held(claim: Claim) -> QuerySet[Document]:
    """The document, only while this worker's lease on it is current."""
    return Document.objects.filter(
        pk=claim.document_id, status=Document.Status.PROCESSING, lease_token=claim.lease_token
    )


def kick_workers() -> None:
    """Ask the cluster for a drain (called after commit, so workers see the new rows)."""
    from batches.tasks import enqueue_drain

    # One drain per worker process, so a new batch is spread over all of them at once.
    enqueue_drain(settings.SHEAF_WORKERS)
