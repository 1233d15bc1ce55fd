"""The economy lane: documents wait, read and leased for a day, for the provider's batch API.

The sweep submits them in chunks and collects the answers; an errored or expired request goes
back to the standard path without spending an attempt."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from batches.models import BatchProcess, EngineCircuit
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

    Documents are first marked with a token by a conditional UPDATE, so two sweeps never send
    the same document; a sweep that dies between marking and storing the batch id leaves the
    mark, which `economy_recover` clears after ten minutes.
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
        mark = f"{SUBMITTING}{uuid.uuid4().hex}"
        ids = list(
            waiting.filter(batch__engine=engine_name)
            .order_by("created_at")
            .values_list("pk", flat=True)[:ECONOMY_CHUNK]
        )
        Document.objects.filter(pk__in=ids, provider_batch_id="").update(
            provider_batch_id=mark, updated_at=now
        )
        marked = list(Document.objects.filter(provider_batch_id=mark).select_related("batch"))
        if not marked:
            continue
        engine, lane = _lane(engine_name)
        requests = []
        for document in marked:
            claim = Claim.of_held(document)
            request = extraction_request(document, engine, claim)
            if request is not None:
                requests.append((document.pk.hex, lane.params(request)))
        try:
            batch_id = lane.submit_batch(requests)
        except ExtractionError as error:
            Document.objects.filter(provider_batch_id=mark).update(provider_batch_id="")
            logger.warning("economy submission failed: %s", error.message)
            if error.kind == ErrorKind.CRITICAL:
                circuit_open(engine=engine_name, reason=error.message, now=now)
            continue
        Document.objects.filter(provider_batch_id=mark).update(provider_batch_id=batch_id)
        sent += len(requests)
    return sent


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
    """Clear submission marks left by a sweep that died mid-submission."""
    now = now or timezone.now()
    return Document.objects.filter(
        status=Document.Status.PROCESSING,
        provider_batch_id__startswith=SUBMITTING,
        updated_at__lt=now - timedelta(minutes=10),
    ).update(provider_batch_id="")
