"""The recovery sweep that starts every drain: expired leases, stuck batches, circuits due for a
probe, and the economy lane's submissions and answers."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from accounts.services import (
    submissions_prune,
)
from batches.drafts import drafts_expire
from batches.models import BatchProcess
from batches.pipeline.circuits import circuits_probe
from batches.pipeline.economy import (
    FALLBACK,
    economy_collect,
    economy_recover,
    economy_submit,
)
from batches.pipeline.finishing import batch_refresh, refund
from batches.selectors import before_start, documents_waiting
from documents.models import Document
from notifications.services import outbox_documents_failed

logger = logging.getLogger(__name__)


def sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Put expired leases back in the queue (or fail them once attempts are spent, so a document
    that kills its worker cannot loop), and finish batches left with nothing to do."""
    now = now or timezone.now()
    max_attempts = settings.SHEAF_MAX_ATTEMPTS
    expired = Document.objects.filter(status=Document.Status.PROCESSING, lease_expires_at__lt=now)
    batch_ids = set(expired.values_list("batch_id", flat=True))
    with transaction.atomic():
        spent_ids = list(expired.filter(attempts__gte=max_attempts).values_list("pk", flat=True))
        failed = Document.objects.filter(
            pk__in=spent_ids, status=Document.Status.PROCESSING, lease_expires_at__lt=now
        ).update(
            status=Document.Status.FAILED,
            error_code="timeout",
            error_message=(
                f"Processing stopped without finishing {max_attempts} times (the worker died "
                "or was killed); gave up."
            ),
            error_kind=Document.ErrorKind.GAVE_UP,
            lease_token=None,
            lease_expires_at=None,
            completed_at=now,
        )
        refund(document_ids=spent_ids)
        requeue = {
            "status": Document.Status.QUEUED,
            "lease_token": None,
            "lease_expires_at": None,
            "next_attempt_at": now,
            "error_code": "timeout",
            "error_kind": Document.ErrorKind.TRANSIENT,
        }
        # An economy document whose day-long lease ran out was sent in a batch that gave no
        # answer in time (or can no longer be read): it goes to the standard path, without
        # spending an attempt, instead of being deferred onto the same batch again.
        requeued = (
            expired.filter(attempts__lt=max_attempts)
            .exclude(provider_batch_id__in=["", FALLBACK])
            .update(
                **requeue,
                provider_batch_id=FALLBACK,
                attempts=Greatest(F("attempts") - 1, Value(0)),
                error_message=(
                    "Economy lane: the provider's batch gave no answer in time; processed at "
                    "the standard price instead."
                ),
            )
        )
        requeued += expired.filter(attempts__lt=max_attempts).update(
            **requeue,
            error_message="The worker processing this document stopped; it was requeued.",
        )
        # The events last: see notifications.services._event_insert.
        outbox_documents_failed(document_ids=spent_ids, failed_at=now)
    stuck = BatchProcess.objects.filter(
        status__in=[BatchProcess.Status.QUEUED, BatchProcess.Status.PROCESSING]
    ).exclude(documents__status__in=[Document.Status.QUEUED, Document.Status.PROCESSING])
    batch_ids |= set(stuck.values_list("pk", flat=True))
    for batch_id in batch_ids:
        with transaction.atomic():
            batch_refresh(batch_id=batch_id)
    submissions_prune(now=now)
    resumed = circuits_probe(now=now)
    for step in (drafts_expire, economy_recover, economy_submit, economy_collect):
        # Each isolates its own parts too; this keeps a drain going whatever one of them hits
        # (a database error, a bug), for the batches that do not use the lane.
        try:
            step(now=now)
        except Exception:
            logger.exception("sweep: %s failed; going on", step.__name__)
    return {"requeued": requeued, "failed": failed, "batches": len(batch_ids), "resumed": resumed}


def work_remaining(*, now: datetime | None = None) -> bool:
    return documents_waiting().filter(next_attempt_at__lte=now or timezone.now()).exists()


def seconds_until_next_due(
    *,
    now: datetime | None = None,
    batch_id: uuid.UUID | None = None,
    document_ids: Collection[uuid.UUID] | None = None,
) -> float | None:
    """How long until a queued document (a retry in backoff) becomes due; None if none waits.
    `batch_id` and `document_ids` narrow it as in `document_claim`. A batch told to start
    later is not waited for (`batch process` would sit for days): the drain that the schedule
    runs every minute takes it when its time comes."""
    now = now or timezone.now()
    due = (
        documents_waiting(batch_id=batch_id, document_ids=document_ids)
        .exclude(before_start(now))
        .order_by("next_attempt_at")
        .values_list("next_attempt_at", flat=True)
        .first()
    )
    if due is None:
        return None
    return max((due - now).total_seconds(), 0.0)
