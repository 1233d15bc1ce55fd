"""A worker whose lease ran out (it stalled; the sweep gave its document to another worker) may
still report a failure. That late failure must change nothing: not requeue or fail a document
another worker now holds, not reopen, fail or refund one that has since completed, and not
pause the engine (batches/pipeline/finishing.py `document_fail`, under `claims.held`)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import MonthlyUsage
from accounts.selectors import month_start
from batches import pipeline
from batches.models import BatchProcess, EngineCircuit
from documents.models import Document
from extraction.contract import ErrorKind, ExtractionError
from notifications.models import Event
from tests.factories import BatchFactory, DocumentFactory

pytestmark = pytest.mark.django_db

RESULT = {"engine": "local", "model": None, "fields": {}}

LATE_ERRORS = [
    ExtractionError("provider_error", "stale: overloaded", kind=ErrorKind.TRANSIENT),
    ExtractionError("malformed", "stale: not a readable PDF", kind=ErrorKind.PERMANENT),
    ExtractionError("provider_error", "stale: credit balance too low", kind=ErrorKind.CRITICAL),
]
IDS = ["transient", "permanent", "critical"]


def _stale_and_fresh_claims(settings):
    """Worker A claims the only document, stalls past its lease; the sweep requeues it and
    worker B claims it. Returns (document, A's claim, B's claim)."""
    batch = BatchFactory()
    document = DocumentFactory(batch=batch, read_at=timezone.now(), text="Total: 1")
    month = month_start()
    MonthlyUsage.objects.create(user=batch.user, month=month, documents=1)
    Document.objects.filter(pk=document.pk).update(quota_month=month)
    stale = pipeline.document_claim()
    later = timezone.now() + timedelta(seconds=settings.SHEAF_LEASE_SECONDS + 1)
    assert pipeline.sweep(now=later)["requeued"] == 1
    fresh = pipeline.document_claim(now=later)
    assert stale is not None and fresh is not None
    assert fresh.document_id == stale.document_id
    return document, stale, fresh


@pytest.mark.parametrize("error", LATE_ERRORS, ids=IDS)
def test_a_stale_failure_leaves_a_document_another_worker_holds_with_that_worker(settings, error):
    document, stale, fresh = _stale_and_fresh_claims(settings)

    assert pipeline.document_fail(claim=stale, error=error) == "lost"

    document.refresh_from_db()
    assert document.status == Document.Status.PROCESSING
    assert document.lease_token == fresh.lease_token
    assert document.attempts == 2
    assert not document.error_message.startswith("stale")
    assert not EngineCircuit.objects.exists()
    # The worker that holds it still finishes it.
    assert pipeline.document_complete(claim=fresh, result=RESULT) == "completed"
    document.refresh_from_db()
    assert (document.status, document.result) == (Document.Status.COMPLETED, RESULT)


@pytest.mark.parametrize("error", LATE_ERRORS, ids=IDS)
def test_a_stale_failure_after_another_worker_completed_the_document_changes_nothing(
    settings, error
):
    document, stale, fresh = _stale_and_fresh_claims(settings)
    assert pipeline.document_complete(claim=fresh, result=RESULT) == "completed"
    events = Event.objects.count()

    assert pipeline.document_fail(claim=stale, error=error) == "lost"

    document.refresh_from_db()
    assert (document.status, document.result) == (Document.Status.COMPLETED, RESULT)
    assert (document.error_code, document.error_message) == ("", "")
    assert document.lease_token is None
    batch = BatchProcess.objects.get(pk=document.batch_id)
    assert batch.status == BatchProcess.Status.COMPLETED
    assert Event.objects.count() == events  # no document.failed, no second finish
    assert not Event.objects.filter(kind="document.failed").exists()
    assert MonthlyUsage.objects.get(user=document.user).documents == 1  # no refund
    assert not EngineCircuit.objects.exists()
