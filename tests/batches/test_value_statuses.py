"""Per-value statuses end to end: the offline engine on generated invoices, each value settled
once after the engine, the document's counters, the API's value_counts and checks, and the batch
page's words."""

from __future__ import annotations

from collections import Counter

import pytest
from django.core.files.base import ContentFile
from django.test import Client

from accounts.services import api_key_create
from batches import services
from batches.tasks import drain
from documents.models import Document
from extraction.fields import parse_fields
from samples.invoices import invoice
from tests.support.documents import text_pdf

FIELDS = "invoice number\ndate:date\ntotal:number\npurchase order reference"


@pytest.fixture
def finished(alice, settings):
    settings.SHEAF_EXTRACTION_ENGINE = "local"
    files = {
        "a.pdf": invoice(3).pdf,
        "b.pdf": invoice(4, language="de-DE").pdf,
        "notes.pdf": text_pdf(["Meeting notes", "Nothing to extract here."]),
    }
    batch = services.batch_create(
        user=alice,
        files=[ContentFile(data, name=name) for name, data in files.items()],
        prompt="Extract the invoice's details.",
        fields=parse_fields(FIELDS),
    )
    drain(budget_seconds=120)
    return batch


def statuses(document: Document) -> Counter[str]:
    return Counter(cell["status"] for cell in document.result["fields"].values())


@pytest.mark.django_db(transaction=True)
def test_every_stored_value_has_a_status_and_the_document_counts_them(finished):
    documents = {d.original_filename: d for d in Document.objects.filter(batch=finished)}
    invoice_a = documents["a.pdf"].result
    truth = invoice(3).labels
    number = invoice_a["fields"]["invoice number"]
    assert (number["value"], number["status"], number["verified"]) == (
        truth.invoice_number,
        "found",
        True,
    )
    assert truth.invoice_number in number["quote"]
    assert (number["source"], number["review"]) == ("text", None)
    assert invoice_a["fields"]["purchase order reference"]["status"] == "missing"
    assert invoice_a["checks"] == {"status": "not_checked", "failures": []}
    notes = documents["notes.pdf"]
    assert statuses(notes) == Counter(missing=4)
    for document in documents.values():
        counted = statuses(document)
        assert [getattr(document, f"count_{s}") for s in ("found", "unverified", "missing")] == [
            counted["found"],
            counted["unverified"],
            counted["missing"],
        ]
        for cell in document.result["fields"].values():
            assert cell["verified"] == (cell["status"] in ("found", "checked"))


@pytest.mark.django_db(transaction=True)
def test_the_api_sums_value_counts_and_gives_each_document_its_checks(finished, alice):
    _, secret = api_key_create(user=alice, name="tests")
    body = (
        Client(HTTP_AUTHORIZATION=f"Bearer {secret}").get(f"/api/v1/batches/{finished.pk}/").json()
    )
    expected: Counter[str] = Counter()
    for document in Document.objects.filter(batch=finished):
        expected.update(statuses(document))
    assert body["value_counts"] == {
        status: expected[status]
        for status in ("found", "checked", "unverified", "invalid", "missing")
    }
    assert body["value_counts"]["missing"] >= 4
    assert [d["checks"] for d in body["documents"]] == [
        {"status": "not_checked", "failures": []}
    ] * 3
    fields = body["documents"][0]["result"]["fields"]
    assert {cell["status"] for cell in fields.values()} <= {"found", "unverified", "missing"}


@pytest.mark.django_db(transaction=True)
def test_the_batch_page_says_how_many_values_have_each_status(finished, alice_client):
    page = alice_client.get(f"/dashboard/batches/{finished.pk}/").content.decode()
    counts: Counter[str] = Counter()
    for document in Document.objects.filter(batch=finished):
        counts.update(statuses(document))
    with_value = 12 - counts["missing"]
    assert f"{with_value}</strong> of 12 fields have a value, <strong>{counts['missing']}" in page
    assert (
        f"{counts['checked']} checked, {counts['found']} found on the page, "
        f"{counts['unverified']} not found in the text, {counts['invalid']} invalid"
    ) in page
    assert '<th scope="col">Checks</th>' in page
