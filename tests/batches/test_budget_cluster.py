"""A budget's pause survives a kill -9 of the whole cluster: raised afterwards, the batch
finishes with every document extracted once (but for calls the kill cut off) and paid once."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.files.base import ContentFile
from django.db.models import Sum

from batches import services
from batches.models import BatchProcess
from batches.tasks import enqueue_drain
from documents.models import Document
from notifications.models import Event
from tests.support.cluster import Cluster, wait_for, wait_until_finished
from tests.support.engines import assert_called_once_but_for_kills, engine_calls

pytestmark = pytest.mark.cluster


@pytest.mark.django_db(transaction=True)
def test_a_cluster_killed_during_a_budget_pause_resumes_on_a_raise_losing_and_repeating_nothing(
    alice, settings, tmp_path
):
    settings.SHEAF_PLAN_LIMITS = {"plus": {"files_per_batch": 30}}
    settings.SHEAF_EXTRA_ENGINES = {"priced-counting": "tests.support.engines.PricedCountingEngine"}
    settings.SHEAF_EXTRACTION_ENGINE = "priced-counting"
    calls_log = tmp_path / "engine-calls.log"
    calls_log.touch()
    files = [
        ContentFile(f"Invoice number: B-{n:03}\nTotal: {n}.00 EUR\n".encode(), name=f"b-{n}.txt")
        for n in range(30)
    ]
    batch = services.batch_create(
        user=alice, files=files, prompt="invoice number, total", budget_usd=Decimal("12.00")
    )
    cluster = Cluster(
        tmp_path / "cluster.log",
        SHEAF_TEST_ENGINE_LOG=str(calls_log),
        SHEAF_TEST_LATENCY="0.1,0.4",
        SHEAF_LEASE_SECONDS="3",
        SHEAF_WORKERS="2",
        SHEAF_CONCURRENCY="4",
    )
    documents = Document.objects.filter(batch=batch)
    paused = BatchProcess.objects.filter(pk=batch.pk, budget_paused_at__isnull=False)

    def spent() -> Decimal:
        return documents.aggregate(total=Sum("cost_usd"))["total"] or Decimal(0)

    try:
        cluster.start()
        enqueue_drain()
        settled = wait_for(
            lambda: paused.exists() and not documents.filter(status="processing").exists(),
            timeout=90,
        )
        assert settled, (tmp_path / "cluster.log").read_text()[-3000:]
        cluster.kill()  # during the pause
        held_back = documents.filter(status="queued").count()
        spent_at_pause = spent()

        cluster.start()
        for _ in range(3):  # the schedule's drains, while still paused: nothing is sent
            enqueue_drain()
        assert not wait_for(lambda: documents.filter(status="processing").exists(), timeout=5)
        assert documents.filter(status="queued").count() == held_back

        services.batch_budget_set(batch=batch, budget_usd=Decimal("100.00"))
        finished = wait_until_finished(batch, timeout=120, tick=enqueue_drain)
    finally:
        cluster.stop()

    assert finished, (tmp_path / "cluster.log").read_text()[-3000:]
    # Every dispatch stayed within the budget: what was in flight counted against it.
    assert spent_at_pause <= Decimal("12.00")
    assert held_back == 30 - spent_at_pause  # $1.00 a document: none paid and lost
    batch.refresh_from_db()
    assert batch.status == BatchProcess.Status.COMPLETED
    assert (batch.paused_reason, batch.budget_paused_at) == ("", None)
    assert spent() == Decimal("30.00")  # each document paid once
    calls = engine_calls(calls_log)
    for document in documents:
        assert document.status == Document.Status.COMPLETED
        assert_called_once_but_for_kills(document, calls[str(document.pk)], killed=cluster.killed)
    assert Event.objects.filter(batch=batch, kind="batch.paused").count() == 1
    assert Event.objects.filter(batch=batch, kind="batch.completed").count() == 1
