"""In a real Chromium: the upload page's field editor writes the fields textarea and lists every
problem the server's parser finds at once, and "try on one document" shows a PDF's values before
the batch is submitted; both under the page's Content-Security-Policy."""

from __future__ import annotations

import pytest

from batches.models import BatchProcess
from batches.tasks import drain
from tests.browser.test_accessibility import shown_violations
from tests.support.placed_pdfs import make_pdf, rows

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def upload_page(page, live_server, sign_in, alice):
    sign_in(alice)
    page.goto(f"{live_server.url}/dashboard/batch-upload/")
    return page


def add_field(page, name: str, type_: str = "string") -> None:
    page.get_by_role("button", name="Add field").click()
    row = page.locator("[data-field-row]").last
    row.get_by_label("Field name").fill(name)
    row.get_by_label("Type", exact=True).select_option(type_)


def test_the_field_editor_writes_the_text_and_lists_every_problem(upload_page, shots):
    page = upload_page
    problems = page.locator("[data-fields-problems]")
    assert problems.inner_text() == "No fields: they are inferred from the prompt."

    add_field(page, "total", "number")
    page.locator("[data-field-row]").last.get_by_label("Required").check()
    add_field(page, "Total")
    add_field(page, "items", "table")  # a table starts with one empty column
    problems.locator("li").nth(1).wait_for()
    assert problems.locator("li").all_inner_texts() == [
        "Field 'items': a table needs at least one column.",
        "Field 'Total' is listed twice.",
    ]
    assert problems.get_attribute("aria-live") == "polite"
    page.get_by_text("As text").click()
    fields = page.get_by_label("Fields", exact=True)
    assert fields.input_value() == "total!:number\nTotal\nitems: table()"
    shots("problems")
    assert shown_violations(page) == []

    page.locator("[data-field-row]").nth(1).get_by_label("Field name").fill("tax")
    page.get_by_label("Column name").fill("amount")
    page.get_by_label("Column type").select_option("number")
    page.get_by_text("3 fields, no problems.").wait_for()
    assert fields.input_value() == "total!:number\ntax\nitems: table(amount:number)"

    # Edited as text, the rows follow.
    fields.fill("invoice number\ndate:date -- issue date")
    page.get_by_text("2 fields, no problems.").wait_for()
    names = page.locator("[data-field-row] .field-row-main [data-part='name']")
    assert [names.nth(i).input_value() for i in range(names.count())] == ["invoice number", "date"]
    shots("fixed")
    assert page.evaluate("window.cspViolations") == []


def test_trying_one_document_shows_its_values_before_the_batch(upload_page, settings, shots):
    settings.SHEAF_EXTRACTION_ENGINE = "local"
    page = upload_page
    pdf = make_pdf(
        [
            rows(
                "ACME Supplies Ltd",
                ("Invoice number:", "INV-2024-0042"),
                ("Total:", "1,234.50 EUR"),
            )
        ]
    )
    page.set_input_files(
        "input[name=files]",
        files=[{"name": "acme.pdf", "mimeType": "application/pdf", "buffer": pdf}],
    )
    page.get_by_label("Prompt").fill("The invoice's number and total.")
    add_field(page, "invoice number")
    add_field(page, "total", "number")
    assert page.get_by_label("Document to try").input_value() == "0"
    page.get_by_role("button", name="Try on one document").click()
    page.locator("[data-trial-result]").get_by_text("acme.pdf: being extracted…").wait_for()
    assert "not a submission" in page.locator("[data-trial-result]").inner_text()

    drain(budget_seconds=30)
    result = page.locator("[data-trial-status='completed']")
    result.wait_for()
    text = result.inner_text()
    assert "INV-2024-0042" in text
    assert "1234.50" in text
    assert "This try counts as 1 of your 1,000 documents this month (1 used)" in text
    shots("tried")
    assert shown_violations(page) == []
    assert BatchProcess.objects.get().is_trial
    assert page.evaluate("window.cspViolations") == []
