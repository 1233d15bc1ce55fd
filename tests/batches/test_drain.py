"""The real pipeline in one process: batch_create, then batches.tasks.drain with its threads,
sandboxed PDF readers and extraction engines, checked against the corpus's ground truth."""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.db import connection, transaction
from django.utils import timezone

from accounts.plans import PlanKey, get_plan
from batches import pipeline, services
from batches.models import BatchProcess
from batches.tasks import drain
from documents.models import Document
from extraction.fields import parse_fields
from tests.conftest import CORPUS, corpus_file, corpus_upload
from tests.factories import BatchFactory, DocumentFactory
from tests.support.flaky import FlakyEngine

DRAIN_BUDGET = 120

# Every PDF of both corpus folders (the other files there are sources, transcripts and licences).
CORPUS_PDFS = sorted(
    path.relative_to(CORPUS).as_posix()
    for folder in ("sample-files", "pypdf-resources")
    for path in (CORPUS / folder).rglob("*.pdf")
)

SAMPLE_FILES = {
    Path(entry["path"]).name: entry
    for entry in json.loads(corpus_file("sample-files/files.json").read_text())["data"]
    if (CORPUS / "sample-files" / entry["path"]).is_file()
}
UNREADABLE_PAGE_TREE = "unreadablemetadata.pdf"  # 017: files.json counts its pages; it must fail

# Encrypted files from pypdf's resources that PASSWORDS.tsv does not list; their passwords are in
# pypdf's own tests (tests/test_reader.py): encrypted-file.pdf needs "test", and
# encrypted_doc_no_id.pdf opens with the empty password.
UNLISTED_ENCRYPTED = {"encrypted-file.pdf": False, "encrypted_doc_no_id.pdf": True}


def _password_table() -> dict[str, bool]:
    """Encrypted corpus file name -> whether the empty password opens it."""
    text = corpus_file("pypdf-resources/resources/encryption/PASSWORDS.tsv").read_text()
    opens: dict[str, bool] = {}
    for name, user, owner, _aes in list(csv.reader(io.StringIO(text), delimiter="\t"))[1:]:
        name = Path(name).name
        if user == "-":
            continue  # not encrypted at all
        # An empty user password opens the file. An empty owner password does too, but only under
        # R5/R6: under R2-R4 an empty owner password means "the same as the user password".
        opens[name] = user == "" or (owner == "" and name.startswith(("r5-", "r6-")))
    return opens | UNLISTED_ENCRYPTED


PASSWORD_PROTECTED = _password_table() | {
    name: False for name, entry in SAMPLE_FILES.items() if entry["encrypted"]
}


def _normalised(text: str) -> str:
    return " ".join(text.split())


def _documents(batch: BatchProcess) -> dict[str, Document]:
    documents = {d.original_filename: d for d in Document.objects.filter(batch=batch)}
    assert len(documents) == batch.documents.count(), "corpus file names must be unique"
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
def drained_corpus(grace, settings) -> BatchProcess:
    """A Growth batch of every corpus PDF, drained once by the real pipeline."""
    settings.SHEAF_EXTRACTION_ENGINE = "local"
    growth = get_plan(PlanKey.GROWTH)
    assert len(CORPUS_PDFS) <= growth.files_per_batch
    largest = max(corpus_file(relative).stat().st_size for relative in CORPUS_PDFS)
    if largest > growth.max_file_size:
        settings.SHEAF_PLAN_LIMITS = {"growth": {"max_file_size": largest}}

    batch = services.batch_create(
        user=grace,
        files=[corpus_upload(relative) for relative in CORPUS_PDFS],
        prompt="title, author, date",
        name="Corpus",
    )
    drain(budget_seconds=DRAIN_BUDGET)
    batch.refresh_from_db()
    return batch


@pytest.mark.django_db(transaction=True)
def test_the_drain_leaves_every_corpus_document_terminal_with_a_specific_message(drained_corpus):
    documents = _documents(drained_corpus)

    assert sorted(documents) == sorted(Path(relative).name for relative in CORPUS_PDFS)
    unfinished = {
        name: d.status
        for name, d in documents.items()
        if d.status in (Document.Status.QUEUED, Document.Status.PROCESSING)
    }
    assert unfinished == {}
    for name, document in documents.items():
        assert document.status in (Document.Status.COMPLETED, Document.Status.FAILED), name
        assert document.lease_token is None, name
        if document.status == Document.Status.FAILED:
            assert document.error_code in {"encrypted", "no_text_layer", "malformed"}, name
            assert name in document.error_message, document.error_message
            assert document.attempts == 1, name  # a bad file is not retried
        else:
            assert document.result["engine"] == "local", name
            assert document.text.strip(), name
            assert document.error_code == "", name

    assert drained_corpus.status == BatchProcess.Status.COMPLETED_WITH_ERRORS
    failed = sum(d.status == Document.Status.FAILED for d in documents.values())
    assert (drained_corpus.total_documents, drained_corpus.processed_documents) == (
        len(CORPUS_PDFS),
        len(CORPUS_PDFS),
    )
    assert drained_corpus.failed_documents == failed
    assert drained_corpus.completed_at is not None


