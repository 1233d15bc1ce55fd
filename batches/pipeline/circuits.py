"""Circuits: a critical provider error (bad key, no credit) pauses an engine's batches instead of
failing their documents, until a probe finds the provider working again."""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from batches.models import BatchProcess, EngineCircuit
from batches.pipeline.claims import Claim, held, kick_workers
from documents.models import Document
from extraction import get_engine
from extraction.contract import ExtractionError
from notifications.models import EventKind
from notifications.services import outbox_batch_state

logger = logging.getLogger(__name__)


PAUSED_REASON = "provider unavailable"


def pause_for_provider(
    *, claim: Claim, error: ExtractionError, now: datetime, spent: dict[str, Any]
) -> str:
    """A critical error (bad key, no credit) is not the document's fault: put it back without
    spending an attempt, and open the engine's circuit so nothing more is sent until a probe
    succeeds. Its batches keep their status and say why they wait. `spent`: the document's
    cost with what this attempt paid before the refusal (see `finishing.costs_added`)."""
    engine = BatchProcess.objects.values_list("engine", flat=True).filter(pk=claim.batch_id).first()
    if engine is None:
        return "lost"  # the batch was deleted (with its account, say) while we held it
    with transaction.atomic():
        changed = held(claim).update(
            status=Document.Status.QUEUED,
            attempts=Greatest(F("attempts") - 1, Value(0)),
            next_attempt_at=now,
            error_code=error.code,
            error_message=error.message,
            error_kind=Document.ErrorKind.CRITICAL,
            rate_limited_since=None,
            **spent,
            lease_token=None,
            lease_expires_at=None,
            updated_at=now,
        )
        if not changed:
            return "lost"
        circuit_open(engine=engine, reason=error.message, now=now)
    return Document.Status.QUEUED


def circuit_open(*, engine: str, reason: str, now: datetime | None = None) -> None:
    now = now or timezone.now()
    _, created = EngineCircuit.objects.get_or_create(
        engine=engine,
        defaults={"reason": reason, "next_probe_at": now + timedelta(seconds=PROBE_FIRST_SECONDS)},
    )
    BatchProcess.objects.filter(
        engine=engine,
        status__in=[BatchProcess.Status.QUEUED, BatchProcess.Status.PROCESSING],
        budget_paused_at__isnull=True,  # its budget's reason stands: raising it is the way on
    ).update(paused_reason=PAUSED_REASON)
    if created:
        logger.error("engine %s paused: %s", engine, reason)


PROBE_FIRST_SECONDS = 30
PROBE_MAX_SECONDS = 600


def circuits_probe_soon(*, engines: Collection[str]) -> int:
    """Make these open circuits due for a probe at the next sweep (staff asked for one)."""
    return EngineCircuit.objects.filter(engine__in=engines).update(next_probe_at=timezone.now())


def circuits_probe(*, now: datetime | None = None) -> int:
    """Try every open circuit that is due; a working provider closes it and resumes its batches.
    Returns how many circuits closed."""
    now = now or timezone.now()
    closed = 0
    for circuit in EngineCircuit.objects.filter(next_probe_at__lte=now):
        try:
            engine = get_engine(circuit.engine)
            engine.probe()
        except ExtractionError as error:
            delay = min(PROBE_FIRST_SECONDS * 2 ** (circuit.probes + 1), PROBE_MAX_SECONDS)
            EngineCircuit.objects.filter(pk=circuit.pk).update(
                probes=F("probes") + 1,
                reason=error.message,
                next_probe_at=now + timedelta(seconds=delay),
            )
            continue
        with transaction.atomic():
            EngineCircuit.objects.filter(pk=circuit.pk).delete()
            paused = BatchProcess.objects.filter(engine=circuit.engine, paused_reason=PAUSED_REASON)
            resumed = list(paused.values_list("pk", flat=True))
            paused.update(paused_reason="")
            for batch_id in resumed:
                outbox_batch_state(
                    batch_id=batch_id, kind=EventKind.BATCH_RESUMED, reason="provider"
                )
        logger.info("engine %s resumed after %d probes", circuit.engine, circuit.probes + 1)
        closed += 1
    if closed:
        transaction.on_commit(kick_workers)
    return closed
