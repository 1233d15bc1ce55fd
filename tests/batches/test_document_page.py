"""The document page (#17): a document's original beside its values, each value with its status,
its quote and a box where the quote stands on its page; corrections from the page reach the
exports; the page pictures are the owner's only and go with the original."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone
from PIL import Image

from accounts.services import user_delete
from batches import services
from batches.selectors import batch_review_queue
from batches.tasks import drain
from documents.models import Document
from documents.pages import pages_folder
from documents.services import originals_expire
from extraction.fields import parse_fields
from tests.factories import BatchFactory, DocumentFactory
from tests.support.placed_pdfs import forget_word_boxes, make_pdf, rows

pytestmark = pytest.mark.django_db(transaction=True)

FIELDS = "invoice number\ndate:date\ntotal:number"
PDF = make_pdf(
    [
        rows(
            "ACME Supplies Ltd",
            ("Invoice number:", "INV-2024-0042"),
            ("Date:", "14 March 2024"),
            ("Total:", "1,234.50 EUR"),
        )
    ]
)


@pytest.fixture(autouse=True)
def offline(settings) -> None:
    settings.SHEAF_EXTRACTION_ENGINE = "local"


def extracted(user, name: str, data: bytes) -> Document:
    services.batch_create(
        user=user,
        files=[ContentFile(data, name=name)],
        prompt="The invoice's details.",
        fields=parse_fields(FIELDS),
    )
    drain(budget_seconds=30)
    document = Document.objects.get(original_filename=name)
    assert document.status == Document.Status.COMPLETED, document.error_message
    return document


def text_of(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_a_pdfs_values_stand_beside_its_page_with_a_box_where_each_was_found(alice, alice_client):
    document = extracted(alice, "acme.pdf", PDF)

    page = alice_client.get(f"/dashboard/documents/{document.pk}/")

    assert page.status_code == 200
    html = page.content.decode()
    shown = text_of(html)
    assert "invoice number found INV-2024-0042 “Invoice number: INV-2024-0042” · page 1" in shown
    assert "total found 1234.50 “Total: 1,234.50 EUR” · page 1" in shown
    # One outlined group per value, on page 1, over its picture.
    (svg,) = re.findall(
        r'<svg class="page-boxes" viewBox="0 0 612(?:\.0)? 792(?:\.0)?".*?</svg>', html
    )
    assert len(re.findall(r'<g class="quote" data-value="\d+">', svg)) == 3
    assert f"/dashboard/documents/{document.pk}/pages/1/" in html

    picture = alice_client.get(f"/dashboard/documents/{document.pk}/pages/1/")

    assert (picture.status_code, picture["Content-Type"]) == (200, "image/png")
    image = Image.open(io.BytesIO(picture.content))
    assert image.width == 1100 and round(image.height / image.width, 2) == round(792 / 612, 2)
    # Drawn once, then read from storage beside the original.
    assert default_storage.exists(f"{pages_folder(document.file.name)}/1.png")
    assert alice_client.get(f"/dashboard/documents/{document.pk}/pages/1/").content == (
        picture.content
    )
    assert alice_client.get(f"/dashboard/documents/{document.pk}/pages/2/").status_code == 404


def test_a_quote_without_a_box_on_its_page_is_marked_in_that_pages_text(alice, alice_client):
    document = extracted(alice, "acme.pdf", PDF)
    forget_word_boxes(document, "Total:", "1,234.50")

    html = alice_client.get(f"/dashboard/documents/{document.pk}/").content.decode()

    (svg,) = re.findall(r'<svg class="page-boxes".*?</svg>', html)
    assert re.findall(r'<g class="quote" data-value="(\d+)">', svg) == ["0", "1"]
    assert re.findall(r'<mark class="quote" data-value="(\d+)">([^<]*)</mark>', html) == [
        ("2", "Total: 1,234.50 EUR")
    ]
    assert "Page 1's text: a quote not outlined on the picture is marked here" in html


def test_every_quote_boxed_shows_no_page_text(alice, alice_client):
    document = extracted(alice, "acme.pdf", PDF)

    html = alice_client.get(f"/dashboard/documents/{document.pk}/").content.decode()

    assert "<mark" not in html and "page-text" not in html


def test_a_text_documents_quotes_are_marked_in_its_text(alice, alice_client):
    text = "Invoice number: T-77\nDate: 2 May 2024\nTotal: 99.00 GBP\n"
    document = extracted(alice, "note.txt", text.encode())

    html = alice_client.get(f"/dashboard/documents/{document.pk}/").content.decode()

    marks = re.findall(r'<mark class="quote" data-value="(\d)">([^<]*)</mark>', html)
    assert marks == [
        ("0", "Invoice number: T-77"),
        ("1", "Date: 2 May 2024"),
        ("2", "Total: 99.00 GBP"),
    ]
    assert "/pages/" not in html


def test_a_correction_from_the_page_reaches_the_csv_and_keeps_the_extracted_value_in_view(
    alice, alice_client
):
    document = extracted(alice, "acme.pdf", PDF)
    url = f"/dashboard/documents/{document.pk}/review/"

    saved = alice_client.post(url, {"field": "total", "action": "save", "value": "1243.50"})
    confirmed = alice_client.post(url, {"field": "invoice number", "action": "confirm"})
    refused = alice_client.post(
        url, {"field": "date", "action": "save", "value": "14/03"}, follow=True
    )

    assert saved.status_code == confirmed.status_code == 302
    assert "date: &#x27;14/03&#x27; is not a date (YYYY-MM-DD)" in refused.content.decode()
    shown = text_of(alice_client.get(f"/dashboard/documents/{document.pk}/").content.decode())
    assert "total reviewed 1243.50 Reviewed by alice@example.com; extracted: 1234.50" in shown
    export = alice_client.get(f"/dashboard/batches/{document.batch_id}/export/csv/").content
    (row,) = csv.DictReader(io.StringIO(export.decode("utf-8-sig")))
    assert (row["total"], row["total status"]) == ("1243.50", "reviewed")
    assert (row["invoice number status"], row["date status"]) == ("reviewed", "found")


def test_only_the_owner_sees_the_page_and_its_pictures_and_they_go_with_the_batch(
    alice, alice_client, bob_client
):
    document = extracted(alice, "acme.pdf", PDF)
    for path in ("", "pages/1/"):
        assert bob_client.get(f"/dashboard/documents/{document.pk}/{path}").status_code == 404
    alice_client.get(f"/dashboard/documents/{document.pk}/pages/1/")
    picture = f"{pages_folder(document.file.name)}/1.png"
    assert default_storage.exists(picture)

    services.batch_delete(batch=document.batch)

    assert not default_storage.exists(picture)


@pytest.mark.parametrize("removal", ["retention", "account deletion"])
def test_the_page_pictures_go_with_the_original_under_retention_and_account_deletion(
    alice, alice_client, removal
):
    document = extracted(alice, "acme.pdf", PDF)
    alice_client.get(f"/dashboard/documents/{document.pk}/pages/1/")
    picture = f"{pages_folder(document.file.name)}/1.png"
    assert default_storage.exists(picture)

    if removal == "retention":
        assert originals_expire(days=0, now=timezone.now() + timedelta(seconds=1)) == 1
    else:
        user_delete(user=alice, confirm_email=alice.email)

    assert not default_storage.exists(picture)
    assert not default_storage.exists(document.file.name)


def test_the_batch_page_links_each_document_to_its_page(alice, alice_client):
    document = extracted(alice, "acme.pdf", PDF)

    html = alice_client.get(f"/dashboard/batches/{document.batch_id}/").content.decode()

    assert f'href="/dashboard/documents/{document.pk}/"' in html
    assert f'href="/dashboard/documents/{document.pk}/original/"' in html


UNSURE = {"total": {"value": "1.00", "quote": "1.00", "page": 1, "status": "unverified"}}


def completed(batch, name: str, fields: dict, checks: str = "not_checked", **counts) -> Document:
    """A completed text document of the batch with this result and these value counts."""
    return Document.objects.create(
        batch=batch,
        user=batch.user,
        original_filename=name,
        size=1,
        sha256="0" * 64,
        content_type="text/plain",
        status=Document.Status.COMPLETED,
        result={"engine": "local", "model": None, "fields": fields, "checks": {"status": checks}},
        **counts,
    )


def test_review_walks_the_documents_that_need_a_person_worst_first(alice, alice_client):
    clean = extracted(alice, "clean.pdf", PDF)
    batch = clean.batch
    # Two more documents of the same batch: one with a value not found in the text, one whose
    # arithmetic failed as well.
    unsure, failed = (
        completed(batch, name, UNSURE, checks=checks, count_unverified=1)
        for name, checks in (("unsure.txt", "not_checked"), ("failed.txt", "failed"))
    )

    first = alice_client.get(f"/dashboard/batches/{batch.pk}/review/")

    assert first["Location"] == f"/dashboard/documents/{failed.pk}/?queue=review"
    page = alice_client.get(first["Location"]).content.decode()
    assert f'href="/dashboard/documents/{unsure.pk}/?queue=review" rel="next"' in page

    # One keystroke's form: confirm what is left and go on to the next document in the queue.
    went_on = alice_client.post(
        f"/dashboard/documents/{failed.pk}/review/", {"action": "confirm_all", "queue": "review"}
    )
    assert went_on["Location"] == f"/dashboard/documents/{unsure.pk}/?queue=review"
    failed.refresh_from_db()
    assert failed.reviews["total"]["value"] == "1.00" and failed.reviewed_at is not None
    # The last one: the queue is empty (the clean document never needed a person).
    last = alice_client.post(
        f"/dashboard/documents/{unsure.pk}/review/",
        {"action": "confirm_all", "queue": "review"},
        follow=True,
    )
    assert last.redirect_chain[-1][0] == f"/dashboard/batches/{batch.pk}/"
    again = alice_client.get(f"/dashboard/batches/{batch.pk}/review/", follow=True)
    assert "Nothing needs review" in again.content.decode()


def test_a_missing_required_value_comes_before_values_not_found_in_the_text(alice, alice_client):
    clean = extracted(alice, "clean.pdf", PDF)
    batch = clean.batch
    batch.fields = [*batch.fields, {"name": "po number", "type": "string", "required": True}]
    batch.save(update_fields=["fields"])
    unsure, lacking = (
        completed(
            batch, "unsure.txt", {**UNSURE, "po number": {"value": "PO-1"}}, count_unverified=2
        ),
        completed(batch, "lacking.txt", {"po number": {"value": None}}, count_missing=1),
    )

    first = alice_client.get(f"/dashboard/batches/{batch.pk}/review/")

    assert first["Location"] == f"/dashboard/documents/{lacking.pk}/?queue=review"
    # Then the invoice read cleanly, which has no PO number either, then the unsure one.
    assert batch_review_queue(batch=batch) == [lacking.pk, clean.pk, unsure.pk]


ITEMS_FIELDS = (
    "invoice number\n"
    "line items: table(description; quantity:number; amount:number) -- one row per line"
)


def with_line_items(alice) -> Document:
    """A completed invoice whose two line items the machine quoted from page 1."""
    batch = BatchFactory(user=alice, fields=parse_fields(ITEMS_FIELDS))
    rows = [
        {"description": "Widgets", "quantity": "10", "amount": "1000.00"},
        {"description": "Delivry", "quantity": "1", "amount": "23.50"},
    ]
    proofs = [
        {"quote": "Widgets 10 1,000.00", "page": 1, "pages": [1], "status": "found"},
        {"quote": "Delivry 1 23.50", "page": 1, "pages": [1], "status": "found"},
    ]
    return DocumentFactory(
        batch=batch,
        status=Document.Status.COMPLETED,
        text="Invoice number: INV-9\nWidgets 10 1,000.00\nDelivry 1 23.50\n",
        result={
            "engine": "local",
            "model": None,
            "fields": {
                "invoice number": {
                    "value": "INV-9",
                    "quote": "INV-9",
                    "page": 1,
                    "status": "found",
                },
                "line items": {
                    "value": rows,
                    "rows": proofs,
                    "quote": None,
                    "page": 1,
                    "status": "found",
                },
            },
        },
    )


def test_a_line_item_is_corrected_added_and_removed_from_the_page_and_reaches_items_csv(
    alice, alice_client
):
    document = with_line_items(alice)
    url = f"/dashboard/documents/{document.pk}/review/"
    page = f"/dashboard/documents/{document.pk}/"

    shown = text_of(alice_client.get(page).content.decode())
    assert "line items row 2 found Delivry · 1 · 23.50 “Delivry 1 23.50” · page 1" in shown

    corrected = alice_client.post(
        url,
        {
            "field": "line items",
            "action": "save_row",
            "row": "2",
            "column:description": "Delivery",
            "column:quantity": "1",
            "column:amount": "23.50",
        },
        follow=True,
    )
    assert "line items: row corrected." in text_of(corrected.content.decode())
    alice_client.post(
        url,
        {
            "field": "line items",
            "action": "add_row",
            "column:description": "Discount",
            "column:quantity": "",
            "column:amount": "-10",
        },
    )
    alice_client.post(url, {"field": "line items", "action": "remove_row", "row": "1"})
    refused = alice_client.post(
        url,
        {
            "field": "line items",
            "action": "save_row",
            "row": "1",
            "column:description": "Delivery",
            "column:quantity": "one",
            "column:amount": "23.50",
        },
        follow=True,
    )

    assert "line items row 1 quantity: &#x27;one&#x27; is not a number" in refused.content.decode()
    document.refresh_from_db()
    assert document.reviews["line items"]["value"] == [
        {"description": "Delivery", "quantity": "1", "amount": "23.50"},
        {"description": "Discount", "quantity": None, "amount": "-10"},
    ]
    # The machine's rows stay beside the person's.
    assert document.result["fields"]["line items"]["value"][1]["description"] == "Delivry"
    shown = text_of(alice_client.get(page).content.decode())
    assert "line items row 1 reviewed Delivery · 1 · 23.50" in shown
    items = alice_client.get(f"/dashboard/batches/{document.batch_id}/export/items.csv/").content
    lines = list(csv.DictReader(io.StringIO(items.decode("utf-8-sig"))))
    assert [(line["description"], line["amount"], line["status"]) for line in lines] == [
        ("Delivery", "23.50", "reviewed"),
        ("Discount", "'-10", "reviewed"),
    ]


def test_a_row_form_names_a_row_that_is_not_there_and_a_scalar_field_takes_no_rows(
    alice, alice_client, bob_client
):
    document = with_line_items(alice)
    url = f"/dashboard/documents/{document.pk}/review/"

    missing = alice_client.post(
        url, {"field": "line items", "action": "remove_row", "row": "7"}, follow=True
    )
    scalar = alice_client.post(url, {"field": "invoice number", "action": "remove_row", "row": "1"})
    others = bob_client.post(url, {"field": "line items", "action": "remove_row", "row": "1"})

    assert "line items: no row 7." in missing.content.decode()
    assert scalar.status_code == 404 and others.status_code == 404
    document.refresh_from_db()
    assert document.reviews == {} or document.reviews is None


def test_a_document_ocr_found_hard_to_read_joins_the_queue_last_and_says_why(
    alice, alice_client, settings
):
    settings.SHEAF_OCR_REVIEW_BELOW = 80
    clean = extracted(alice, "clean.pdf", PDF)
    batch = clean.batch
    blurry = completed(batch, "blurry.txt", UNSURE, ocr_confidence=61.4)
    sharp = completed(batch, "sharp.txt", UNSURE, ocr_confidence=93.0)
    unsure = completed(batch, "unsure.txt", UNSURE, count_unverified=1)

    assert batch_review_queue(batch=batch) == [unsure.pk, blurry.pk]
    page = text_of(alice_client.get(f"/dashboard/documents/{blurry.pk}/").content.decode())
    assert "Hard to read: OCR's confidence in the words of its hardest page is 61 of 100." in page
    assert (
        "Hard to read" not in alice_client.get(f"/dashboard/documents/{sharp.pk}/").content.decode()
    )
