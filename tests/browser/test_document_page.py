"""In a real Chromium: a person reviews a PDF's values from the keyboard on its document page,
sees the selected value's box on the page picture, confirms one, corrects another, and the CSV
carries the correction; the page runs under its Content-Security-Policy."""

from __future__ import annotations

import csv
import io

import openpyxl
import pytest

from documents.models import Document
from extraction.fields import parse_fields
from tests.browser.test_accessibility import shown_violations
from tests.factories import BatchFactory, DocumentFactory
from tests.support.placed_pdfs import forget_word_boxes

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_person_reviews_a_pdf_from_the_keyboard(
    page, live_server, sign_in, alice, invoice_document, shots
):
    document = invoice_document
    client = sign_in(alice)

    page.goto(f"{live_server.url}/dashboard/batches/{document.batch_id}/")
    page.get_by_role("link", name="acme.pdf", exact=True).first.click()
    page.wait_for_load_state("networkidle")
    assert page.url.endswith(f"/dashboard/documents/{document.pk}/")
    assert page.locator("figure.page img").evaluate("image => image.naturalWidth") == 1100

    # The first value is selected: its box on the page is outlined.
    assert page.locator("li.value.active .value-name").inner_text() == "invoice number"
    assert page.locator('g.quote.active[data-value="0"] rect').count() >= 1
    shots("selected")

    page.keyboard.press("j")
    page.keyboard.press("j")
    assert page.locator("li.value.active .value-name").inner_text() == "total"
    assert page.locator('g.quote.active[data-value="2"]').count() == 1
    assert page.locator('g.quote.active[data-value="0"]').count() == 0

    # e edits the selected value; Enter saves the correction.
    page.keyboard.press("e")
    page.keyboard.press("Control+a")
    page.keyboard.type("1243.50")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.get_by_text("total: corrected.").is_visible()
    total = page.locator("li.value", has=page.locator(".value-name", has_text="total"))
    assert "Reviewed by alice@example.com; extracted: 1234.50" in total.inner_text()

    # c confirms the selected value (the first one after the page loads again).
    with page.expect_navigation():
        page.keyboard.press("c")
    assert page.get_by_text("invoice number: confirmed.").is_visible()
    shots("reviewed")
    assert page.evaluate("window.cspViolations") == []

    export = client.get(f"/dashboard/batches/{document.batch_id}/export/csv/").content
    (row,) = csv.DictReader(io.StringIO(export.decode("utf-8-sig")))
    assert (row["total"], row["total status"], row["invoice number status"]) == (
        "1243.50",
        "reviewed",
        "reviewed",
    )


def test_a_quote_with_no_box_on_the_picture_is_marked_in_the_pages_text(
    page, live_server, sign_in, alice, invoice_document
):
    forget_word_boxes(invoice_document, "Total:", "1,234.50")
    sign_in(alice)
    page.goto(f"{live_server.url}/dashboard/documents/{invoice_document.pk}/")

    page.keyboard.press("j")
    page.keyboard.press("j")

    assert page.locator("li.value.active .value-name").inner_text() == "total"
    assert page.locator('g.quote[data-value="2"]').count() == 0
    marked = page.locator("mark.quote.active")
    assert marked.inner_text() == "Total: 1,234.50 EUR"
    assert marked.is_visible()
    assert shown_violations(page) == []


def test_a_person_fixes_a_line_item_from_the_keyboard_and_the_xlsx_sums(
    page, live_server, sign_in, alice, shots
):
    text = "Invoice INV-9\nWidgets 10 1,000.00\nDelivry 1 23.50\nTotal 1,023.50\n"
    batch = BatchFactory(
        user=alice,
        fields=parse_fields(
            "invoice number\nline items: table(description; quantity:number; amount:number)"
        ),
    )
    rows = [
        {"description": "Widgets", "quantity": "10", "amount": "1000.00"},
        {"description": "Delivry", "quantity": "1", "amount": "25.30"},
    ]
    proofs = [
        {"quote": "Widgets 10 1,000.00", "page": None, "pages": [], "status": "found"},
        {"quote": "Delivry 1 23.50", "page": None, "pages": [], "status": "unverified"},
    ]
    document = DocumentFactory(
        batch=batch,
        status=Document.Status.COMPLETED,
        text=text,
        result={
            "engine": "local",
            "model": None,
            "fields": {
                "invoice number": {"value": "INV-9", "quote": "INV-9", "status": "found"},
                "line items": {"value": rows, "rows": proofs, "status": "found"},
            },
        },
    )
    client = sign_in(alice)
    page.goto(f"{live_server.url}/dashboard/documents/{document.pk}/")

    # j j j: invoice number, the table, its second row; its quote is marked in the text.
    for _ in range(3):
        page.keyboard.press("j")
    assert page.locator("li.value.active .value-name").inner_text() == "line items row 2"
    assert page.locator("mark.quote.active").inner_text() == "Delivry 1 23.50"
    page.keyboard.press("e")
    page.keyboard.press("Control+a")
    page.keyboard.type("Delivery")
    amount = page.get_by_label("amount of line items row 2")
    amount.fill("23.50")
    with page.expect_navigation():
        amount.press("Enter")
    assert page.get_by_text("line items: row corrected.").is_visible()
    shots("row-corrected")
    assert page.evaluate("window.cspViolations") == []

    book = openpyxl.load_workbook(
        io.BytesIO(client.get(f"/dashboard/batches/{batch.pk}/export/xlsx/").content)
    )
    header, *lines = book["Items"].iter_rows(values_only=True)
    items = [dict(zip(header, line, strict=True)) for line in lines]
    assert [item["description"] for item in items] == ["Widgets", "Delivery"]
    assert sum(item["amount"] for item in items) == 1023.5
    assert items[1]["status"] == "reviewed"
