"""Staff see every batch's health in the admin changelist, computed in the database: counts per
state, permanent failures, attempts, error rate, processing time, latest error, top error codes,
and why a batch is unhealthy; they can retry or cancel batches from there."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.plans import PlanKey
from batches.health import batch_health_problems, batch_top_error_codes, batches_with_health
from batches.models import BatchProcess
from documents.models import Document
from tests.factories import BatchFactory, DocumentFactory

CHANGELIST = "/admin/batches/batchprocess/"


def _doc(batch, *, updated_at=None, **fields):
    document = DocumentFactory(batch=batch, **fields)
    if updated_at is not None:
        Document.objects.filter(pk=document.pk).update(updated_at=updated_at)
    return document


@pytest.fixture
def t0():
    return timezone.now().replace(microsecond=0) - timedelta(hours=3)


@pytest.fixture
def mixed_batch(alice, t0, settings):
    """Eleven documents whose every metric is known (SHEAF_MAX_ATTEMPTS = 3)."""
    settings.SHEAF_MAX_ATTEMPTS = 3
    batch = BatchFactory(user=alice, name="Mixed bag", status="processing", started_at=t0)
    for minute in (0, 5, 10):
        _doc(
            batch,
            status="completed",
            attempts=1,
            started_at=t0 + timedelta(minutes=minute),
            completed_at=t0 + timedelta(minutes=minute + 1),
        )
    # The kind stored with the error decides, never the code or the attempts.
    failures = [
        ("malformed", 1, 12, "permanent"),
        ("malformed", 1, 13, "permanent"),
        ("provider_error", 1, 14, "gave_up"),  # waited out rate limits: no attempt spent
        ("encrypted", 3, 15, "permanent"),
        ("provider_error", 3, 42, "gave_up"),  # attempts exhausted
    ]
    for code, attempts, minute, kind in failures:
        _doc(
            batch,
            status="failed",
            error_code=code,
            error_kind=kind,
            attempts=attempts,
            started_at=t0 + timedelta(minutes=minute - 1),
            completed_at=t0 + timedelta(minutes=minute),
        )
    _doc(
        batch,
        status="processing",
        attempts=2,
        lease_token=uuid.uuid4(),
        lease_expires_at=timezone.now() + timedelta(minutes=1),
        started_at=t0 + timedelta(minutes=20),
    )
    # Waiting for its retry after a transient error at t0 + 50 minutes: the latest error.
    _doc(
        batch,
        status="queued",
        attempts=1,
        error_code="provider_error",
        next_attempt_at=timezone.now() + timedelta(minutes=5),
        started_at=t0 + timedelta(minutes=49),
        updated_at=t0 + timedelta(minutes=50),
    )
    # Due for two hours and nobody took it: the batch is stalled.
    _doc(batch, status="queued", next_attempt_at=timezone.now() - timedelta(hours=2))
    return batch


def _health(batch: BatchProcess) -> BatchProcess:
    return batches_with_health(BatchProcess.objects.filter(pk=batch.pk)).get()


def test_each_metric_of_a_batch_is_computed_from_its_documents(mixed_batch, t0):
    batch = _health(mixed_batch)

    assert (batch.n_total, batch.n_completed, batch.n_failed) == (11, 3, 5)
    assert (batch.n_processing, batch.n_queued, batch.n_canceled) == (1, 2, 0)
    assert (batch.n_permanent, batch.n_gave_up) == (3, 2)
    assert batch.max_attempts_used == 3
    assert batch.error_rate == pytest.approx(62.5)  # 5 failed of 8 finished
    assert batch.first_started_at == t0
    assert batch.last_finished_at == t0 + timedelta(minutes=42)
    assert batch.processing_time == timedelta(minutes=42)
    assert batch.latest_error_at == t0 + timedelta(minutes=50)
    assert batch.computed_status == "processing"
    assert batch_top_error_codes(batch) == ["malformed: 2", "provider_error: 2", "encrypted: 1"]


def test_an_unhealthy_batch_says_why(mixed_batch):
    problems = batch_health_problems(_health(mixed_batch))

    assert len(problems) == 3
    assert problems[0].startswith("stalled: a document has been due since")
    assert problems[1] == "error rate 62% (≥ 20%)"
    assert problems[2] == "2 document(s) gave up on transient errors (a retry may succeed)"


def test_a_batch_whose_documents_all_finished_but_still_runs_is_flagged(alice):
    batch = BatchFactory(user=alice, status="processing")
    _doc(batch, status="completed", attempts=1, completed_at=timezone.now())
    _doc(batch, status="canceled", completed_at=timezone.now())

    health = _health(batch)

    assert health.computed_status == "completed"
    assert batch_health_problems(health) == ["status is processing but its documents say completed"]


def test_paused_and_abandoned_batches_are_flagged(alice):
    batch = BatchFactory(user=alice, status="processing", paused_reason="provider unavailable")
    _doc(
        batch,
        status="processing",
        attempts=1,
        lease_token=uuid.uuid4(),
        lease_expires_at=timezone.now() - timedelta(minutes=5),
        started_at=timezone.now() - timedelta(minutes=10),
    )

    assert batch_health_problems(_health(batch)) == [
        "paused: provider unavailable",
        "1 document(s) held by a worker that stopped",
    ]


def test_a_clean_batch_is_healthy(alice):
    batch = BatchFactory(user=alice, status="completed")
    _doc(
        batch,
        status="completed",
        attempts=1,
        started_at=timezone.now(),
        completed_at=timezone.now(),
    )

    health = _health(batch)

    assert batch_health_problems(health) == []
    assert health.error_rate == 0
    assert batch_top_error_codes(health) == []


def test_the_changelist_shows_the_health_columns(staff_client, mixed_batch):
    body = staff_client.get(CHANGELIST).content.decode()

    row = body[body.index("Mixed bag") :]
    assert "✖ unhealthy" in row
    assert "error rate 62% (≥ 20%)" in row
    assert "62.5%" in row
    assert "42m 00s" in row
    assert "malformed: 2, provider_error: 2, encrypted: 1" in row
    # Several facts share a cell, so that the columns fit beside the filters.
    for fact in (
        "11 total",
        "3 completed, 5 failed (3 permanent)",
        "1 in progress, 2 queued",
        "highest attempt: 3",
        "plan now: plus",
    ):
        assert f"<li>{fact}</li>" in row


def test_staff_filter_batches_by_health(staff_client, mixed_batch, bob):
    BatchFactory(user=bob, name="All good", status="queued")

    unhealthy = staff_client.get(CHANGELIST, {"health": "unhealthy"}).content.decode()
    healthy = staff_client.get(CHANGELIST, {"health": "healthy"}).content.decode()

    assert "Mixed bag" in unhealthy and "All good" not in unhealthy
    assert "All good" in healthy and "Mixed bag" not in healthy


def test_staff_filter_batches_by_the_owners_plan_now(staff_client, alice, frank):
    BatchFactory(user=alice, name="Alice's batch", plan=PlanKey.FREE)  # upgraded since
    BatchFactory(user=frank, name="Frank's batch", plan=PlanKey.FREE)

    plus = staff_client.get(CHANGELIST, {"owner_plan": "plus"}).content.decode()
    free = staff_client.get(CHANGELIST, {"owner_plan": "free"}).content.decode()

    assert "Alice&#x27;s batch" in plus and "Frank&#x27;s batch" not in plus
    assert "Frank&#x27;s batch" in free and "Alice&#x27;s batch" not in free


def test_staff_filter_batches_by_engine_and_search_by_filename(staff_client, alice):
    local = BatchFactory(user=alice, name="Offline one", engine="local")
    _doc(local, original_filename="scan-17.pdf")
    _doc(local, original_filename="scan-18.pdf")
    BatchFactory(user=alice, name="Claude one", engine="anthropic")

    by_engine = staff_client.get(CHANGELIST, {"engine__exact": "anthropic"}).content.decode()
    by_file = staff_client.get(CHANGELIST, {"q": "scan-1"}).content.decode()

    assert "Claude one" in by_engine and "Offline one" not in by_engine
    assert "Offline one" in by_file and "Claude one" not in by_file
    # Searching by filename does not multiply the counts: two documents, not four.
    assert "<li>2 total</li>" in by_file


def test_the_admin_retries_a_batchs_failed_documents(staff_client, alice):
    batch = BatchFactory(user=alice, status="completed_with_errors")
    failed = _doc(batch, status="failed", attempts=3, error_code="timeout")
    _doc(batch, status="completed", attempts=1)

    response = staff_client.post(
        CHANGELIST, {"action": "retry_failed", "_selected_action": [batch.pk]}, follow=True
    )

    failed.refresh_from_db()
    batch.refresh_from_db()
    assert (failed.status, failed.attempts, failed.error_code) == ("queued", 0, "")
    assert batch.status == "processing"
    assert "1 document(s) requeued" in response.content.decode()


def test_retrying_a_batch_without_failures_says_so_and_changes_nothing(staff_client, alice):
    batch = BatchFactory(user=alice, name="Spotless", status="completed")
    _doc(batch, status="completed", attempts=1)

    response = staff_client.post(
        CHANGELIST, {"action": "retry_failed", "_selected_action": [batch.pk]}, follow=True
    )

    batch.refresh_from_db()
    assert batch.status == "completed"
    assert "has no failed documents to retry" in response.content.decode()


def test_the_admin_cancels_a_running_batch(staff_client, alice):
    batch = BatchFactory(user=alice, status="queued")
    waiting = _doc(batch, status="queued")

    staff_client.post(CHANGELIST, {"action": "cancel", "_selected_action": [batch.pk]})

    batch.refresh_from_db()
    waiting.refresh_from_db()
    assert batch.status == "canceled"
    assert waiting.status == "canceled"


def _bulk_batches(user, count: int) -> None:
    batches = BatchProcess.objects.bulk_create(
        BatchProcess(
            user=user,
            name=f"Bulk {i}",
            extraction_prompt="total",
            plan=PlanKey.PLUS,
            priority=5,
            engine="local",
            status="completed_with_errors",
        )
        for i in range(count)
    )
    Document.objects.bulk_create(
        Document(
            batch=batch,
            user=user,
            original_filename=f"{batch.name}-{status}.pdf",
            size=1,
            sha256="0" * 64,
            content_type="application/pdf",
            status=status,
            error_code="malformed" if status == "failed" else "",
            attempts=1,
            completed_at=timezone.now(),
        )
        for batch in batches
        for status in ("completed", "failed")
    )


def test_the_changelist_costs_the_same_queries_for_10_and_1000_batches(staff_client, alice):
    _bulk_batches(alice, 10)
    with CaptureQueriesContext(connection) as few:
        small = staff_client.get(CHANGELIST)
    _bulk_batches(alice, 990)
    with CaptureQueriesContext(connection) as many:
        large = staff_client.get(CHANGELIST)

    assert small.content.decode().count('name="_selected_action"') == 10
    assert large.content.decode().count('name="_selected_action"') == 100  # one page
    assert "1000 batches" in large.content.decode()
    assert len(many) == len(few)
