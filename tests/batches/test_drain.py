"""The real pipeline in one process: batch_create, then batches.tasks.drain with its threads,
sandboxed PDF readers and extraction engines, checked against what the tests drew into the
documents (test_drain_corpus.py does the same with real-world PDFs)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.db import connection, transaction
from django.utils import timezone

from batches import pipeline, services
from batches.models import BatchProcess
from batches.tasks import drain
from documents.models import Document
from extraction.fields import parse_fields
from samples.invoices import Layout, invoice, invoices
from tests.factories import BatchFactory, DocumentFactory
from tests.support.documents import (
    encrypted_pdf,
    image_only_pdf,
    report_lines,
    text_pdf,
    truncated_pdf,
)
from tests.support.flaky import FlakyEngine
from tests.support.pdfs import cyclic_page_tree
from tests.support.snapshot import Snapshot

DRAIN_BUDGET = 120

# One PDF of each kind users send: file name -> (bytes, status, error code, pages once read).
Expected = tuple[bytes, str, str, int | None]
REPORT = report_lines(3)


def _assorted_pdfs() -> dict[str, Expected]:
    one, two, three = invoices(3, seed=5, layouts=[Layout.BLOCK])
    long = invoice(8, language="de-DE", lines=70)
    locked, restricted = invoice(9).pdf, invoice(10).pdf
    done, failed = Document.Status.COMPLETED, Document.Status.FAILED
    return {
        one.filename: (one.pdf, done, "", 1),
        two.filename: (two.pdf, done, "", 1),
        three.filename: (three.pdf, done, "", 1),
        "long-invoice.pdf": (long.pdf, done, "", long.pages),
        "report.pdf": (text_pdf(*REPORT), done, "", 3),
        "restricted-rc4.pdf": (
            encrypted_pdf(restricted, user_password="", owner_password="o", algorithm="RC4-128"),
            *(done, "", 1),
        ),
        "restricted-aes256.pdf": (
            encrypted_pdf(restricted, user_password="", owner_password="o", algorithm="AES-256"),
            *(done, "", 1),
        ),
        "locked-rc4.pdf": (
            encrypted_pdf(locked, user_password="s3cret", algorithm="RC4-128"),
            *(failed, "encrypted", None),
        ),
        "locked-aes256.pdf": (
            encrypted_pdf(locked, user_password="s3cret", algorithm="AES-256"),
            *(failed, "encrypted", None),
        ),
        "scan.pdf": (image_only_pdf(seed=3, pages=2), failed, "no_text_layer", None),
        "cut.pdf": (truncated_pdf(text_pdf(*REPORT)), failed, "malformed", None),
        "loop.pdf": (cyclic_page_tree(), failed, "malformed", None),
    }


def _documents(batch: BatchProcess) -> dict[str, Document]:
    documents = {d.original_filename: d for d in Document.objects.filter(batch=batch)}
    assert len(documents) == batch.documents.count(), "file names must be unique"
    return documents


def _ledger(batch: BatchProcess) -> list[dict[str, Any]]:
    """Everything a drain could change about the batch's documents."""
    return list(
        Document.objects.filter(batch=batch)
        .order_by("pk")
        .values(
            "pk",
            "status",
            "attempts",
            "read_at",
            "text",
            "page_count",
            "result",
            "error_code",
            "error_message",
            "lease_token",
            "completed_at",
            "updated_at",
        )
    )


@pytest.fixture
def drained(request, settings, snapshot: Snapshot) -> tuple[BatchProcess, dict[str, Expected]]:
    """A Growth batch of one PDF of each kind, drained once by the real pipeline: for the
    module's first test, the later ones starting from a copy of what it left
    (tests/support/snapshot.py)."""
    settings.SHEAF_EXTRACTION_ENGINE = "local"
    pdfs = _assorted_pdfs()
    if snapshot.restore(settings.MEDIA_ROOT):
        return BatchProcess.objects.get(name="Every kind of PDF"), pdfs
    batch = services.batch_create(
        user=request.getfixturevalue("grace"),
        files=[ContentFile(data, name=name) for name, (data, *_) in pdfs.items()],
        prompt="invoice number, date, total",
        name="Every kind of PDF",
    )
    drain(budget_seconds=DRAIN_BUDGET)
    batch.refresh_from_db()
    snapshot.take(settings.MEDIA_ROOT)
    return batch, pdfs


