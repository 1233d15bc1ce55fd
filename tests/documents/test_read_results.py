"""The read result: what reading a document gave (pages, text, words with boxes), kept beside the
original by the worker, given to the engine, loaded for its owner, and deleted with the original
(documents/services.py, documents/selectors.py, batches/pipeline/reading.py)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import Http404
from django.utils import timezone

from accounts.models import User
from accounts.services import user_delete
from batches import pipeline
from batches.pipeline.claims import Claim
from batches.pipeline.reading import extraction_request
from batches.selectors import document_read_result_for_user
from batches.services import batch_create, batch_delete
from documents import sandbox
from documents.models import Document
from documents.readers import read_document
from documents.selectors import document_read_result
from documents.storage import local_path
from extraction import get_engine
from tests.factories import DocumentFactory
from tests.support.placed_pdfs import make_pdf

pytestmark = pytest.mark.django_db

PDF = make_pdf(
    [
        [(72, 740, "Invoice number"), (320, 740, "INV-7")],
        [(72, 740, "Total"), (320, 740, "12.50 EUR")],
    ]
)


@pytest.fixture(autouse=True, scope="module")
def _fresh_pool() -> Iterator[None]:
    sandbox.shutdown()
    yield
    sandbox.shutdown()


def uploaded(user: User, data: bytes = PDF, name: str = "invoice.pdf") -> Document:
    batch = batch_create(
        user=user, files=[SimpleUploadedFile(name, data)], prompt="invoice number, total"
    )
    return batch.documents.get()


def claimed() -> tuple[Document, Claim]:
    claim = pipeline.document_claim()
    assert claim is not None
    return Document.objects.select_related("batch").get(pk=claim.document_id), claim


def test_the_worker_keeps_the_read_beside_the_original_and_the_engine_gets_its_boxes(alice):
    uploaded(alice)
    document, claim = claimed()

    request = extraction_request(document, get_engine("local"), claim)

    document.refresh_from_db()
    assert document.read_result.name == (
        f"uploads/{alice.pk}/{document.batch_id}/{document.pk}.read.json.gz"
    )
    kept = json.loads(gzip.decompress(default_storage.open(document.read_result.name).read()))
    assert kept["format"] == 1
    assert [page["number"] for page in kept["pages"]] == [1, 2]
    assert kept["pages"][0]["words"][2][0] == "INV-7"
    assert document.text == "Invoice number INV-7\fTotal 12.50 EUR"
    assert request is not None and request.text == document.text
    assert [[word.text for word in page.words] for page in request.layout] == [
        ["Invoice", "number", "INV-7"],
        ["Total", "12.50", "EUR"],
    ]
    assert request.layout[0].words[2].x0 == pytest.approx(320, abs=1)


def test_the_kept_result_is_what_the_reader_gave(alice):
    document = uploaded(alice)
    process_next()

    document.refresh_from_db()
    with local_path(document.file) as path:
        read = read_document(path, content_type="application/pdf", filename="invoice.pdf")
    assert document_read_result(document=document) == read
    assert document.status == Document.Status.COMPLETED


def test_a_later_attempt_builds_its_request_without_reading_the_original_again(alice):
    uploaded(alice)
    document, claim = claimed()
    first = extraction_request(document, get_engine("local"), claim)
    document.refresh_from_db()
    # Were the original read again, the missing file would fail the read.
    default_storage.delete(document.file.name)

    again = extraction_request(document, get_engine("local"), claim)

    assert again is not None and first is not None
    assert (again.text, again.layout) == (first.text, first.layout)


def test_a_document_read_before_results_were_kept_still_gets_its_text(alice):
    document = DocumentFactory(
        user=alice,
        batch__user=alice,
        status=Document.Status.PROCESSING,
        read_at=timezone.now(),
        text="Invoice number: INV-7",
        lease_token="7d1cf4b2-2a2e-4a8b-9c55-0d8f1f3c9e11",
    )
    document = Document.objects.select_related("batch").get(pk=document.pk)

    request = extraction_request(document, get_engine("local"), Claim.of_held(document))

    assert request is not None
    assert (request.text, request.layout) == ("Invoice number: INV-7", ())
    assert document_read_result(document=document) is None


def test_a_kept_result_whose_file_is_gone_is_none_not_an_error(alice, caplog):
    document = uploaded(alice)
    process_next()
    document.refresh_from_db()
    default_storage.delete(document.read_result.name)

    assert document_read_result(document=document) is None
    assert "its read result" in caplog.text


def test_a_refused_file_keeps_no_read_result(alice):
    document = uploaded(alice, make_pdf([[]]), name="blank.pdf")

    assert process_next() == "failed"

    document.refresh_from_db()
    assert (document.error_code, document.read_result.name) == ("no_text_layer", "")
    assert default_storage.listdir(f"uploads/{alice.pk}/{document.batch_id}")[1] == [
        document.file.name.rsplit("/", 1)[1]
    ]


def test_the_owner_gets_the_read_result_and_anyone_else_a_404(alice, bob):
    document = uploaded(alice)
    process_next()

    found, read = document_read_result_for_user(user=alice, document_id=document.pk)

    assert found.pk == document.pk
    assert read is not None and read.pages[1].text == "Total 12.50 EUR"
    with pytest.raises(Http404):
        document_read_result_for_user(user=bob, document_id=document.pk)


def test_deleting_the_batch_deletes_the_read_result(alice, django_capture_on_commit_callbacks):
    document = uploaded(alice)
    process_next()
    document.refresh_from_db()
    names = [document.file.name, document.read_result.name]
    assert all(default_storage.exists(name) for name in names)

    with django_capture_on_commit_callbacks(execute=True):
        batch_delete(batch=document.batch)

    assert not any(default_storage.exists(name) for name in names)


def test_deleting_the_account_deletes_the_read_result(alice, django_capture_on_commit_callbacks):
    document = uploaded(alice)
    process_next()
    document.refresh_from_db()
    names = [document.file.name, document.read_result.name]

    with django_capture_on_commit_callbacks(execute=True):
        user_delete(user=alice, confirm_email=alice.email)

    assert not any(default_storage.exists(name) for name in names)


def process_next() -> str:
    claim = pipeline.document_claim()
    assert claim is not None
    return pipeline.document_process(claim=claim)
