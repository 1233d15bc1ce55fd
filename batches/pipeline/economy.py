"""The economy lane: documents wait, read and leased for a day, for the provider's batch API.

The sweep submits them in chunks and collects the answers; an errored or expired request goes
back to the standard path without spending an attempt.

A chunk is submitted exactly once, however the workers die. Each step is durable before the
next: (1) an `EconomySubmission` is recorded and its documents marked `submitting:<id>`, (2) the
requests' custom_ids are stored on it, (3) the provider's batch is created, (4) its id replaces
the marks and the submission row goes. A submission left behind (past `reconcile_after`) is
never simply sent again: before (2) nothing can have been sent, so its documents are released;
after (2) the provider's list of batches is searched for one holding its custom_ids, which is
adopted, and only when none can hold them are the documents released to be sent again."""

from __future__ import annotations

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
from batches.pipeline.finishing import costs_added, document_complete
from batches.pipeline.reading import extraction_request
from documents.models import Document
from extraction import get_engine
from extraction.contract import EconomyLane, Engine, ErrorKind, ExtractionError

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
    the same document; see the module's docstring for how a submission survives a crash.
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
        ids = list(
            waiting.filter(batch__engine=engine_name)
            .order_by("created_at")
            .values_list("pk", flat=True)[:ECONOMY_CHUNK]
        )
        submission = _intend(engine_name=engine_name, document_ids=ids)
        if submission is None:
            continue
        engine, lane = _lane(engine_name)
        requests = []
        for document in _marked(submission).select_related("batch"):
            request = extraction_request(document, engine, Claim.of_held(document))
            if request is not None:
                requests.append((document.pk.hex, lane.params(request)))
        if not _record_requests(submission=submission, custom_ids=[cid for cid, _ in requests]):
            continue  # presumed dead and released meanwhile: another sweep sends them
        try:
            batch_id = lane.submit_batch(requests)
        except ExtractionError as error:
            # Whether the provider made the batch is unknown (a timeout, say): reconcile soon.
            EconomySubmission.objects.filter(pk=submission.pk).update(
                reconcile_after=timezone.now() + RECONCILE_AFTER_FAILURE
            )
            logger.warning("economy submission failed: %s", error.message)
            if error.kind == ErrorKind.CRITICAL:
                circuit_open(engine=engine_name, reason=error.message, now=now)
            continue
        _record_submitted(submission=submission, provider_batch_id=batch_id)
        sent += len(requests)
    return sent


# A submitter that has marked its documents but not stored its requests yet is presumed dead
# after this (preparing 500 requests reads no files: the text is stored).
PREPARE_GRACE = timedelta(minutes=10)
# After an error the request has ended on our side; a minute lets the provider finish one that
# timed out before its list of batches is searched.
RECONCILE_AFTER_FAILURE = timedelta(minutes=1)
# The provider's clock may differ from ours: look for its batch from this much earlier.
CLOCK_SKEW = timedelta(minutes=10)


def _submit_grace() -> timedelta:
    """How long a submitter that has stored its requests may take to send them: twice the SDK's
    timeout, so that a request still on its way has ended before the provider is searched."""
    return timedelta(seconds=2 * settings.SHEAF_ANTHROPIC_TIMEOUT_SECONDS + 60)


def _mark(submission: EconomySubmission) -> str:
    return f"{SUBMITTING}{submission.pk.hex}"


def _marked(submission: EconomySubmission) -> QuerySet[Document]:
    return Document.objects.filter(provider_batch_id=_mark(submission))


def _intend(*, engine_name: str, document_ids: list[uuid.UUID]) -> EconomySubmission | None:
    """Step 1: record the submission and mark its documents, in one transaction (None when
    another sweep took them all first)."""
    now = timezone.now()
    with transaction.atomic():
        submission = EconomySubmission.objects.create(
            engine=engine_name, created_at=now, reconcile_after=now + PREPARE_GRACE
        )
        marked = Document.objects.filter(pk__in=document_ids, provider_batch_id="").update(
            provider_batch_id=_mark(submission), updated_at=now
        )
        if not marked:
            submission.delete()
            return None
    return submission


def _record_requests(*, submission: EconomySubmission, custom_ids: list[str]) -> bool:
    """Step 2, before anything is sent: the requests' ids, which find the provider's batch if
    the outcome of sending it is lost. False when the submission was released meanwhile."""
    if not custom_ids:
        _release(submission)
        return False
    submission.custom_ids = custom_ids
    return bool(
        EconomySubmission.objects.filter(pk=submission.pk).update(
            custom_ids=custom_ids, reconcile_after=timezone.now() + _submit_grace()
        )
    )