@pytest.mark.django_db(transaction=True)
def test_the_drain_leaves_every_document_terminal_with_a_specific_message(drained):
    batch, pdfs = drained
    documents = _documents(batch)

    assert {name: (d.status, d.error_code) for name, d in documents.items()} == {
        name: (status, code) for name, (_, status, code, _) in pdfs.items()
    }
    for name, document in documents.items():
        assert document.lease_token is None, name
        if document.status == Document.Status.FAILED:
            assert name in document.error_message, document.error_message
            assert document.attempts == 1, name  # a bad file is not retried
            assert document.result is None, name
        else:
            assert document.result["engine"] == "local", name
            assert document.text.strip(), name
    failed = sum(status == Document.Status.FAILED for _, status, _, _ in pdfs.values())
    assert batch.status == BatchProcess.Status.COMPLETED_WITH_ERRORS
    assert (batch.total_documents, batch.processed_documents, batch.failed_documents) == (
        len(pdfs),
        len(pdfs),
        failed,
    )
    assert batch.completed_at is not None


@pytest.mark.django_db(transaction=True)
def test_page_counts_are_those_drawn_and_the_messages_say_what_is_wrong(drained):
    batch, pdfs = drained
    documents = _documents(batch)

    read = {name: pages for name, (_, _, _, pages) in pdfs.items() if pages is not None}
    assert {name: documents[name].page_count for name in read} == read
    assert read["long-invoice.pdf"] >= 3
    for name in ("locked-rc4.pdf", "locked-aes256.pdf"):
        assert "password-protected" in documents[name].error_message
    assert "no text layer" in documents["scan.pdf"].error_message
    for name in ("cut.pdf", "loop.pdf"):
        assert documents[name].error_message.startswith(f"{name} is not a readable PDF")


@pytest.mark.django_db(transaction=True)
def test_the_empty_password_opens_a_pdf_restricted_by_an_owner_password(drained):
    batch, _ = drained
    documents = _documents(batch)

    number = invoice(10).labels.invoice_number
    for name in ("restricted-rc4.pdf", "restricted-aes256.pdf"):
        assert documents[name].status == Document.Status.COMPLETED
        assert documents[name].result["fields"]["invoice number"]["value"] == number


@pytest.mark.django_db(transaction=True)
def test_the_stored_text_is_what_was_drawn_and_the_invoices_values_are_found(drained):
    batch, _ = drained
    documents = _documents(batch)

    assert documents["report.pdf"].text.split("\f") == ["\n".join(lines) for lines in REPORT]
    for made in invoices(3, seed=5, layouts=[Layout.BLOCK]):
        fields = documents[made.filename].result["fields"]
        assert fields["invoice number"]["value"] == made.labels.invoice_number
        assert fields["date"]["value"] == made.labels.date
        assert (fields["total"]["value"], fields["total"]["currency"]) == (
            str(made.labels.total),
            made.labels.currency,
        )


@pytest.mark.django_db(transaction=True)
def test_a_second_drain_changes_nothing(drained):
    assert_a_second_drain_changes_nothing(drained[0])


def assert_a_second_drain_changes_nothing(batch: BatchProcess) -> None:
    before = _ledger(batch)

    outcome = drain(budget_seconds=DRAIN_BUDGET)

    assert outcome == {
        "swept_requeued": 0,
        "swept_failed": 0,
        "swept_batches": 0,
        "swept_resumed": 0,
    }
    assert _ledger(batch) == before
    again = BatchProcess.objects.get(pk=batch.pk)
    assert (again.status, again.completed_at) == (
        BatchProcess.Status.COMPLETED_WITH_ERRORS,
        batch.completed_at,
    )


# --- Invoices through the offline engine ------------------------------------------------------

