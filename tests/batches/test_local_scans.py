"""The offline engine on OCRed pages: word boxes that hug the ink (shorter than a font's boxes,
with wider gaps between words) on a page scanned slightly askew, so that a line's last word
stands lower or higher than its first by more than the line's height."""

from __future__ import annotations

import math
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from extraction.contract import ExtractionRequest, Word
from extraction.local.engine import LocalEngine
from samples.drawing import draw
from samples.invoices import Layout
from samples.layouts import render
from tests.support.placed_pdfs import layout_request

FIELDS = "invoice number\ndate:date\ntotal:number\ncurrency\nsupplier"


def _ink(word: Word, slope: float) -> Word:
    """The box OCR gives a word: its ink, without the font's ascent and descent, a little
    narrower; on a page turned by `slope` (its rise per point to the right)."""
    height = word.bottom - word.top
    shift = word.x0 * slope
    return Word(
        text=word.text,
        x0=word.x0 + 0.05 * height,
        top=word.top + 0.25 * height + shift,
        x1=word.x1 - 0.05 * height,
        bottom=word.bottom - 0.1 * height + shift,
    )


def scanned(request: ExtractionRequest, degrees: float) -> ExtractionRequest:
    slope = math.tan(math.radians(degrees))
    pages = tuple(
        replace(page, words=tuple(_ink(word, slope) for word in page.words), ocr_confidence=91.0)
        for page in request.layout
    )
    return replace(request, layout=pages)


def values(request: ExtractionRequest) -> dict[str, Any]:
    fields = LocalEngine().extract(request).result["fields"]
    return {name: cell["value"] for name, cell in fields.items()}


@pytest.mark.parametrize("degrees", [-1.5, 1.2])
@pytest.mark.parametrize(
    ("locale", "layout"),
    [
        ("en-US", Layout.RECEIPT),
        ("de-DE", Layout.RECEIPT),
        ("fr-FR", Layout.RECEIPT),
        ("en-GB", Layout.TOTALS_ROW),
        ("es-ES", Layout.TOTALS_ROW),
        ("nl-NL", Layout.LETTERHEAD),
        ("it-IT", Layout.STACKED),
    ],
)
def test_a_page_scanned_askew_gives_the_values_of_its_born_digital_twin(
    locale: str, layout: Layout, degrees: float
) -> None:
    labels, style = draw(5, locale=locale, layout=layout, lines=4)
    born_digital = layout_request(render(labels, style)[0], FIELDS)

    found = values(scanned(born_digital, degrees))

    assert found == values(born_digital)
    assert found["invoice number"] == labels.invoice_number
    assert found["date"] == labels.date
    assert Decimal(str(found["total"])) == labels.total
    assert found["currency"] == labels.currency
