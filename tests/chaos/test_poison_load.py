"""Poison under load: hostile PDFs in one batch with good ones, through a real cluster.

Each bad file provokes one of the reader sandbox's limits (`documents.sandbox`): a
decompression bomb stops at the stream limit, a PDF that makes pypdf spin is killed at the CPU
limit, one that needs more memory than the limit loses its child, and a page tree that contains
itself is malformed. Each fails on its own, once, with its own code; the good invoices complete;
and the cluster's worker processes are the same ones before and after, and still work.

Run it alone: `.venv/bin/python -m pytest tests/chaos/test_poison_load.py`.
"""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile

from batches import services
from batches.models import BatchProcess
from batches.tasks import enqueue_drain
from documents.models import Document
from notifications.models import Event
from tests.support.cluster import Cluster, wait_for, wait_until_finished
from tests.support.pdfs import (
    cpu_burner,
    cyclic_page_tree,
    decompression_bomb,
    memory_hog,
    text_pdf,
)
from tests.support.processes import live_processes

pytestmark = pytest.mark.cluster

GOOD = 20
CLUSTER_ENV = {
    "SHEAF_WORKERS": "2",
    "SHEAF_CONCURRENCY": "4",
    "SHEAF_READER_PROCESSES": "2",
    # The burner needs minutes of CPU and the memory hog about three; the bomb stays far below
    # the memory limit because the stream limit stops it first.
    "SHEAF_READER_CPU_SECONDS": "10",
    "SHEAF_READER_MEMORY_MB": "768",
    "SHEAF_READER_WALL_SECONDS": "40",
}
# file name: (bytes, error code, what the message says)
POISON = {
    "bomb.pdf": (decompression_bomb(), "too_large", "goes past a safety limit of the PDF reader"),
    # pdfium keeps every drawing of the form as objects: 500 drawings take it minutes within
    # about 350 MB, where 5,000 would reach the memory limit before the CPU limit.
    "spinner.pdf": (cpu_burner(draws=500), "timeout", "took too long to read"),
    "hog.pdf": (memory_hog(pages=16), "too_large", "needs more than 768 MB of memory"),
    "loop.pdf": (cyclic_page_tree(), "malformed", "cyclic page references"),
}


def _invoice(n: int) -> ContentFile:
    pdf = text_pdf(f"Invoice number: INV-{n:03}", f"Total: {n}.50 EUR")
    return ContentFile(pdf, name=f"invoice-{n:03}.pdf")


def _workers(cluster: Cluster) -> set[int]:
    """The cluster's own processes (not the reader children, which come and go by design)."""
    return {
        process.pid
        for process in live_processes()
        if process.group == cluster.process_group and b"documents/sandbox.py" not in process.cmdline
    }


@pytest.mark.django_db(transaction=True)
def test_poison_pdfs_fail_alone_and_the_workers_survive(alice, settings, tmp_path):
    settings.SHEAF_PLAN_LIMITS = {"plus": {"files_per_batch": GOOD + len(POISON)}}
    settings.SHEAF_EXTRACTION_ENGINE = "local"
    log = tmp_path / "cluster.log"
    cluster = Cluster(log, **CLUSTER_ENV)
    files = [_invoice(n) for n in range(GOOD)]
    files += [ContentFile(data, name=name) for name, (data, _, _) in POISON.items()]
    try:
        cluster.start()
        # The guard (qcluster itself), monitor, pusher and 2 workers: wait until all are up.
        assert wait_for(lambda: "running." in log.read_text(), timeout=60), log.read_text()
        workers = _workers(cluster)
        batch = services.batch_create(user=alice, files=files, prompt="invoice number, total")
        documents = Document.objects.filter(batch=batch)
        finished = wait_until_finished(batch, timeout=150, tick=enqueue_drain)
        assert finished, log.read_text()[-3000:]
        survivors = _workers(cluster)

        # The same cluster, with the same processes, still reads and extracts a second batch.
        again = services.batch_create(user=alice, files=[_invoice(99)], prompt="invoice number")
        assert wait_until_finished(again, timeout=60, tick=enqueue_drain)
    finally:
        cluster.stop()

    assert survivors == workers and len(workers) >= 5, (workers, survivors)
    for name, (_, code, message) in POISON.items():
        document = documents.get(original_filename=name)
        assert (document.status, document.error_code) == (Document.Status.FAILED, code), (
            name,
            document.error_message,
        )
        assert message in document.error_message, (name, document.error_message)
        assert document.attempts == 1, name  # a file's own failure is final: no retry loop
    for n in range(GOOD):
        document = documents.get(original_filename=f"invoice-{n:03}.pdf")
        assert document.status == Document.Status.COMPLETED, (n, document.error_message)
        assert document.result["fields"]["invoice number"]["value"] == f"INV-{n:03}"
    batch.refresh_from_db()
    assert batch.status == BatchProcess.Status.COMPLETED_WITH_ERRORS
    assert (batch.processed_documents, batch.failed_documents) == (GOOD + len(POISON), 4)
    # One notification for each document that failed, one for the batch.
    failed_events = Event.objects.filter(kind=Event.Kind.DOCUMENT_FAILED, document__batch=batch)
    assert sorted(e.document.original_filename for e in failed_events) == sorted(POISON)
    assert Event.objects.filter(kind=Event.Kind.BATCH_COMPLETED, batch=batch).count() == 1
    second = again.documents.get()
    assert second.status == Document.Status.COMPLETED
    assert second.result["fields"]["invoice number"]["value"] == "INV-099"