INVOICES = {
    "acme-0001.txt": (
        "ACME Supplies Ltd\n12 Harbour Road, Bristol\n\n"
        "Invoice number: INV-2024-0001\nDate: 14 March 2024\nTotal: 1,234.50 EUR\n"
    ),
    "globex-17.txt": (
        "GLOBEX CORPORATION\nInvoice number: GX-17\nDate: 2024-04-02\n"
        "Subtotal: $80.00\nTax: $19.00\nTotal: $99.00\n"
    ),
    "initech.txt": "Initech\nInvoice number: IT-300\nDate: 31/05/2024\nTotal: £12,000.00\n",
    "hooli.csv": "Invoice number,Date,Total\nHL-42,30 June 2024,750.25 CHF\n",
}
EXPECTED = {
    "acme-0001.txt": ("INV-2024-0001", "2024-03-14", "1234.50", "EUR"),
    "globex-17.txt": ("GX-17", "2024-04-02", "99.00", "USD"),
    "initech.txt": ("IT-300", "2024-05-31", "12000.00", "GBP"),
    "hooli.csv": ("HL-42", "2024-06-30", "750.25", "CHF"),
}


@pytest.mark.django_db(transaction=True)
def test_invoices_are_extracted_with_normalised_values_quoted_from_their_text(grace, settings):
    settings.SHEAF_EXTRACTION_ENGINE = "local"
    batch = services.batch_create(
        user=grace,
        files=[ContentFile(text.encode(), name=name) for name, text in INVOICES.items()],
        prompt="invoice number, date, total",
        fields=parse_fields("invoice number\ndate:date\ntotal:number"),
    )

    drain(budget_seconds=DRAIN_BUDGET)

    batch.refresh_from_db()
    assert batch.status == BatchProcess.Status.COMPLETED
    for name, document in _documents(batch).items():
        assert document.status == Document.Status.COMPLETED, document.error_message
        fields = document.result["fields"]
        number, date, total, currency = EXPECTED[name]
        assert fields["invoice number"]["value"] == number, name
        assert fields["date"]["value"] == date, name
        assert (fields["total"]["value"], fields["total"].get("currency")) == (total, currency)
        for field_name, field in fields.items():
            assert field["verified"] is True, (name, field_name)
            assert field["quote"] and field["quote"] in document.text, (name, field_name)


# --- Transient failures -----------------------------------------------------------------------


@pytest.fixture
def flaky_engine(settings):
    settings.SHEAF_EXTRA_ENGINES = {"flaky": "tests.support.flaky.FlakyEngine"}
    settings.SHEAF_EXTRACTION_ENGINE = "flaky"
    FlakyEngine.reset()
    yield FlakyEngine
    FlakyEngine.reset()


@pytest.mark.django_db(transaction=True)
def test_a_transient_engine_failure_is_retried_and_every_document_completes(
    grace, settings, flaky_engine
):
    settings.SHEAF_RETRY_BASE_SECONDS = 0
    settings.SHEAF_RETRY_MAX_SECONDS = 1
    batch = services.batch_create(
        user=grace,
        files=[ContentFile(text.encode(), name=name) for name, text in INVOICES.items()],
        prompt="invoice number, date, total",
    )
    assert batch.engine == "flaky"

    drain(budget_seconds=DRAIN_BUDGET)

    batch.refresh_from_db()
    assert batch.status == BatchProcess.Status.COMPLETED
    documents = list(Document.objects.filter(batch=batch))
    assert len(documents) == len(INVOICES)
    for document in documents:
        assert document.status == Document.Status.COMPLETED
        assert document.attempts == 2
        assert (document.error_code, document.error_message) == ("", "")
        assert document.result["engine"] == "flaky"
        assert flaky_engine.calls[str(document.pk)] == 2
    assert len(flaky_engine.calls) == len(INVOICES)


