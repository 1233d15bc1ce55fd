"""Issue 17's "done when", in a real Chromium against a live server with a real django-q2 cluster:
a person reviews a ten-invoice batch from the keyboard through the review queue, fixes two values
and one line item while their boxes are outlined on the page, and downloads an XLSX whose amounts
are numbers that sum and whose reviewed values are the corrected ones; every page of the walk
passes axe-core."""

from __future__ import annotations

import io
from collections.abc import Iterator
from decimal import Decimal

import openpyxl
import pytest
from django.core.files.base import ContentFile

from batches import services
from batches.models import BatchProcess
from extraction.fields import parse_fields
from samples.invoices import Layout, invoices
from tests.browser.test_accessibility import shown_violations
from tests.support.cluster import Cluster, wait_until_finished

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# No invoice has a purchase order: its missing value puts every document in the review queue.
FIELDS = (
    "invoice number\ndate:date\ntotal:number\npurchase order\n"
    "line items: table(description; quantity:number; unit price:number; amount:number)"
)
INVOICES = {
    f"invoice-{n}.pdf": made
    for n, made in enumerate(invoices(10, seed=17, languages=["en-US"], layouts=[Layout.BLOCK]), 1)
}
# The document page lists the scalar fields in order, then the table and its rows.
LINE_ITEMS_ROW_1 = 5


@pytest.fixture
def cluster(settings, tmp_path) -> Iterator[Cluster]:
    settings.SHEAF_EXTRACTION_ENGINE = "local"
    running = Cluster(tmp_path / "cluster.log", SHEAF_EXTRACTION_ENGINE="local", SHEAF_WORKERS="2")
    running.start()
    try:
        yield running
    finally:
        running.stop()


def select(page, name: str, presses: str) -> None:
    """Move the selection with j/k; the value is then `name` and its quote is outlined on the
    page's picture, drawn on the server."""
    page.wait_for_function(
        "() => [...document.querySelectorAll('figure.page img')]"
        ".every((image) => image.complete && image.naturalWidth === 1100)"
    )
    for key in presses:
        page.keyboard.press(key)
    assert page.locator("li.value.active .value-name").inner_text() == name
    index = page.locator("li.value.active").get_attribute("data-value")
    assert page.locator(f'figure.page g.quote.active[data-value="{index}"] rect').count() >= 1


def type_over(page, text: str) -> None:
    page.keyboard.press("Control+a")
    page.keyboard.type(text)


def test_a_person_reviews_ten_invoices_from_the_keyboard_and_hands_on_a_clean_xlsx(
    page, live_server, sign_in, alice, cluster, shots
):
    from playwright.sync_api import expect

    batch = services.batch_create(
        user=alice,
        files=[ContentFile(made.pdf, name=name) for name, made in INVOICES.items()],
        prompt="The invoice's number, date, total, purchase order and line items.",
        fields=parse_fields(FIELDS),
    )
    assert wait_until_finished(batch, timeout=120, tick=lambda: None), cluster.log.read_text()[
        -3000:
    ]
    batch.refresh_from_db()
    assert batch.status == BatchProcess.Status.COMPLETED

    labels = {name: made.labels for name, made in INVOICES.items()}
    fixed_total = labels["invoice-3.pdf"].total + Decimal("10.00")
    fixed_number = labels["invoice-5.pdf"].invoice_number + "-B"
    item = labels["invoice-7.pdf"].line_items[1]
    fixed_amount = item.amount - Decimal("1.00")

    sign_in(alice)
    page.goto(f"{live_server.url}/dashboard/batches/{batch.pk}/")
    problems = shown_violations(page)
    page.get_by_role("link", name="Review", exact=True).click()

    for name in INVOICES:
        expect(page.locator("h1")).to_contain_text(name)
        assert "queue=review" in page.url
        if name == "invoice-3.pdf":
            select(page, "total", "jj")
            shots("invoice-3-total-outlined")
            page.keyboard.press("e")
            type_over(page, str(fixed_total))
            with page.expect_navigation():
                page.keyboard.press("Enter")
            expect(page.get_by_text("total: corrected.")).to_be_visible()
        elif name == "invoice-5.pdf":
            select(page, "invoice number", "jk")
            shots("invoice-5-number-outlined")
            page.keyboard.press("e")
            type_over(page, fixed_number)
            with page.expect_navigation():
                page.keyboard.press("Enter")
            expect(page.get_by_text("invoice number: corrected.")).to_be_visible()
        elif name == "invoice-7.pdf":
            select(page, "line items row 2", "j" * (LINE_ITEMS_ROW_1 + 1))
            shots("invoice-7-row-2-outlined")
            page.keyboard.press("e")  # the row's first cell, its description
            for _ in range(3):  # quantity, unit price, amount
                page.keyboard.press("Tab")
            type_over(page, str(fixed_amount))
            with page.expect_navigation():
                page.keyboard.press("Enter")
            expect(page.get_by_text("line items: row corrected.")).to_be_visible()
        problems += shown_violations(page)
        # a: confirm every value not yet reviewed and go on to the next document in the queue.
        with page.expect_navigation():
            page.keyboard.press("a")

    expect(page).to_have_url(f"{live_server.url}/dashboard/batches/{batch.pk}/")
    expect(page.get_by_text("The review queue is empty.")).to_be_visible()
    problems += shown_violations(page)
    shots("reviewed")
    assert not problems, "\n".join(problems)
    assert page.evaluate("window.cspViolations") == []

    with page.expect_download() as download:
        page.get_by_role("link", name="XLSX", exact=True).click()
    path = shots.folder / "results.xlsx"
    download.value.save_as(path)
    book = openpyxl.load_workbook(io.BytesIO(path.read_bytes()))

    header, *lines = book["Results"].iter_rows(values_only=True)
    results = {line[0]: dict(zip(header, line, strict=True)) for line in lines}
    assert list(results) == list(INVOICES)
    assert {row[f"{field} status"] for row in results.values() for field in ("total", "date")} == {
        "reviewed"
    }
    assert results["invoice-3.pdf"]["total"] == float(fixed_total)
    assert results["invoice-5.pdf"]["invoice number"] == fixed_number
    assert all(isinstance(row["total"], float | int) for row in results.values())
    expected_totals = sum(made.total for made in labels.values()) + Decimal("10.00")
    assert sum(row["total"] for row in results.values()) == pytest.approx(float(expected_totals))
    assert results["invoice-1.pdf"]["date"].date().isoformat() == labels["invoice-1.pdf"].date

    header, *lines = book["Items"].iter_rows(values_only=True)
    items = [dict(zip(header, line, strict=True)) for line in lines]
    assert len(items) == sum(len(made.line_items) for made in labels.values())
    assert all(
        isinstance(row[column], float | int)
        for row in items
        for column in ("quantity", "unit price", "amount")
    )
    seventh = [row for row in items if row["filename"] == "invoice-7.pdf"]
    assert (seventh[1]["description"], seventh[1]["amount"], seventh[1]["status"]) == (
        item.description,
        float(fixed_amount),
        "reviewed",
    )
    expected_amounts = sum(
        line.amount for made in labels.values() for line in made.line_items
    ) - Decimal("1.00")
    assert sum(row["amount"] for row in items) == pytest.approx(float(expected_amounts))

    summary = {row[0]: row[1] for row in book["Batch"].iter_rows(values_only=True) if row[0]}
    assert summary["Reviewed by a person"] == 10
