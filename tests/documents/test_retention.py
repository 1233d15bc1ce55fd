"""Retention: uploaded originals older than SHEAF_RETENTION_DAYS are deleted from storage while
the documents' rows, text and results stay (documents/services.py, documents/tasks.py)."""

from __future__ import annotations

import importlib
import json
import re
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone
from django_q.models import Schedule

from batches import pipeline
from batches import services as batch_services
from batches.models import BatchProcess
from documents.models import Document
from documents.readresults import ReadResult
from documents.selectors import document_read_result
from documents.services import originals_expire, read_result_store
from tests.factories import BatchFactory, DocumentFactory

pytestmark = pytest.mark.django_db

DAYS = 30
RESULT = {
    "engine": "local",
    "model": None,
    "fields": {
        "invoice number": {"value": "INV-7", "quote": "INV-7", "page": 1, "verified": True},
    },
}


def stored_document(batch: BatchProcess, *, age_days: float, status: str, **kwargs: Any):
    """A document of `batch` whose original is really in storage, uploaded `age_days` ago."""
    now = timezone.now()
    values: dict[str, Any] = {"status": status}
    if status in Document.TERMINAL_STATUSES:
        values.update(completed_at=now, read_at=now, text="Invoice number: INV-7", page_count=1)
    if status == Document.Status.COMPLETED:
        values.update(result=RESULT)
    if status == Document.Status.PROCESSING:
        values.update(lease_token=uuid.uuid4(), lease_expires_at=now + timedelta(minutes=1))
    values.update(kwargs)
    document = DocumentFactory(batch=batch, **values)
    path = Document.storage_path(
        user_id=batch.user_id, batch_id=batch.pk, document_id=document.pk, ext="pdf"
    )
    stored = default_storage.save(path, ContentFile(b"%PDF-1.4 original bytes"))
    Document.objects.filter(pk=document.pk).update(
        file=stored, created_at=now - timedelta(days=age_days)
    )
    document.refresh_from_db()
    return document


def on_disk(document: Document) -> bool:
    return Path(default_storage.path(document.file.name)).is_file()


@pytest.fixture
def old_batch(alice) -> BatchProcess:
    """Alice's batch from 40 days ago, still running: three documents finished long ago, one in
    flight, one waiting for a retry."""
    return BatchFactory(user=alice, name="Old invoices", status=BatchProcess.Status.PROCESSING)


@pytest.fixture
def documents(old_batch, alice) -> dict[str, Document]:
    recent_batch = BatchFactory(user=alice, status=BatchProcess.Status.COMPLETED)
    return {
        "completed": stored_document(old_batch, age_days=40, status=Document.Status.COMPLETED),
        "failed": stored_document(old_batch, age_days=40, status=Document.Status.FAILED),
        "canceled": stored_document(old_batch, age_days=31, status=Document.Status.CANCELED),
        "processing": stored_document(old_batch, age_days=40, status=Document.Status.PROCESSING),
        "queued": stored_document(old_batch, age_days=40, status=Document.Status.QUEUED),
        "recent": stored_document(recent_batch, age_days=29, status=Document.Status.COMPLETED),
    }


def test_it_removes_old_finished_originals_and_keeps_rows_text_and_results(documents, settings):
    settings.SHEAF_RETENTION_DAYS = DAYS
    before = {name: document.file.name for name, document in documents.items()}

    assert originals_expire() == 3

    for name in ("completed", "failed", "canceled"):
        document = Document.objects.get(pk=documents[name].pk)
        assert not Path(default_storage.path(before[name])).exists(), name
        assert document.file.name == ""
        assert document.file_removed_at is not None
        assert document.text == "Invoice number: INV-7"
        assert document.status == documents[name].status
    assert Document.objects.get(pk=documents["completed"].pk).result == RESULT


def test_the_read_result_kept_beside_an_original_goes_with_it(documents, settings):
    settings.SHEAF_RETENTION_DAYS = DAYS
    kept = {}
    for name in ("completed", "recent"):
        document = documents[name]
        read = ReadResult("Invoice number: INV-7", 1, False)
        stored = read_result_store(document=document, read=read)
        Document.objects.filter(pk=document.pk).update(read_result=stored)
        kept[name] = stored

    originals_expire()

    completed = Document.objects.get(pk=documents["completed"].pk)
    assert completed.read_result.name == ""
    assert not default_storage.exists(kept["completed"])
    assert document_read_result(document=completed) is None
    assert completed.text == "Invoice number: INV-7"  # the text stays, as the result does
    recent = Document.objects.get(pk=documents["recent"].pk)
    assert default_storage.exists(kept["recent"])
    assert document_read_result(document=recent) == ReadResult("Invoice number: INV-7", 1, False)