@pytest.mark.django_db(transaction=True)
def test_page_counts_match_files_json_and_the_unreadable_page_tree_fails_as_malformed(
    drained_corpus,
):
    documents = _documents(drained_corpus)

    broken = documents[UNREADABLE_PAGE_TREE]
    assert (broken.status, broken.error_code) == ("failed", "malformed")
    assert broken.error_message.startswith(f"{UNREADABLE_PAGE_TREE} is not a readable PDF")

    counted = {
        name: entry["pages"]
        for name, entry in SAMPLE_FILES.items()
        if name != UNREADABLE_PAGE_TREE
        and not entry["encrypted"]
        and "imagemagick" not in entry["producer"]
    }
    assert counted
    assert {name: documents[name].page_count for name in counted} == counted
    assert {name: documents[name].status for name in counted} == dict.fromkeys(counted, "completed")


@pytest.mark.django_db(transaction=True)
def test_password_protected_pdfs_fail_unless_the_empty_password_opens_them(drained_corpus):
    documents = _documents(drained_corpus)

    assert PASSWORD_PROTECTED.keys() <= documents.keys()
    for name, opens in PASSWORD_PROTECTED.items():
        document = documents[name]
        if opens:
            assert document.error_code != "encrypted", (name, document.error_message)
            if document.status == Document.Status.COMPLETED:
                assert document.page_count and document.text.strip(), name
        else:
            assert (document.status, document.error_code) == ("failed", "encrypted"), name
            assert "password-protected" in document.error_message, document.error_message
    opened = [name for name, opens in PASSWORD_PROTECTED.items() if opens and name.startswith("r")]
    assert opened and all(documents[name].status == "completed" for name in opened)


@pytest.mark.django_db(transaction=True)
def test_image_only_pdfs_fail_with_no_text_layer(drained_corpus):
    documents = _documents(drained_corpus)
    image_only = [name for name, e in SAMPLE_FILES.items() if "imagemagick" in e["producer"]]

    assert image_only
    for name in image_only:
        document = documents[name]
        assert (document.status, document.error_code) == ("failed", "no_text_layer"), name
        assert "no text layer" in document.error_message
        assert document.result is None


@pytest.mark.django_db(transaction=True)
def test_the_stored_text_of_crazyones_matches_its_transcript(drained_corpus):
    document = _documents(drained_corpus)["crazyones.pdf"]
    transcript = corpus_file("pypdf-resources/resources/crazyones.txt").read_text()

    assert document.status == Document.Status.COMPLETED
    assert _normalised(document.text) == _normalised(transcript)
    assert document.page_count == 1


@pytest.mark.django_db(transaction=True)
def test_a_second_drain_changes_nothing(drained_corpus):
    before = _ledger(drained_corpus)

    outcome = drain(budget_seconds=DRAIN_BUDGET)

    assert outcome == {
        "swept_requeued": 0,
        "swept_failed": 0,
        "swept_batches": 0,
        "swept_resumed": 0,
    }
    assert _ledger(drained_corpus) == before
    batch = BatchProcess.objects.get(pk=drained_corpus.pk)
    assert (batch.status, batch.completed_at) == (
        BatchProcess.Status.COMPLETED_WITH_ERRORS,
        drained_corpus.completed_at,
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
    batch = services.batch_create(
        user=grace,
        files=[
            ContentFile(text.encode(), name=name),
            corpus_upload("pypdf-resources/resources/crazyones.pdf"),
        ],
        prompt="invoice number, total",
    )

    drain(budget_seconds=DRAIN_BUDGET)

    documents = _documents(batch)
    assert documents[name].status == Document.Status.COMPLETED
    assert documents[name].result["fields"]["invoice number"]["value"] == "INV-2024-0001"
    pdf = documents["crazyones.pdf"]
    assert pdf.status == Document.Status.COMPLETED
    expected = (CORPUS / "pypdf-resources" / "resources" / "crazyones.txt").read_text()
    assert _normalised(pdf.text) == _normalised(expected)
    response = grace_client.get(f"/dashboard/documents/{pdf.pk}/original/")
    assert (
        b"".join(response.streaming_content)
        == corpus_file("pypdf-resources/resources/crazyones.pdf").read_bytes()
    )


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
