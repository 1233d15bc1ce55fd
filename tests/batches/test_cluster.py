"""End to end with a real django-q2 cluster process that is killed mid-batch."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile

from batches import services
from batches.models import BatchProcess
from batches.tasks import enqueue_drain
from documents.models import Document
from tests.support.cluster import Cluster, wait_for, wait_until_finished
from tests.support.engines import assert_called_once_but_for_kills, engine_calls

pytestmark = pytest.mark.cluster


@pytest.mark.django_db(transaction=True)
def test_a_killed_cluster_loses_no_document_and_extracts_none_twice(alice, settings, tmp_path):
    settings.SHEAF_PLAN_LIMITS = {"plus": {"files_per_batch": 50}}
    settings.SHEAF_EXTRA_ENGINES = {"counting": "tests.support.engines.CountingEngine"}
    settings.SHEAF_EXTRACTION_ENGINE = "counting"
    calls_log = tmp_path / "engine-calls.log"
    calls_log.touch()
    files = [
        ContentFile(
            f"Invoice number: INV-{n:03}\nTotal: {n}.00 EUR\n".encode(), name=f"inv-{n}.txt"
        )
        for n in range(50)
    ]
    batch = services.batch_create(user=alice, files=files, prompt="invoice number, total")
    env = {
        "SHEAF_TEST_ENGINE_LOG": str(calls_log),
        "SHEAF_TEST_LATENCY": "0.2,0.6",
        "SHEAF_LEASE_SECONDS": "3",
        "SHEAF_WORKERS": "2",
        "SHEAF_CONCURRENCY": "4",
    }
    cluster = Cluster(tmp_path / "cluster.log", **env)
    documents = Document.objects.filter(batch=batch)
    try:
        cluster.start()
        enqueue_drain()
        assert wait_for(lambda: documents.filter(status="completed").count() >= 10, timeout=60), (
            tmp_path / "cluster.log"
        ).read_text()[-3000:]
        cluster.kill()
        interrupted = documents.filter(status="processing").count()

        cluster.start()
        # The schedule's job (a drain every minute), at test speed.
        finished = wait_until_finished(batch, timeout=120, tick=enqueue_drain)
    finally:
        cluster.stop()

    assert finished, (tmp_path / "cluster.log").read_text()[-3000:]
    assert interrupted > 0  # the kill really caught documents in flight
    batch.refresh_from_db()
    assert batch.status == BatchProcess.Status.COMPLETED
    assert batch.processed_documents == 50
    calls = engine_calls(calls_log)
    for document in documents:
        assert document.status == Document.Status.COMPLETED
        assert document.result["engine"] == "counting"
        assert_called_once_but_for_kills(document, calls[str(document.pk)], killed=cluster.killed)
