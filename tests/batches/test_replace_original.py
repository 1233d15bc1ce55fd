"""Replacing one document's original (#17): a password-protected PDF replaced by a readable copy
is read and extracted again in its batch, through the API and the document page; a bad
replacement is refused and changes nothing."""

from __future__ import annotations

import json

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

from accounts.services import api_key_create
from batches import services
from batches.models import BatchProcess
from batches.tasks import drain
from documents.models import Document
from extraction.fields import parse_fields
from tests.support.documents import encrypted_pdf
from tests.support.placed_pdfs import make_pdf, rows

pytestmark = pytest.mark.django_db(transaction=True)

READABLE = make_pdf([rows(("Invoice number:", "INV-2024-0042"), ("Total:", "1,234.50 EUR"))])


@pytest.fixture
def locked(alice, settings) -> Document:
    settings.SHEAF_EXTRACTION_ENGINE = "local"
    services.batch_create(
        user=alice,
        files=[
            ContentFile(
                encrypted_pdf(READABLE, user_password="secret", algorithm="AES-256"),
                name="locked.pdf",
            )
        ],
        prompt="The invoice's details.",
        fields=parse_fields("invoice number\ntotal:number"),
    )
    drain(budget_seconds=30)
    document = Document.objects.get()
    assert (document.status, document.error_code) == ("failed", "encrypted")
    return document


def put_original(api: Client, document: Document, name: str, data: bytes):
    body = encode_multipart(BOUNDARY, {"file": SimpleUploadedFile(name, data, "application/pdf")})
    return api.put(
        f"/api/v1/documents/{document.pk}/original/", data=body, content_type=MULTIPART_CONTENT
    )


@pytest.fixture
def api(alice) -> Client:
    _, secret = api_key_create(user=alice, name="replace")
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}")


def test_a_readable_copy_replaces_a_locked_pdf_and_is_extracted_again(api, locked):
    old_file = locked.file.name

    response = put_original(api, locked, "unlocked.pdf", READABLE)

    assert response.status_code == 200, response.content
    assert (response.json()["status"], response.json()["filename"]) == ("queued", "unlocked.pdf")
    assert not default_storage.exists(old_file)
    drain(budget_seconds=30)
    locked.refresh_from_db()
    assert (locked.status, locked.error_code) == ("completed", "")
    assert locked.result["fields"]["invoice number"]["value"] == "INV-2024-0042"
    assert locked.batch.status == BatchProcess.Status.COMPLETED
    assert api.get(f"/dashboard/documents/{locked.pk}/original/").status_code in (200, 302)


def test_a_replacement_that_is_not_a_pdf_is_refused_and_changes_nothing(api, locked):
    response = put_original(api, locked, "unlocked.pdf", b"not a pdf at all")

    assert response.status_code == 400
    assert response.json()["code"] == "unsupported_type"
    locked.refresh_from_db()
    assert (locked.status, locked.original_filename) == ("failed", "locked.pdf")
    assert default_storage.exists(locked.file.name)
    assert len(default_storage.listdir(locked.file.name.rsplit("/", 1)[0])[1]) == 1


def test_the_document_page_replaces_the_original(alice_client, locked):
    response = alice_client.post(
        f"/dashboard/documents/{locked.pk}/replace/",
        {"file": SimpleUploadedFile("unlocked.pdf", READABLE, "application/pdf")},
        follow=True,
    )

    assert "unlocked.pdf uploaded; it is read again." in response.content.decode()
    drain(budget_seconds=30)
    locked.refresh_from_db()
    assert locked.status == "completed"


def test_a_document_being_processed_cannot_be_replaced(api, locked):
    Document.objects.filter(pk=locked.pk).update(status="queued")

    response = put_original(api, locked, "unlocked.pdf", READABLE)

    assert (response.status_code, response.json()["code"]) == (409, "conflict")
    assert json.loads(response.content)["detail"] == "locked.pdf is still being processed."
