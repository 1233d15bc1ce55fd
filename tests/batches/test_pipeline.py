"""The ledger of work: claims, leases, finishing, retries and recovery (batches/services.py)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import MonthlyUsage
from accounts.plans import Priority
from accounts.selectors import month_start
from batches import pipeline, selectors, services
from batches.models import BatchProcess
from batchsite.errors import Rejected
from documents.models import Document
from extraction.contract import ErrorKind, ExtractionError
from notifications import live
from tests.factories import BatchFactory, DocumentFactory

RESULT = {"engine": "local", "model": None, "fields": {}}


def _queued(batch: BatchProcess, n: int = 1, **kwargs) -> list[Document]:
    return [
        DocumentFactory(batch=batch, read_at=timezone.now(), text="Total: 1", **kwargs)
        for _ in range(n)
    ]


def _reserve(document: Document, month=None) -> None:
    month = month or month_start()
    usage, _ = MonthlyUsage.objects.get_or_create(user=document.user, month=month)
    usage.documents += 1
    usage.save()
    Document.objects.filter(pk=document.pk).update(quota_month=month)


def claims_at_once(workers: int) -> list:
    """What `workers` threads claim when they all ask at the same moment (None: nothing)."""
    barrier = threading.Barrier(workers)
    claims = []

    def worker() -> None:
        try:
            barrier.wait()
            claims.append(pipeline.document_claim())
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return claims


def dispatched(callbacks: list) -> list:
    """The after-commit callbacks that hand events on to email and webhooks: with a channel
    layer (REDIS_URL), each event is also published to live clients."""
    return [c for c in callbacks if getattr(c, "func", None) != live.PUBLISHER.publish]


@pytest.mark.django_db(transaction=True)
def test_two_workers_claiming_one_document_exactly_one_wins():
    document = _queued(BatchFactory())[0]

    claims = claims_at_once(2)

    winners = [c for c in claims if c is not None]
    assert len(winners) == 1
    document.refresh_from_db()
    assert document.status == Document.Status.PROCESSING
    assert document.attempts == 1
    assert document.lease_token == winners[0].lease_token


@pytest.mark.django_db(transaction=True)
def test_many_workers_share_a_batch_without_claiming_any_document_twice():
    batch = BatchFactory()
    documents = _queued(batch, 30)
    claimed: list = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            while (claim := pipeline.document_claim()) is not None:
                with lock:
                    claimed.append(claim.document_id)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(claimed) == sorted(d.pk for d in documents)


@pytest.mark.django_db
def test_claims_follow_priority_then_round_robin_between_batches_then_age():
    big = BatchFactory(priority=Priority.NORMAL)
    small = BatchFactory(priority=Priority.NORMAL)
    urgent = BatchFactory(priority=Priority.HIGH)
    big_docs = _queued(big, 3)
    small_docs = _queued(small, 1)
    urgent_docs = _queued(urgent, 1)

    order = []
    while (claim := pipeline.document_claim()) is not None:
        order.append(claim.document_id)

    assert order[0] == urgent_docs[0].pk
    # The small batch is served before the big one's second document: it is not starved.
    assert order.index(small_docs[0].pk) < order.index(big_docs[1].pk)
    assert [d for d in order if d in {x.pk for x in big_docs}] == [d.pk for d in big_docs]


@pytest.mark.django_db
def test_a_retry_in_backoff_is_not_claimed_until_it_is_due():
    document = _queued(BatchFactory())[0]
    Document.objects.filter(pk=document.pk).update(
        next_attempt_at=timezone.now() + timedelta(seconds=30)
    )
    assert pipeline.document_claim() is None
    later = timezone.now() + timedelta(seconds=31)
    assert pipeline.document_claim(now=later).document_id == document.pk


@pytest.mark.django_db
def test_completing_sets_the_result_and_finishes_the_batch_once(
    django_capture_on_commit_callbacks,
):
    batch = BatchFactory()
    document = _queued(batch)[0]
    claim = pipeline.document_claim()

    with django_capture_on_commit_callbacks() as callbacks:
        assert pipeline.document_complete(claim=claim, result=RESULT) == "completed"
        pipeline.batch_refresh(batch_id=batch.pk)  # a second finisher changes nothing

    document.refresh_from_db()
    batch.refresh_from_db()
    assert document.status == Document.Status.COMPLETED
    assert document.result == RESULT
    assert document.lease_token is None
    assert batch.status == BatchProcess.Status.COMPLETED
    assert (batch.processed_documents, batch.total_documents) == (1, 1)
    assert len(dispatched(callbacks)) == 1  # the finish, told once


@pytest.mark.django_db
def test_a_document_of_a_batch_the_worker_knows_costs_six_statements():
    """What a worker's throughput rests on: claiming, reading the run it was sent to (its
    prompt and fields), completing (with its run's row and its `document.completed` event, in
    one transaction) and checking the batch, with
    the batch not read again for every document (its counters and round-robin stamp are not due
    here: both were just written). PostgreSQL adds one: the event log's lock, which keeps ids
    committing in order."""
    batch = BatchFactory(status=BatchProcess.Status.PROCESSING)
    _queued(batch, 3)
    just_now = timezone.now() + timedelta(minutes=1)
    BatchProcess.objects.filter(pk=batch.pk).update(updated_at=just_now, last_claimed_at=just_now)
    known: dict = {}
    pipeline.document_process(claim=pipeline.document_claim(known=known))

    with CaptureQueriesContext(connection) as queries:
        claim = pipeline.document_claim(known=known)
        assert pipeline.document_process(claim=claim) == "completed"

    statements = [query["sql"].split()[0] for query in queries]
    statements = [s for s in statements if s not in ("SAVEPOINT", "RELEASE")]
    event_log_lock = ["SELECT"] if connection.vendor == "postgresql" else []
    assert statements == [
        "UPDATE",
        "SELECT",
        "UPDATE",
        "INSERT",
        *event_log_lock,
        "INSERT",
        "SELECT",
    ], queries.captured_queries
    assert Document.objects.get(pk=claim.document_id).result["engine"] == "local"


@pytest.mark.skipif(
    connection.vendor == "sqlite",
    reason="SQLite has no row locks: its writers queue on the database's one write lock",
)
@pytest.mark.django_db(transaction=True)
def test_a_counter_refresh_does_not_wait_for_a_batch_another_worker_holds():
    batch = BatchFactory(status=BatchProcess.Status.PROCESSING)
    _queued(batch, 2)
    holding, release = threading.Event(), threading.Event()

    def other_worker() -> None:
        try:
            with transaction.atomic():
                BatchProcess.objects.select_for_update().get(pk=batch.pk)
                holding.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=other_worker)
    thread.start()
    try:
        assert holding.wait(10)
        started = time.monotonic()
        with transaction.atomic():
            skipped = pipeline.batch_refresh(batch_id=batch.pk, unless_busy=True)
        waited = time.monotonic() - started
    finally:
        release.set()
        thread.join()
    assert skipped is None
    assert waited < 5


@pytest.mark.django_db
def test_an_expired_lease_is_requeued_and_the_stale_workers_late_write_is_refused(settings):
    batch = BatchFactory()
    document = _queued(batch)[0]
    stale = pipeline.document_claim()

    later = timezone.now() + timedelta(seconds=settings.SHEAF_LEASE_SECONDS + 1)
    swept = pipeline.sweep(now=later)
    document.refresh_from_db()
    assert swept["requeued"] == 1
    assert document.status == Document.Status.QUEUED
    assert document.error_code == "timeout"

    fresh = pipeline.document_claim(now=later)
    assert fresh.document_id == document.pk and fresh.attempts == 2
    assert pipeline.document_complete(claim=stale, result={"stale": True}) == "lost"
    assert pipeline.document_complete(claim=fresh, result=RESULT) == "completed"
    document.refresh_from_db()
    assert document.result == RESULT


@pytest.mark.django_db
def test_a_document_that_keeps_killing_its_worker_fails_after_max_attempts(settings):
    settings.SHEAF_MAX_ATTEMPTS = 3
    batch = BatchFactory()
    document = _queued(batch)[0]
    _reserve(document)
    now = timezone.now()
    for _ in range(3):
        assert pipeline.document_claim(now=now) is not None
        now += timedelta(seconds=settings.SHEAF_LEASE_SECONDS + 1)
        pipeline.sweep(now=now)

    document.refresh_from_db()
    batch.refresh_from_db()
    assert document.status == Document.Status.FAILED
    assert document.error_code == "timeout"
    assert "3 times" in document.error_message
    assert document.attempts == 3
    assert pipeline.document_claim(now=now) is None
    assert batch.status == BatchProcess.Status.FAILED
    assert MonthlyUsage.objects.get(user=document.user).documents == 0  # quota given back


@pytest.mark.django_db
def test_a_transient_error_requeues_with_backoff_and_honours_retry_after(settings):
    settings.SHEAF_RETRY_BASE_SECONDS = 5
    settings.SHEAF_RETRY_MAX_SECONDS = 300
    document = _queued(BatchFactory())[0]
    claim = pipeline.document_claim()
    before = timezone.now()
    error = ExtractionError(
        "provider_error", "overloaded", kind=ErrorKind.TRANSIENT, retry_after=90
    )

    assert pipeline.document_fail(claim=claim, error=error) == "queued"

    document.refresh_from_db()
    assert document.status == Document.Status.QUEUED
    assert document.error_message == "overloaded"
    assert 90 <= (document.next_attempt_at - before).total_seconds() < 92


def test_backoff_grows_exponentially_with_jitter_and_is_capped(settings):
    settings.SHEAF_RETRY_BASE_SECONDS = 2
    settings.SHEAF_RETRY_MAX_SECONDS = 60
    for attempts, ceiling in [(1, 2), (2, 4), (3, 8), (4, 16), (10, 60)]:
        delays = [pipeline.retry_delay(attempts=attempts) for _ in range(200)]
        assert all(2 <= d <= ceiling for d in delays)
    spread = {round(pipeline.retry_delay(attempts=4), 3) for _ in range(50)}
    assert len(spread) > 10  # jitter: retries of many documents do not arrive together
    assert pipeline.retry_delay(attempts=1, retry_after=600) == 60


@pytest.mark.django_db
def test_a_transient_error_on_the_last_attempt_fails_the_document(settings):
    settings.SHEAF_MAX_ATTEMPTS = 1
    document = _queued(BatchFactory())[0]
    claim = pipeline.document_claim()
    error = ExtractionError("provider_error", "overloaded", kind=ErrorKind.TRANSIENT)

    assert pipeline.document_fail(claim=claim, error=error) == "failed"
    document.refresh_from_db()
    assert document.error_message == "overloaded (gave up after 1 attempts)"


@pytest.mark.django_db
def test_a_permanent_error_fails_at_once_and_gives_the_quota_back():
    batch = BatchFactory()
    document, other = _queued(batch, 2)
    _reserve(document)
    _reserve(other)
    claim = pipeline.document_claim()
    error = ExtractionError("encrypted", "a.pdf is a password-protected PDF")

    assert pipeline.document_fail(claim=claim, error=error) == "failed"

    failed = Document.objects.get(pk=claim.document_id)
    assert (failed.error_code, failed.attempts) == ("encrypted", 1)
    assert MonthlyUsage.objects.get(user=batch.user).documents == 1
    batch.refresh_from_db()
    assert batch.status == BatchProcess.Status.PROCESSING
    assert selectors.batch_progress(batch=batch).failed == 1


@pytest.mark.django_db
def test_batch_outcomes_follow_the_documents():
    def finish(outcomes: list[str]) -> str:
        batch = BatchFactory()
        _queued(batch, len(outcomes))
        for outcome in outcomes:
            claim = pipeline.document_claim()
            if outcome == "ok":
                pipeline.document_complete(claim=claim, result=RESULT)
            else:
                pipeline.document_fail(claim=claim, error=ExtractionError("malformed", "bad"))
        batch.refresh_from_db()
        return batch.status

    assert finish(["ok", "ok"]) == "completed"
    assert finish(["ok", "bad"]) == "completed_with_errors"
    assert finish(["bad", "bad"]) == "failed"


@pytest.mark.django_db
def test_cancel_stops_queued_documents_and_in_flight_ones_do_not_reopen_the_batch():
    batch = BatchFactory()
    documents = _queued(batch, 3)
    for document in documents:
        _reserve(document)
    in_flight = pipeline.document_claim()

    services.batch_cancel(batch=batch)
    assert pipeline.document_claim() is None
    assert pipeline.document_complete(claim=in_flight, result=RESULT) == "completed"

    batch.refresh_from_db()
    statuses = sorted(batch.documents.values_list("status", flat=True))
    assert statuses == ["canceled", "canceled", "completed"]
    assert batch.status == BatchProcess.Status.CANCELED
    assert MonthlyUsage.objects.get(user=batch.user).documents == 1


@pytest.mark.django_db
def test_retrying_failed_documents_reopens_the_batch_and_it_finishes_again_once(
    django_capture_on_commit_callbacks, settings
):
    batch = BatchFactory()
    _good, bad = _queued(batch, 2)
    pipeline.document_complete(claim=pipeline.document_claim(), result=RESULT)
    # A transient error on the last attempt gives up: a retry may well succeed.
    settings.SHEAF_MAX_ATTEMPTS = 1
    timeout = ExtractionError("timeout", "x", kind=ErrorKind.TRANSIENT)
    pipeline.document_fail(claim=pipeline.document_claim(), error=timeout)
    batch.refresh_from_db()
    assert batch.status == BatchProcess.Status.COMPLETED_WITH_ERRORS

    assert services.batch_retry_failed(batch=batch) == 1
    batch.refresh_from_db()
    bad.refresh_from_db()
    assert batch.status == BatchProcess.Status.PROCESSING
    assert (bad.status, bad.attempts, bad.error_code) == ("queued", 0, "")

    with django_capture_on_commit_callbacks() as callbacks:
        pipeline.document_complete(claim=pipeline.document_claim(), result=RESULT)
    batch.refresh_from_db()
    assert batch.status == BatchProcess.Status.COMPLETED
    assert len(dispatched(callbacks)) == 1  # the finish, told once


@pytest.mark.django_db
def test_the_sweep_finishes_a_batch_left_with_nothing_to_do():
    batch = BatchFactory(status=BatchProcess.Status.PROCESSING)
    DocumentFactory(batch=batch, status=Document.Status.COMPLETED, result=RESULT)

    pipeline.sweep()

    batch.refresh_from_db()
    assert batch.status == BatchProcess.Status.COMPLETED


@pytest.mark.django_db
def test_a_transient_failure_after_cancel_cancels_the_document_and_gives_its_quota_back():
    batch = BatchFactory()
    document = _queued(batch)[0]
    _reserve(document)
    in_flight = pipeline.document_claim()
    services.batch_cancel(batch=batch)

    error = ExtractionError("provider_error", "overloaded", kind=ErrorKind.TRANSIENT)
    pipeline.document_fail(claim=in_flight, error=error)

    document.refresh_from_db()
    batch.refresh_from_db()
    assert document.status == Document.Status.CANCELED
    assert batch.status == BatchProcess.Status.CANCELED
    assert MonthlyUsage.objects.get(user=batch.user).documents == 0


@pytest.mark.django_db
def test_a_canceled_batch_cannot_be_retried_or_rerun():
    batch = BatchFactory()
    document = _queued(batch)[0]
    services.batch_cancel(batch=batch)
    document.refresh_from_db()

    with pytest.raises(Rejected) as rerun:
        services.document_rerun(document=document)
    assert rerun.value.code == "conflict"
    batch.refresh_from_db()
    assert batch.status == BatchProcess.Status.CANCELED


@pytest.mark.django_db
def test_rerunning_a_completed_document_counts_against_the_month_again():
    batch = BatchFactory()
    document = _queued(batch)[0]
    _reserve(document)
    pipeline.document_complete(claim=pipeline.document_claim(), result=RESULT)
    document.refresh_from_db()

    services.document_rerun(document=document)

    document.refresh_from_db()
    assert document.status == Document.Status.QUEUED
    assert MonthlyUsage.objects.get(user=batch.user).documents == 2


@pytest.mark.django_db
def test_deleting_a_running_batch_gives_back_the_quota_of_its_queued_documents(
    django_capture_on_commit_callbacks,
):
    batch = BatchFactory()
    done, waiting = _queued(batch, 2)
    _reserve(done)
    _reserve(waiting)
    pipeline.document_complete(claim=pipeline.document_claim(), result=RESULT)

    with django_capture_on_commit_callbacks(execute=True):
        services.batch_delete(batch=batch)

    assert not BatchProcess.objects.filter(pk=batch.pk).exists()
    assert MonthlyUsage.objects.get(user=batch.user).documents == 1