def test_it_keeps_recent_and_in_flight_originals(documents, settings):
    settings.SHEAF_RETENTION_DAYS = DAYS

    originals_expire()

    for name in ("processing", "queued", "recent"):
        document = Document.objects.get(pk=documents[name].pk)
        assert document.file.name == documents[name].file.name, name
        assert on_disk(document), name
        assert document.file_removed_at is None


def test_running_it_twice_changes_nothing_more(documents, settings):
    settings.SHEAF_RETENTION_DAYS = DAYS
    originals_expire()
    first = dict(Document.objects.values_list("pk", "file_removed_at"))

    assert originals_expire(now=timezone.now() + timedelta(hours=1)) == 0

    assert dict(Document.objects.values_list("pk", "file_removed_at")) == first
    assert on_disk(Document.objects.get(pk=documents["recent"].pk))


def test_it_does_nothing_while_the_setting_is_unset(documents, settings, media_files):
    settings.SHEAF_RETENTION_DAYS = None
    files = media_files()

    assert originals_expire() == 0

    assert media_files() == files
    assert not Document.objects.filter(file_removed_at__isnull=False).exists()


def test_the_daily_schedule_runs_the_retention_task(documents, settings):
    schedule = Schedule.objects.get(name="sheaf-retention")
    assert schedule.schedule_type == Schedule.DAILY
    module, _, name = schedule.func.rpartition(".")
    task = getattr(importlib.import_module(module), name)

    settings.SHEAF_RETENTION_DAYS = None
    assert task() == 0
    settings.SHEAF_RETENTION_DAYS = DAYS
    assert task() == 3
    assert not on_disk(documents["completed"])


def test_the_batch_page_says_the_original_was_removed(alice_client, documents, settings):
    settings.SHEAF_RETENTION_DAYS = DAYS
    originals_expire()
    completed = documents["completed"]

    page = alice_client.get(f"/dashboard/batches/{completed.batch_id}/").content.decode()

    row = re.search(rf'<tr data-document="{completed.pk}">(.*?)</tr>', page, re.S).group(1)
    assert f">{completed.original_filename}</a>" in row
    assert "original removed after 30 days, on" in row
    assert f"/dashboard/documents/{completed.pk}/original/" not in page
    # The documents whose originals are kept still link to them.
    assert f"/dashboard/documents/{documents['processing'].pk}/original/" in page


def test_downloading_a_removed_original_answers_410_with_the_reason(
    alice_client, documents, settings
):
    settings.SHEAF_RETENTION_DAYS = DAYS
    originals_expire()
    completed = documents["completed"]

    response = alice_client.get(f"/dashboard/documents/{completed.pk}/original/")

    assert response.status_code == 410
    body = response.content.decode()
    assert "The original was removed" in body
    assert f"{completed.original_filename}: original removed after 30 days" in body


def test_another_users_removed_original_is_still_404(bob_client, documents, settings):
    settings.SHEAF_RETENTION_DAYS = DAYS
    originals_expire()

    response = bob_client.get(f"/dashboard/documents/{documents['completed'].pk}/original/")

    assert response.status_code == 404
    assert "original removed" not in response.content.decode()


def test_exports_still_carry_the_results(alice_client, documents, settings):
    settings.SHEAF_RETENTION_DAYS = DAYS
    originals_expire()
    batch_id = documents["completed"].batch_id

    response = alice_client.get(f"/dashboard/batches/{batch_id}/export/json/")

    exported = json.loads(response.content)["documents"]
    row = next(d for d in exported if d["id"] == str(documents["completed"].pk))
    fields = {name: {**cell, "review": None} for name, cell in RESULT["fields"].items()}
    assert row["result"] == {**RESULT, "fields": fields}
    assert row["filename"] == documents["completed"].original_filename


def test_a_rerun_after_removal_reuses_the_kept_text(documents, settings):
    settings.SHEAF_RETENTION_DAYS = DAYS
    originals_expire()
    document = Document.objects.get(pk=documents["completed"].pk)

    batch_services.document_rerun(document=document)
    claim = pipeline.document_claim()
    assert claim is not None and claim.document_id == document.pk

    assert pipeline.document_process(claim=claim) == Document.Status.COMPLETED
    document.refresh_from_db()
    assert document.result["fields"]["invoice number"]["value"] == "INV-7"


def test_a_never_read_document_whose_original_was_removed_fails_with_a_clear_error(
    old_batch, settings
):
    settings.SHEAF_RETENTION_DAYS = DAYS
    unread = stored_document(
        old_batch, age_days=40, status=Document.Status.FAILED, read_at=None, text=""
    )
    originals_expire()

    batch_services.document_rerun(document=Document.objects.get(pk=unread.pk))
    claim = pipeline.document_claim()
    assert claim is not None and claim.document_id == unread.pk

    assert pipeline.document_process(claim=claim) == Document.Status.FAILED
    unread.refresh_from_db()
    assert unread.error_code == "file_removed"
    assert "original removed after 30 days" in unread.error_message
