"""A person reviews a document's values through the API: corrections and confirmations kept
apart from the machine's values, with who and when, winning in the API and every export, kept
across a re-run, refused whole when one value has the wrong type."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from django.core.files.base import ContentFile
from django.test import Client

from accounts.services import api_key_create
from batches import services
from batches.tasks import drain
from documents.models import Document
from extraction.fields import parse_fields

pytestmark = pytest.mark.django_db(transaction=True)

INVOICE = (
    "ACME Supplies Ltd\n12 Harbour Road, Bristol\n\n"
    "Invoice number: INV-2024-0001\nDate: 14 March 2024\nTotal: 1,234.50 EUR\n"
)
FIELDS = "invoice number\ndate:date\ntotal:number\npaid:boolean"


@pytest.fixture
def api(alice) -> Client:
    _, secret = api_key_create(user=alice, name="review")
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}")


def extracted(user, fields: str) -> Document:
    """The invoice uploaded with `fields` and extracted by the offline engine."""
    services.batch_create(
        user=user,
        files=[ContentFile(INVOICE.encode(), name="acme.txt")],
        prompt="The invoice's details.",
        fields=parse_fields(fields),
    )
    drain(budget_seconds=30)
    document = Document.objects.get()
    assert document.status == Document.Status.COMPLETED
    return document


@pytest.fixture(autouse=True)
def offline(settings) -> None:
    settings.SHEAF_EXTRACTION_ENGINE = "local"


@pytest.fixture
def document(alice) -> Document:
    return extracted(alice, FIELDS)


def patch(api: Client, document: Document, body: dict) -> tuple[int, dict]:
    response = api.patch(
        f"/api/v1/documents/{document.pk}/review/",
        data=json.dumps(body),
        content_type="application/json",
    )
    return response.status_code, response.json()


def csv_row(api: Client, document: Document) -> dict[str, str]:
    content = api.get(f"/api/v1/batches/{document.batch_id}/results/?format=csv").content
    (row,) = csv.DictReader(io.StringIO(content.decode("utf-8-sig")))
    return row


def test_a_correction_and_a_confirmation_win_everywhere_and_keep_the_machines_value(
    api, document, alice
):
    status, body = patch(
        api,
        document,
        {"values": {"total": "1243.50", "paid": False}, "confirmed": ["invoice number"]},
    )

    assert status == 200, body
    total = body["fields"]["total"]
    assert (total["value"], total["review"]["value"]) == ("1234.50", "1243.50")
    assert total["review"]["by"] == alice.email and total["review"]["at"]
    assert body["fields"]["invoice number"]["review"]["value"] == "INV-2024-0001"
    assert body["fields"]["date"]["review"] is None
    assert body["reviewed_at"]

    # The document's API shape carries the review beside the machine's value.
    shown = api.get(f"/api/v1/documents/{document.pk}/").json()["result"]["fields"]
    assert (shown["total"]["value"], shown["total"]["review"]["value"]) == ("1234.50", "1243.50")
    assert api.get(f"/api/v1/batches/{document.batch_id}/").json()["reviewed_documents"] == 1

    # Exports use the reviewed value and say it was reviewed.
    row = csv_row(api, document)
    assert (row["total"], row["total status"]) == ("1243.50", "reviewed")
    assert (row["paid"], row["paid status"]) == ("false", "reviewed")
    assert (row["invoice number"], row["invoice number status"]) == ("INV-2024-0001", "reviewed")
    assert row["date"] == "2024-03-14" and row["date status"] != "reviewed"


def test_a_value_of_the_wrong_type_is_refused_naming_the_field_and_nothing_is_stored(api, document):
    status, body = patch(
        api,
        document,
        {"values": {"invoice number": "INV-9", "date": "14/03/2024", "total": "twelve"}},
    )

    assert status == 400
    assert body["code"] == "invalid_review"
    assert "date: '14/03/2024' is not a date (YYYY-MM-DD)" in body["detail"]
    assert "total: 'twelve' is not a number" in body["detail"]
    document.refresh_from_db()
    assert document.reviews == {} and document.reviewed_at is None
    assert csv_row(api, document)["invoice number"] == "INV-2024-0001"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"values": {"vat id": "DE123"}}, "vat id: the batch has no such field."),
        ({"values": {"total": "1.00"}, "revert": ["total"]}, "total: corrected, confirmed or"),
        ({"values": ["total"]}, "values:"),
    ],
    ids=["unknown-field", "twice", "not-an-object"],
)
def test_a_review_that_makes_no_sense_is_refused(api, document, body, message):
    status, answer = patch(api, document, body)

    assert (status, answer["code"]) == (400, "invalid_review")
    assert message in answer["detail"]


def test_null_means_reviewed_without_a_value_and_revert_drops_the_review(api, document):
    status, body = patch(api, document, {"values": {"date": None}})
    assert status == 200
    assert body["fields"]["date"]["review"]["value"] is None
    row = csv_row(api, document)
    assert (row["date"], row["date status"]) == ("", "reviewed")

    status, body = patch(api, document, {"revert": ["date"]})

    assert status == 200 and body["fields"]["date"]["review"] is None
    assert body["reviewed_at"] is None
    assert csv_row(api, document)["date"] == "2024-03-14"
    assert api.get(f"/api/v1/batches/{document.batch_id}/").json()["reviewed_documents"] == 0


def test_a_rerun_keeps_the_review(api, document):
    patch(api, document, {"values": {"total": "1243.50"}})

    services.document_rerun(document=document)
    drain(budget_seconds=30)

    document.refresh_from_db()
    assert document.status == Document.Status.COMPLETED
    row = csv_row(api, document)
    assert (row["total"], row["total status"]) == ("1243.50", "reviewed")


def test_only_the_owner_reviews_and_only_a_document_with_values(api, document, bob):
    _, secret = api_key_create(user=bob, name="other")
    other = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert other.get(f"/api/v1/documents/{document.pk}/review/").status_code == 404
    status, _ = patch(other, document, {"confirmed": ["total"]})
    assert status == 404

    Document.objects.filter(pk=document.pk).update(result=None, status="failed")
    status, body = patch(api, document, {"confirmed": ["total"]})
    assert (status, body["code"]) == (409, "conflict")


TABLE_FIELDS = "invoice number\nline items: table(description; quantity:number; amount:number)"


def test_a_table_is_corrected_as_its_full_list_of_rows(api, alice):
    document = extracted(alice, TABLE_FIELDS)
    rows = [
        {"description": "Widgets", "quantity": 2, "amount": "1000.00"},
        {"description": "Delivery", "quantity": "1", "amount": 234.5},
    ]

    status, body = patch(api, document, {"values": {"line items": rows}})

    assert status == 200, body
    assert body["fields"]["line items"]["review"]["value"] == [
        {"description": "Widgets", "quantity": "2", "amount": "1000.00"},
        {"description": "Delivery", "quantity": "1", "amount": "234.5"},
    ]
    content = api.get(f"/api/v1/batches/{document.batch_id}/results/?format=items.csv").content
    items = list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))
    assert [(row["description"], row["amount"], row["status"]) for row in items] == [
        ("Widgets", "1000.00", "reviewed"),
        ("Delivery", "234.5", "reviewed"),
    ]

    status, body = patch(
        api, document, {"values": {"line items": [{"description": "x", "colour": "red"}]}}
    )
    assert (status, body["code"]) == (400, "invalid_review")
    assert "line items row 1: no column named 'colour'" in body["detail"]


def test_the_batch_page_shows_the_reviewed_value_and_what_was_extracted(
    api, document, alice_client
):
    patch(api, document, {"values": {"total": "1243.50"}})

    body = alice_client.get(f"/dashboard/batches/{document.batch_id}/").content.decode()

    cell = re.search(r'<td data-label="total" class="value reviewed num">(.*?)</td>', body, re.S)
    assert cell, "no reviewed total cell"
    assert cell.group(1).startswith("1243.50 EUR")
    assert 'title="Reviewed by alice@example.com; extracted: 1234.50 EUR"' in cell.group(1)
