"""POST /api/v1/batches/ with an Idempotency-Key: the same request again returns the first batch;
the key with a different request is refused with 422 `idempotency_mismatch` and stores nothing.
"The same request" is the parsed form values and the files in order by (name, SHA-256), so an
honest retry, whose multipart boundary (and part order) differ, is still the same request."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.test.client import encode_multipart

from accounts.models import User
from accounts.selectors import user_usage
from accounts.services import api_key_create
from batches.models import BatchProcess
from documents.models import Document
from tests.support.pdfs import one_page_pdf

pytestmark = pytest.mark.django_db

URL = "/api/v1/batches/"
KEY = "retry-7f3a"


class Pdf:
    """A named upload whose bytes can be read more than once (each request reads it)."""

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.content = one_page_pdf(b"BT /F1 12 Tf 72 720 Td (%s) Tj ET" % text.encode())

    def part(self) -> SimpleUploadedFile:
        return SimpleUploadedFile(self.name, self.content, content_type="application/pdf")


A = Pdf("a.pdf", "Invoice A-1 Total 10.00")
B = Pdf("b.pdf", "Invoice B-2 Total 20.00")

REQUEST: dict[str, Any] = {
    "prompt": "invoice number and total",
    "fields": "invoice number, total:number",
    "name": "March",
    "description": "from the shared inbox",
    "mode": "standard",
    "files": [A, B],
}


def post(client: Client, request: dict[str, Any], *, boundary: str, key: str = KEY):
    """A multipart POST as a client library would build it, with its own boundary; parts go in
    the order of `request`."""
    data = {k: [f.part() for f in v] if k == "files" else v for k, v in request.items()}
    return client.post(
        URL,
        data=encode_multipart(boundary, data),
        content_type=f"multipart/form-data; boundary={boundary}",
        HTTP_IDEMPOTENCY_KEY=key,
    )


@pytest.fixture
def api(grace: User) -> Client:
    _, secret = api_key_create(user=grace, name="ci")
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}")


def test_a_retry_with_another_boundary_and_part_order_returns_the_first_batch(api, grace):
    first = post(api, REQUEST, boundary="----first-attempt-1111")
    reordered = {
        k: REQUEST[k] for k in ["files", "mode", "name", "fields", "description", "prompt"]
    }
    again = post(api, {**reordered, "prompt": "  invoice number and total "}, boundary="zz-2222")

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert [d["filename"] for d in again.json()["documents"]] == ["a.pdf", "b.pdf"]
    assert BatchProcess.objects.count() == 1
    assert Document.objects.count() == 2
    assert user_usage(grace).documents_this_month == 2


@pytest.mark.parametrize(
    "change",
    [
        {"prompt": "invoice number, total and date"},
        {"fields": "invoice number, total:number, date:date"},
        {"fields": ""},
        {"name": "April"},
        {"description": "from the other inbox"},
        {"mode": "economy"},
        {"start_at": "2099-01-01T09:00:00Z"},  # compared as asked, before it is judged
        {"files": [B, A]},
        {"files": [A]},
        {"files": [A, Pdf("b.pdf", "Invoice B-2 Total 99.00")]},
        {"files": [A, Pdf("c.pdf", "Invoice B-2 Total 20.00")]},
    ],
    ids=[
        "prompt",
        "fields",
        "no-fields",
        "name",
        "description",
        "mode",
        "start-at",
        "file-order",
        "one-file-fewer",
        "same-name-other-content",
        "same-content-other-name",
    ],
)
def test_the_key_with_a_different_request_is_422_and_stores_nothing(
    api, grace, media_files, change
):
    first = post(api, REQUEST, boundary="b-1")
    stored = media_files()

    response = post(api, {**REQUEST, **change}, boundary="b-1")

    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "idempotency_mismatch"
    assert body["detail"] == (
        f"Idempotency-Key '{KEY}' was already used for a different request (batch "
        f"{first.json()['id']}). Send a new key for a new batch, or the same prompt, fields, "
        "name, description, mode, budget_usd, start_at and files to get that batch again."
    )
    assert str(BatchProcess.objects.get().pk) == first.json()["id"]
    assert Document.objects.count() == 2
    assert media_files() == stored
    assert user_usage(grace).documents_this_month == 2


def test_another_key_with_the_changed_request_makes_a_new_batch(api):
    post(api, REQUEST, boundary="b-1")

    response = post(api, {**REQUEST, "name": "April"}, boundary="b-1", key="retry-other")

    assert response.status_code == 201
    assert BatchProcess.objects.count() == 2


def test_a_batch_kept_from_before_fingerprints_is_returned_for_its_key(api):
    first = post(api, REQUEST, boundary="b-1")
    BatchProcess.objects.update(request_fingerprint="")  # made before the column existed

    response = post(api, {**REQUEST, "name": "April"}, boundary="b-1")

    assert (response.status_code, response.json()["id"]) == (200, first.json()["id"])