def _record_submitted(*, submission: EconomySubmission, provider_batch_id: str) -> None:
    """Step 4: the provider's batch id on the documents; nothing is on its way any more."""
    if not _settle(submission, provider_batch_id=provider_batch_id):
        # Presumed dead and settled by a sweep while this request was out, longer than the
        # grace allows: its documents may be on their way again.
        logger.error(
            "economy submission %s was settled while it was sent as %s; check that batch",
            submission.pk,
            provider_batch_id,
        )


def _release(submission: EconomySubmission) -> None:
    """Nothing of this submission reached the provider: its documents wait to be sent again."""
    _settle(submission, provider_batch_id="")


def _settle(submission: EconomySubmission, *, provider_batch_id: str) -> bool:
    """Give the marked documents `provider_batch_id` and end the submission; deleting its row
    first decides which of two sweeps settling it at once does so (False: another did)."""
    with transaction.atomic():
        deleted, _ = EconomySubmission.objects.filter(pk=submission.pk).delete()
        if not deleted:
            return False
        _marked(submission).update(provider_batch_id=provider_batch_id)
    return True


def economy_collect(*, now: datetime | None = None) -> int:
    """Poll the provider's message batches; store results (matched by custom_id, in any order)
    and send errored or expired documents back to the standard path. Returns how many ended."""
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
        engine, lane = _lane(engine_name)
        try:
            outcomes = lane.batch_results(provider_batch_id)
        except ExtractionError as error:
            logger.warning("economy batch %s: %s", provider_batch_id, error.message)
            continue
        if outcomes is None:
            continue
        documents = {
            d.pk.hex: d
            for d in Document.objects.filter(
                provider_batch_id=provider_batch_id, status=Document.Status.PROCESSING
            ).select_related("batch")
        }
        for outcome in outcomes:
            document = documents.pop(outcome.custom_id, None)
            if document is None:
                continue
            ended += 1
            claim = Claim.of_held(document)
            if outcome.message is not None:
                request = extraction_request(document, engine, claim)
                if request is None:
                    continue  # the lease was lost meanwhile
                try:
                    result = lane.economy_result(outcome.message, request)
                except ExtractionError as error:
                    # Paid for at the batch price: the cost stays with the document.
                    spent = costs_added(claim=claim, cost_usd=error.cost_usd, usage=error.usage)
                    _economy_fallback(claim=claim, reason="invalid answer", now=now, spent=spent)
                    continue
                document_complete(
                    claim=claim, result=result.result, cost_usd=result.cost_usd, usage=result.usage
                )
            else:
                _economy_fallback(claim=claim, reason=outcome.error or "no result", now=now)
        for document in documents.values():  # the provider returned nothing for these
            claim = Claim.of_held(document)
            _economy_fallback(claim=claim, reason="missing from the batch results", now=now)
    return ended


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
    of the others, and wait while a batch that may hold them is still running. Returns how many
    were settled."""
    now = now or timezone.now()
    _adopt_unrecorded_marks(now=now)
    settled = 0
    for submission in EconomySubmission.objects.filter(reconcile_after__lt=now):
        if not submission.custom_ids:
            _release(submission)
            settled += 1
            continue
        try:
            found = _provider_batch_of(submission)
        except _StillRunning:
            continue
        except ExtractionError as error:
            logger.warning("economy submission %s: %s", submission.pk, error.message)
            continue
        if found is None:
            _release(submission)
        else:
            _record_submitted(submission=submission, provider_batch_id=found)
            logger.info("economy submission %s found as batch %s", submission.pk, found)
        settled += 1
    return settled


class _StillRunning(Exception):
    """A provider batch that may hold the requests is still running: its results, the only
    place its custom_ids show, cannot be read yet."""


def _provider_batch_of(submission: EconomySubmission) -> str | None:
    """The id of the provider's batch that holds the submission's requests, or None when none
    can (nothing was sent); raises _StillRunning while that cannot be told yet."""
    _, lane = _lane(submission.engine)
    wanted = set(submission.custom_ids)
    batches = lane.recent_batches(since=submission.created_at - CLOCK_SKEW)
    known = set(
        Document.objects.filter(provider_batch_id__in=[b.id for b in batches]).values_list(
            "provider_batch_id", flat=True
        )
    )
    # A batch of exactly these requests: the same number of them, and no document of ours
    # already names it.
    candidates = [b for b in batches if b.id not in known and b.requests == len(wanted)]
    running = False
    for batch in candidates:
        outcomes = lane.batch_results(batch.id)
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
