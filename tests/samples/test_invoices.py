"""The example invoice generator: seeded, labelled truthfully, readable as the labels say."""

from __future__ import annotations

import io
import itertools
from decimal import Decimal

import pytest
from pypdf import PdfReader

from samples.invoices import CLASSIC_LAYOUTS, LANGUAGES, Layout, invoice, invoices
from tests.batches.test_local_engine import extract, pdf_text

COMBINATIONS = list(itertools.product(LANGUAGES, CLASSIC_LAYOUTS))


def test_the_same_seed_gives_the_same_bytes_and_labels_and_another_seed_does_not() -> None:
    first, again, other = invoice(11, language="de-DE"), invoice(11, language="de-DE"), invoice(12)

    assert (first.pdf, first.labels) == (again.pdf, again.labels)
    assert first.pdf != other.pdf
    assert first.labels.invoice_number != other.labels.invoice_number
    assert [made.pdf for made in invoices(5, seed=3)] == [made.pdf for made in invoices(5, seed=3)]


def test_line_amounts_subtotal_tax_and_total_add_up() -> None:
    for made in invoices(40, seed=7):
        labels = made.labels
        assert labels.line_items
        for item in labels.line_items:
            assert item.amount == item.quantity * item.unit_price
        assert labels.subtotal == sum(item.amount for item in labels.line_items)
        assert abs(labels.tax - labels.subtotal * labels.tax_rate / 100) <= Decimal("0.005")
        assert labels.total == labels.subtotal + labels.tax
        assert labels.date < labels.due_date


def test_a_run_covers_every_language_and_layout_with_distinct_numbers_and_names() -> None:
    made = invoices(len(COMBINATIONS) * 5, seed=1)

    assert {(m.labels.language, m.labels.layout) for m in made[: len(COMBINATIONS)]} == set(
        COMBINATIONS
    )
    assert len({m.labels.invoice_number for m in made}) == len(made)
    assert len({m.filename for m in made}) == len(made)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_offline_engine_reads_the_block_layout_back_to_its_labels(language: str) -> None:
    for seed in range(3):
        made = invoice(seed, language=language, layout=Layout.BLOCK)
        labels = made.labels

        fields = extract(
            pdf_text(made.pdf),
            "invoice number\ndate:date\ndue date:date\ncustomer\nsubtotal:number\ntax:number\n"
            "total:number",
        )["fields"]

        assert {name: field["value"] for name, field in fields.items()} == {
            "invoice number": labels.invoice_number,
            "date": labels.date,
            "due date": labels.due_date,
            "customer": labels.customer,
            "subtotal": str(labels.subtotal),
            "tax": str(labels.tax),
            "total": str(labels.total),
        }
        assert fields["total"]["currency"] == labels.currency


@pytest.mark.parametrize(("language", "layout"), COMBINATIONS)
def test_every_layout_shows_the_parties_and_the_line_items_row_by_row(
    language: str, layout: Layout
) -> None:
    made = invoice(5, language=language, layout=layout, lines=6)
    labels, words = made.labels, LANGUAGES[language]

    lines = pdf_text(made.pdf).splitlines()

    assert lines[0] == labels.supplier
    assert any(labels.invoice_number in line for line in lines)
    assert any(labels.customer in line for line in lines)
    rows = [
        " ".join(
            (
                item.description,
                words.quantity(item.quantity),
                words.number(item.unit_price),
                words.number(item.amount),
            )
        )
        for item in labels.line_items
    ]
    start = lines.index(rows[0])
    assert lines[start : start + len(rows)] == rows


def test_a_long_invoice_runs_over_pages_with_the_heading_and_page_number_on_each() -> None:
    made = invoice(2, language="en-GB", lines=70)

    pages = [page.extract_text() for page in PdfReader(io.BytesIO(made.pdf)).pages]

    assert made.pages == len(pages) >= 3
    for number, text in enumerate(pages, start=1):
        if number < len(pages):  # the totals may stand alone on the last page
            assert "Description Qty Unit price Amount" in text
        assert text.rstrip().endswith(f"Page {number} of {len(pages)}")
    shown = [
        line.rsplit(" ", 3)[0]
        for text in pages
        for line in text.splitlines()
        if line.rsplit(" ", 3)[0] in {item.description for item in made.labels.line_items}
    ]
    assert shown == [item.description for item in made.labels.line_items]
    assert "Total due" in pages[-1] and "Total due" not in pages[0]