@pytest.mark.django_db(transaction=True)
def test_originals_on_a_storage_without_local_paths_are_read_and_downloaded(
    grace, grace_client, settings
):
    # Remote storages (S3 and the like) have no `path()`: readers get a temporary copy.
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "tests.support.storage.NoLocalPathStorage"},
    }
    settings.SHEAF_EXTRACTION_ENGINE = "local"
    name, text = next(iter(INVOICES.items()))
    report = text_pdf(*REPORT)
    batch = services.batch_create(
        user=grace,
        files=[ContentFile(text.encode(), name=name), ContentFile(report, name="report.pdf")],
        prompt="invoice number, total",
    )

    drain(budget_seconds=DRAIN_BUDGET)

    documents = _documents(batch)
    assert documents[name].status == Document.Status.COMPLETED
    assert documents[name].result["fields"]["invoice number"]["value"] == "INV-2024-0001"
    pdf = documents["report.pdf"]
    assert pdf.status == Document.Status.COMPLETED
    assert pdf.text.split("\f") == ["\n".join(lines) for lines in REPORT]
    response = grace_client.get(f"/dashboard/documents/{pdf.pk}/original/")
    assert b"".join(response.streaming_content) == report


@pytest.mark.django_db
def test_a_free_engine_failing_once_keeps_the_text_so_the_retry_does_not_read_again(
    grace, flaky_engine
):
    # A free engine stores what the reader found with the outcome, not before the call: a
    # transient failure must still keep it.
    name, text = next(iter(INVOICES.items()))
    batch = services.batch_create(
        user=grace, files=[ContentFile(text.encode(), name=name)], prompt="total"
    )
    document = batch.documents.get()

    assert pipeline.document_process(claim=pipeline.document_claim()) == "queued"
    document.refresh_from_db()
    first_read = document.read_at
    assert first_read is not None
    assert "Total" in document.text
    assert document.error_code == "provider_error"

    later = timezone.now() + timedelta(hours=1)
    assert pipeline.document_process(claim=pipeline.document_claim(now=later)) == "completed"
    document.refresh_from_db()
    assert document.read_at == first_read
    assert document.attempts == 2
    assert flaky_engine.calls[str(document.pk)] == 2


# --- Documents finishing together -------------------------------------------------------------


def _someone_waits_for_a_row_lock() -> bool:
    """On PostgreSQL: whether a session of this test database is blocked on a lock."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0


@pytest.mark.django_db(transaction=True)
def test_the_last_two_documents_finishing_together_still_finish_the_batch(alice):
    """The first finisher has written its document but not yet committed when the second one
    counts the batch's open documents: whichever order the commits land in, the batch finishes.

    On PostgreSQL the second finisher is held at the batch row the first one updated, and the
    first commits only once that is seen, so the interleaving is forced rather than hoped for.
    On SQLite writers are serialised by BEGIN IMMEDIATE, so the second simply runs after.
    """
    batch = BatchFactory(user=alice)
    for _ in range(2):
        DocumentFactory(batch=batch, read_at=timezone.now(), text="Total: 1")
    first, second = pipeline.document_claim(), pipeline.document_claim()
    result = {"engine": "local", "model": None, "fields": {}}
    first_written, release_first = threading.Event(), threading.Event()
    outcomes: dict[str, str] = {}

    def finish_first() -> None:
        try:
            with transaction.atomic():
                outcomes["first"] = pipeline.document_complete(claim=first, result=result)
                first_written.set()
                release_first.wait(timeout=60)
        finally:
            first_written.set()
            connection.close()

    def finish_second() -> None:
        try:
            first_written.wait(timeout=60)
            outcomes["second"] = pipeline.document_complete(claim=second, result=result)
        finally:
            connection.close()

    threads = [threading.Thread(target=finish_first), threading.Thread(target=finish_second)]
    for thread in threads:
        thread.start()
    first_written.wait(timeout=60)
    if connection.vendor == "postgresql":
        deadline = time.monotonic() + 30
        while threads[1].is_alive() and not _someone_waits_for_a_row_lock():
            assert time.monotonic() < deadline, "the second finisher neither ended nor waited"
            time.sleep(0.02)
    release_first.set()
    for thread in threads:
        thread.join()

    assert outcomes == {"first": "completed", "second": "completed"}
    batch.refresh_from_db()
    assert sorted(batch.documents.values_list("status", flat=True)) == ["completed"] * 2
    assert (batch.processed_documents, batch.total_documents) == (2, 2)
    assert batch.status == BatchProcess.Status.COMPLETED
    assert batch.completed_at is not None
