"""The economy lane: documents wait, read and leased for a day, for the provider's batch API.

The sweep submits them in chunks and collects the answers; an errored or expired request goes
back to the standard path without spending an attempt.

A chunk is submitted exactly once, however the workers die. Each step is durable before the
next: (1) an `EconomySubmission` is recorded and its documents marked `submitting:<id>`, (2) the
requests' custom_ids are stored on it, (3) the provider's batch is created, (4) its id replaces
the marks and the submission row goes. A submission left behind (past `reconcile_after`) is
never simply sent again: before (2) nothing can have been sent, so its documents are released;
after (2) the provider's list of batches is searched for one holding its custom_ids, which is
adopted, and only when none can hold them are the documents released to be sent again.

A submitter presumed dead may only be slow. Every step renews `reconcile_after`, and every
settlement deletes the row only as it was read, so a recovery that read it before the
submitter's next step settles nothing; and step (3) ends, however slow the upload, before
`reconcile_after` passes (see `_submit_grace`).

The lane is a guest in the recovery sweep: each engine, submission and provider batch is
handled on its own, and what fails is logged and tried again at the next sweep, so that neither
a node without the provider's key nor one bad document stops a drain or the other documents."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, QuerySet, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from batches.models import BatchProcess, EconomySubmission, EngineCircuit
from batches.pipeline.circuits import circuit_open
from batches.pipeline.claims import Claim, held, kick_workers
from batches.pipeline.finishing import costs_added, document_complete, document_fail, settled
from batches.pipeline.reading import extraction_request
from documents.models import Document
from extraction import get_engine
from extraction.contract import EconomyLane, EconomyOutcome, Engine, ErrorKind, ExtractionError

logger = logging.getLogger(__name__)


ECONOMY_LEASE = timedelta(hours=26)  # message batches end within 24 hours
ECONOMY_CHUNK = 500
SUBMITTING = "submitting:"
FALLBACK = "fallback"


def wants_economy(document: Document, engine: Engine) -> bool:
    return (
        document.batch.mode == BatchProcess.Mode.ECONOMY
        and engine.economy is not None
        and document.provider_batch_id != FALLBACK
    )


def _lane(engine_name: str) -> tuple[Engine, EconomyLane]:
    engine = get_engine(engine_name)
    if engine.economy is None:
        # Only a batch whose engine has a lane is ever deferred (see `wants_economy`).
        raise ExtractionError(
            "provider_error",
            f"The {engine_name!r} engine has no economy lane.",
            kind=ErrorKind.CRITICAL,
        )
    return engine, engine.economy


def defer_to_economy(*, claim: Claim) -> str:
    """Keep the document (read, in `processing`) under a day-long lease until the sweep sends
    it in a message batch and later collects its result."""
    kept = held(claim).update(lease_expires_at=timezone.now() + ECONOMY_LEASE)
    return "deferred" if kept else "lost"


def economy_submit(*, now: datetime | None = None) -> int:
    """Send waiting economy documents to the provider in message batches; returns how many.

    Documents are marked for one submission by a conditional UPDATE, so two sweeps never send
    the same document; see the module's docstring for how a submission survives a crash. One
    engine's failure (no key on this node, a bug) is logged and leaves the others to go on.
    """
    now = now or timezone.now()
    waiting = Document.objects.filter(
        status=Document.Status.PROCESSING,
        batch__mode=BatchProcess.Mode.ECONOMY,
        provider_batch_id="",
        read_at__isnull=False,
    ).exclude(batch__engine__in=EngineCircuit.objects.values("engine"))
    sent = 0
    for engine_name in set(waiting.values_list("batch__engine", flat=True)):
        try:
            sent += _submit_chunk(
                engine_name=engine_name, waiting=waiting.filter(batch__engine=engine_name), now=now
            )
        except ExtractionError as error:
            logger.warning("economy lane of %s: %s", engine_name, error.message)
        except Exception:
            logger.exception("economy submission for %s failed; going on", engine_name)
    return sent


# Anthropic caps one message batch at 256 MB of requests. Half of it leaves room for the
# encoding's overhead and bounds what a worker holds in memory (and uploads) at once.
ECONOMY_MAX_BYTES = 128 * 1024 * 1024


def _submit_chunk(*, engine_name: str, waiting: QuerySet[Document], now: datetime) -> int:
    engine, lane = _lane(engine_name)  # before anything is marked: this node may lack the key
    ids = list(waiting.order_by("created_at").values_list("pk", flat=True)[:ECONOMY_CHUNK])
    submission = _intend(engine_name=engine_name, document_ids=ids)
    if submission is None:
        return 0
    try:
        requests = _prepare(submission=submission, engine=engine, lane=lane, now=now)
    except BaseException:
        _release(submission)  # nothing was sent: its documents wait for the next sweep
        raise
    if not _record_requests(submission=submission, custom_ids=[cid for cid, _ in requests]):
        return 0  # nothing to send, or presumed dead and released meanwhile
    try:
        batch_id = lane.submit_batch(requests)
    except ExtractionError as error:
        logger.warning("economy submission failed: %s", error.message)
        if error.kind == ErrorKind.PERMANENT:
            # A definite refusal (400, 413): no batch was made, and sending the same requests
            # again would be refused again. Each document gets its own answer on the standard
            # path instead of waiting here for ever.
            _refused(submission=submission, reason=error.message, now=now)
            return 0
        # Whether the provider made the batch is unknown (a timeout, say): reconcile soon.
        EconomySubmission.objects.filter(pk=submission.pk).update(
            reconcile_after=timezone.now() + RECONCILE_AFTER_FAILURE
        )
        if error.kind == ErrorKind.CRITICAL:
            circuit_open(engine=engine_name, reason=error.message, now=now)
        return 0
    _record_submitted(submission=submission, provider_batch_id=batch_id)
    return len(requests)


def _prepare(
    *, submission: EconomySubmission, engine: Engine, lane: EconomyLane, now: datetime
) -> list[tuple[str, dict[str, Any]]]:
    """The requests of the submission's documents, at most ECONOMY_MAX_BYTES of them.

    A document is dealt with on its own, and leaves the submission, when its request cannot
    be made (the engine's error, say a scanned PDF over the provider's page or size limit, is
    recorded on it), when it is too large for any batch (the standard path answers for it), or
    when the chunk is full (it waits for the next sweep). One document never holds back the
    others."""
    requests: list[tuple[str, dict[str, Any]]] = []
    size = 0
    marked = _marked(submission).filter(status=Document.Status.PROCESSING)
    for document in marked.select_related("batch").order_by("created_at"):
        claim = Claim.of_held(document)
        try:
            request = extraction_request(document, engine, claim)
            params = lane.params(request) if request is not None else None
        except ExtractionError as error:
            _drop(submission, document, fail=(claim, error))
            continue
        except Exception as exc:
            logger.exception("document %s: its economy request failed", document.pk)
            _drop(submission, document, fail=(claim, _internal_error(document, exc)))
            continue
        if params is None:
            _drop(submission, document)  # the lease was lost meanwhile
            continue
        bytes_ = len(json.dumps({"custom_id": document.pk.hex, "params": params}))
        if bytes_ > ECONOMY_MAX_BYTES:
            # `fallback` replaces the mark, in the same statement that requeues it.
            _economy_fallback(claim=claim, reason="too large for a message batch", now=now)
        elif size + bytes_ > ECONOMY_MAX_BYTES:
            _drop(submission, document)
        else:
            requests.append((document.pk.hex, params))
            size += bytes_
    # Marked documents that left `processing` meanwhile (an expired lease) are not ours.
    _marked(submission).exclude(status=Document.Status.PROCESSING).update(provider_batch_id="")
    return requests


def _drop(
    submission: EconomySubmission,
    document: Document,
    *,
    fail: tuple[Claim, ExtractionError] | None = None,
) -> None:
    """Take a document out of the submission (and record its failure, when it failed), in one
    transaction, so that it never waits unmarked for a batch while it is failed, or failed
    while it is still marked to be sent."""
    with transaction.atomic():
        if fail is not None:
            claim, error = fail
            document_fail(claim=claim, error=error)
        Document.objects.filter(pk=document.pk, provider_batch_id=_mark(submission)).update(
            provider_batch_id=""
        )


def _internal_error(document: Document, exc: Exception) -> ExtractionError:
    # As in `document_process`: a bug, not the document's fault; retried, bounded by attempts.
    return ExtractionError(
        "internal_error",
        f"{document.original_filename}: an unexpected error stopped processing "
        f"({type(exc).__name__}); it will be retried.",
        kind=ErrorKind.TRANSIENT,
    )


# A submitter that has marked its documents but not stored its requests yet is presumed dead
# after this (preparing 500 requests reads no files but scanned PDFs: the text is stored).
PREPARE_GRACE = timedelta(minutes=10)
# After an error the request has ended on our side; a minute lets the provider finish one that
# timed out before its list of batches is searched.
RECONCILE_AFTER_FAILURE = timedelta(minutes=1)
# The provider's clock may differ from ours: look for its batch from this much earlier.
CLOCK_SKEW = timedelta(minutes=10)


def _submit_grace() -> timedelta:
    """How long a submitter that has stored its requests may take to send them. The lane's
    submission ends within about twice the SDK's timeout however slowly its upload goes (its
    upload has a deadline of its own, the answer a read timeout; see the Claude engine's
    `submit_batch`), so that a request still on its way has ended before the provider is
    searched; the minute is for encoding the requests and a clock that lags."""
    return timedelta(seconds=2 * settings.SHEAF_ANTHROPIC_TIMEOUT_SECONDS + 60)


def _mark(submission: EconomySubmission) -> str:
    return f"{SUBMITTING}{submission.pk.hex}"


def _marked(submission: EconomySubmission) -> QuerySet[Document]:
    return Document.objects.filter(provider_batch_id=_mark(submission))


def _intend(*, engine_name: str, document_ids: list[uuid.UUID]) -> EconomySubmission | None:
    """Step 1: record the submission and mark its documents, in one transaction (None when
    another sweep took them all first). Only documents still in `processing` are marked: one
    whose lease expired since it was picked is back in the queue."""
    now = timezone.now()
    with transaction.atomic():
        submission = EconomySubmission.objects.create(
            engine=engine_name, created_at=now, reconcile_after=now + PREPARE_GRACE
        )
        marked = Document.objects.filter(
            pk__in=document_ids, provider_batch_id="", status=Document.Status.PROCESSING
        ).update(provider_batch_id=_mark(submission), updated_at=now)
        if not marked:
            submission.delete()
            return None
    return submission


def _record_requests(*, submission: EconomySubmission, custom_ids: list[str]) -> bool:
    """Step 2, just before anything is sent: the requests' ids, which find the provider's batch
    if the outcome of sending it is lost, and a fresh `reconcile_after`, which keeps a recovery
    away for as long as sending may take. Conditional on the row as this submitter left it, so
    that a recovery that presumed it dead and released it wins, and nothing is sent. False when
    there is nothing to send or the submission was released."""
    if not custom_ids:
        _release(submission)
        return False
    fresh = timezone.now() + _submit_grace()
    recorded = EconomySubmission.objects.filter(
        pk=submission.pk, reconcile_after=submission.reconcile_after
    ).update(custom_ids=custom_ids, reconcile_after=fresh)
    submission.custom_ids, submission.reconcile_after = custom_ids, fresh
    return bool(recorded)


def _record_submitted(*, submission: EconomySubmission, provider_batch_id: str) -> bool:
    """Step 4: the provider's batch id on the documents; nothing is on its way any more. False
    when the submission had changed since `submission` was read (see `_settle`)."""
    if not _settle(submission, provider_batch_id=provider_batch_id):
        # Presumed dead and settled by a sweep while this request was out, longer than the
        # grace allows, or taken over by the submitter that is still alive.
        logger.error(
            "economy submission %s was settled elsewhere before its batch %s was recorded; "
            "check that batch",
            submission.pk,
            provider_batch_id,
        )
        return False
    return True


def _release(submission: EconomySubmission) -> bool:
    """Nothing of this submission reached the provider: its documents wait to be sent again."""
    return _settle(submission, provider_batch_id="")


def _refused(*, submission: EconomySubmission, reason: str, now: datetime) -> None:
    """The provider refused the submission outright: its documents go to the standard path."""
    with transaction.atomic():
        if not _settle(submission, provider_batch_id=FALLBACK):
            return
        documents = Document.objects.filter(
            pk__in=[uuid.UUID(hex=cid) for cid in submission.custom_ids],
            provider_batch_id=FALLBACK,
            status=Document.Status.PROCESSING,
        )
        for document in documents:
            _economy_fallback(
                claim=Claim.of_held(document), reason=f"the batch was refused ({reason})", now=now
            )


def _settle(submission: EconomySubmission, *, provider_batch_id: str) -> bool:
    """Give the marked documents `provider_batch_id` and end the submission. Deleting its row
    first, only as `submission` read it (the same `reconcile_after`, which every step renews),
    decides between the live submitter and a recovery, and between two recoveries: False when
    another settled it, or its submitter renewed it, meanwhile."""
    with transaction.atomic():
        deleted, _ = EconomySubmission.objects.filter(
            pk=submission.pk, reconcile_after=submission.reconcile_after
        ).delete()
        if not deleted:
            return False
        _marked(submission).update(provider_batch_id=provider_batch_id)
    return True


def economy_collect(*, now: datetime | None = None) -> int:
    """Poll the provider's message batches; store results (matched by custom_id, in any order)
    and send errored or expired documents back to the standard path. Returns how many ended.

    Each batch is collected on its own: one that cannot be read now (no key on this node, the
    provider unreachable) is tried again at the next sweep, and the others go on; one the
    provider refuses for good (404: its results are gone) sends its documents to the standard
    path, instead of being asked for again at every sweep."""
    now = now or timezone.now()
    pending = (
        Document.objects.filter(status=Document.Status.PROCESSING)
        .exclude(provider_batch_id__in=["", FALLBACK])
        .exclude(provider_batch_id__startswith=SUBMITTING)
        .values_list("provider_batch_id", "batch__engine")
        .distinct()
    )
    ended = 0
    for provider_batch_id, engine_name in set(pending):
        try:
            ended += _collect(provider_batch_id=provider_batch_id, engine_name=engine_name, now=now)
        except Exception:
            logger.exception("economy batch %s: collecting failed; going on", provider_batch_id)
    return ended


def _collect(*, provider_batch_id: str, engine_name: str, now: datetime) -> int:
    documents = {
        d.pk.hex: d
        for d in Document.objects.filter(
            provider_batch_id=provider_batch_id, status=Document.Status.PROCESSING
        ).select_related("batch")
    }
    try:
        engine, lane = _lane(engine_name)
        outcomes = lane.batch_results(provider_batch_id)
    except ExtractionError as error:
        logger.warning("economy batch %s: %s", provider_batch_id, error.message)
        if error.kind != ErrorKind.PERMANENT:
            return 0
        for unreadable in documents.values():
            _economy_fallback(
                claim=Claim.of_held(unreadable),
                reason=f"its batch cannot be read ({error.message})",
                now=now,
            )
        return len(documents)
    if outcomes is None:
        return 0
    ended = 0
    for outcome in outcomes:
        document = documents.pop(outcome.custom_id, None)
        if document is None:
            continue
        try:
            _store_outcome(document, outcome, engine=engine, lane=lane, now=now)
        except Exception:
            # Left in `processing` under its lease: the next sweep tries again, and an
            # expired lease sends it to the standard path.
            logger.exception("document %s: storing its economy answer failed", document.pk)
            continue
        ended += 1
    for document in documents.values():  # the provider returned nothing for these
        claim = Claim.of_held(document)
        _economy_fallback(claim=claim, reason="missing from the batch results", now=now)
    return ended


def _store_outcome(
    document: Document, outcome: EconomyOutcome, *, engine: Engine, lane: EconomyLane, now: datetime
) -> None:
    claim = Claim.of_held(document)
    if outcome.message is None:
        _economy_fallback(claim=claim, reason=outcome.error or "no result", now=now)
        return
    request = extraction_request(document, engine, claim)
    if request is None:
        return  # the lease was lost meanwhile
    try:
        result = lane.economy_result(outcome.message, request)
    except ExtractionError as error:
        # Paid for at the batch price: the cost stays with the document.
        spent = costs_added(claim=claim, cost_usd=error.cost_usd, usage=error.usage)
        _economy_fallback(claim=claim, reason="invalid answer", now=now, spent=spent)
        return
    document_complete(
        claim=claim,
        result=settled(result.result, request),
        cost_usd=result.cost_usd,
        usage=result.usage,
    )


def _economy_fallback(
    *, claim: Claim, reason: str, now: datetime, spent: dict[str, Any] | None = None
) -> None:
    """Back to the queue for the standard path, without spending an attempt."""
    changed = held(claim).update(
        **(spent or {}),
        status=Document.Status.QUEUED,
        provider_batch_id=FALLBACK,
        attempts=Greatest(F("attempts") - 1, Value(0)),
        next_attempt_at=now,
        lease_token=None,
        lease_expires_at=None,
        error_code="",
        error_message=f"Economy lane: {reason}; processed at the standard price instead.",
        error_kind="",
    )
    if changed:
        transaction.on_commit(kick_workers)


def economy_recover(*, now: datetime | None = None) -> int:
    """Settle the submissions whose submitter is presumed dead (see the module's docstring):
    release those that cannot have been sent, adopt the provider's batch holding the requests
    of the others, and wait while a batch that may hold them is still running. Each is settled
    on its own (one that fails is tried again at the next sweep). Returns how many were
    settled."""
    now = now or timezone.now()
    try:
        _adopt_unrecorded_marks(now=now)
    except Exception:
        logger.exception("economy lane: adopting unrecorded marks failed; going on")
    settled = 0
    for submission in EconomySubmission.objects.filter(reconcile_after__lt=now):
        try:
            settled += _reconcile(submission)
        except ExtractionError as error:
            logger.warning("economy submission %s: %s", submission.pk, error.message)
        except Exception:
            logger.exception("economy submission %s: reconciling failed; going on", submission.pk)
    return settled


def _reconcile(submission: EconomySubmission) -> int:
    """Settle one submission as read (every settlement is conditional on the row not having
    changed since: a submitter that was only slow, and renewed it, keeps it)."""
    if not submission.custom_ids:
        return int(_release(submission))
    try:
        found = _provider_batch_of(submission)
    except _StillRunning:
        return 0
    if found is None:
        return int(_release(submission))
    if not _record_submitted(submission=submission, provider_batch_id=found):
        return 0
    logger.info("economy submission %s found as batch %s", submission.pk, found)
    return 1


class _StillRunning(Exception):
    """A provider batch that may hold the requests is still running: its results, the only
    place its custom_ids show, cannot be read yet."""


def _provider_batch_of(submission: EconomySubmission) -> str | None:
    """The id of the provider's batch that holds the submission's requests, or None when none
    can (nothing was sent); raises _StillRunning while that cannot be told yet.

    An ended batch is matched by its requests' custom_ids. A running one shows only how many
    requests it holds, so a batch of the same number is waited for, but only one created while
    the submission could have been sent: from its record until its `reconcile_after` (the
    submitter's deadline, renewed before sending; a minute past a failed send), give or take
    CLOCK_SKEW. An unrelated batch created hours later cannot hold a submission up for a day.
    """
    _, lane = _lane(submission.engine)
    wanted = set(submission.custom_ids)
    batches = lane.recent_batches(since=submission.created_at - CLOCK_SKEW)
    known = set(
        Document.objects.filter(provider_batch_id__in=[b.id for b in batches]).values_list(
            "provider_batch_id", flat=True
        )
    )
    latest = submission.reconcile_after + CLOCK_SKEW
    candidates = [
        b
        for b in batches
        if b.id not in known and b.requests == len(wanted) and b.created_at <= latest
    ]
    running = False
    for batch in candidates:
        try:
            outcomes = lane.batch_results(batch.id)
        except ExtractionError as error:
            if error.kind != ErrorKind.PERMANENT:
                raise
            continue  # its results are gone: it cannot be shown to hold ours
        if outcomes is None:
            running = True
        elif wanted & {outcome.custom_id for outcome in outcomes}:
            return batch.id
    if running:
        raise _StillRunning
    return None


def _adopt_unrecorded_marks(*, now: datetime) -> None:
    """Marks left by a version of Sheaf that recorded no submission: give them one whose
    custom_ids are the marked documents, to be reconciled like any other."""
    orphans = (
        Document.objects.filter(
            status=Document.Status.PROCESSING,
            provider_batch_id__startswith=SUBMITTING,
            updated_at__lt=now - PREPARE_GRACE,
        )
        .exclude(
            provider_batch_id__in=[
                f"{SUBMITTING}{pk.hex}"
                for pk in EconomySubmission.objects.values_list("pk", flat=True)
            ]
        )
        .values_list("provider_batch_id", "pk", "batch__engine", "updated_at")
    )
    groups: dict[str, list[tuple[uuid.UUID, str, datetime]]] = {}
    for mark, pk, engine_name, updated_at in orphans:
        groups.setdefault(mark, []).append((pk, engine_name, updated_at))
    for mark, members in groups.items():
        try:
            pk = uuid.UUID(mark.removeprefix(SUBMITTING))
        except ValueError:
            continue
        EconomySubmission.objects.get_or_create(
            pk=pk,
            defaults={
                "engine": members[0][1],
                "custom_ids": [member.hex for member, _, _ in members],
                "created_at": min(updated_at for _, _, updated_at in members),
                "reconcile_after": now - timedelta(seconds=1),
            },
        )
