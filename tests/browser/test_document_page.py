"""In a real Chromium: a person reviews a PDF's values from the keyboard on its document page,
sees the selected value's box on the page picture, confirms one, corrects another, and the CSV
carries the correction; the page runs under its Content-Security-Policy."""

from __future__ import annotations

import csv
import io

import pytest

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
