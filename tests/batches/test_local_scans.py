"""The offline engine on OCRed pages: word boxes that hug the ink (shorter than a font's boxes,
with wider gaps between words) on a page scanned slightly askew, so that a line's last word
stands lower or higher than its first by more than the line's height."""

from __future__ import annotations

import math
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from extraction.contract import ExtractionRequest, PageLayout, Word
from extraction.fields import parse_fields
from extraction.local.engine import LocalEngine
from samples.drawing import draw
from samples.invoices import Layout
from samples.layouts import render
from tests.support.placed_pdfs import layout_request

FIELDS = "invoice number\ndate:date\ntotal:number\ncurrency\nsupplier"


def _pixel(points: float, dpi: int = 150) -> float:
    return round(points * dpi / 72) * 72 / dpi


def _ink(word: Word, slope: float) -> Word:
    """The box OCR gives a word: its ink, without the font's ascent and descent, a little
    narrower, in whole pixels; on a page turned by `slope` (its rise per point to the right)."""
    height = word.bottom - word.top
    shift = word.x0 * slope
    return Word(
        text=word.text,
        x0=_pixel(word.x0 + 0.05 * height),
        top=_pixel(word.top + 0.25 * height + shift),
        x1=_pixel(word.x1 - 0.05 * height),
        bottom=_pixel(word.bottom - 0.1 * height + shift),
    )


def scanned(request: ExtractionRequest, degrees: float) -> ExtractionRequest:
    slope = math.tan(math.radians(degrees))
    pages = tuple(
        replace(page, words=tuple(_ink(word, slope) for word in page.words), ocr_confidence=91.0)
        for page in request.layout
    )
    return replace(request, layout=pages)


def ocr_request(words: list[Word], text: str, fields: str) -> ExtractionRequest:
    """A photo's page as OCR gives it: its words' boxes and its text."""
    page = PageLayout(1, 595.0, 842.0, tuple(words), ocr_confidence=90.0)
    return ExtractionRequest(
        text=text,
        prompt="",
        fields=parse_fields(fields),
        filename="scan.png",
        content_type="image/png",
        layout=(page,),
    )


def values(request: ExtractionRequest) -> dict[str, Any]:
    fields = LocalEngine().extract(request).result["fields"]
    return {name: cell["value"] for name, cell in fields.items()}


@pytest.mark.parametrize("degrees", [-1.5, -0.6, 0.5, 1.2])
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


def test_a_wide_totals_row_of_a_page_turned_half_a_degree_stays_one_row() -> None:
    # Between two neighbouring words the turn is less than a pixel, across the row four points;
    # the ink of lower-case words sits lower than that of capitals and digits.
    slope = math.tan(math.radians(0.5))
    rows = [
        ["Fecha 15 de enero de 2022"],
        ["Vencimiento 16 de marzo de 2022"],
        ["C. de Coral Pujadas 486 Apt. 00"],
        ["02080 La Rioja"],
        ["Descripción", "Cant.", "Precio", "Total", "IVA", "Total"],
        ["Base USB-C", "3", "186,31 EUR", "558,93 EUR", "117,38 EUR", "676,31 EUR"],
        ["Gastos de envío", "10", "335,02 EUR", "3.350,20 EUR", "703,54 EUR", "4.053,74 EUR"],
        ["Total", "27", "6.374,68 EUR", "1.338,69 EUR", "7.713,37 EUR"],
    ]
    words = []
    for number, cells in enumerate(rows):
        x = 56.0
        for cell in cells:
            for text in cell.split():
                top = 250 + 17 * number + x * slope
                if text.isalpha() and text.islower():
                    top += 1.5  # ink of lower-case letters starts lower than a capital's
                right = x + 6.0 * len(text)
                box = (_pixel(x, 100), _pixel(top, 100), _pixel(right, 100), _pixel(top + 7, 100))
                words.append(Word(text, *box))
                x = right + 4.0
            x += 30.0
    request = ocr_request(words, "\n".join(" ".join(cells) for cells in rows), "total:number")

    assert values(request) == {"total": "7713.37"}


def test_a_totals_row_whose_boxes_take_in_the_tables_rule_gives_its_last_amount() -> None:
    # OCR boxed the amounts together with the rule above them, and garbled the first one.
    def word(text: str, x0: float, top: float, bottom: float) -> Word:
        return Word(text, x0, top, x0 + 6.0 * len(text), bottom)

    rows = [
        [("Descripción", 52), ("Cant.", 240), ("Importe", 340), ("IVA", 420), ("Total", 480)],
        [("Archivadores", 52), ("5", 244), ("1.984,65", 340), ("416,78", 420), ("2.401,43", 480)],
        [("Consultoría", 52), ("4", 244), ("3.998,12", 340), ("839,61", 420), ("4.837,73", 480)],
    ]
    words = [
        word(text, x, 300 + 17 * number, 307 + 17 * number)
        for number, row in enumerate(rows)
        for text, x in row
    ]
    words += [
        word("Total", 52, 345.5, 357.5),
        word("15", 244, 346.5, 353.5),
        word("—e234,24€", 347, 337.0, 359.0),
        word("1.309196", 418, 337.0, 359.0),
        word("7.543,43", 487, 337.0, 359.0),
        word("€", 540, 343.0, 355.0),
    ]
    text = "\n".join(" ".join(text for text, _ in row) for row in rows)
    request = ocr_request(words, text, "total:number\ncurrency")

    assert values(request) == {"total": "7543.43", "currency": "EUR"}


@pytest.mark.parametrize(
    ("written", "total"),
    [("GBP 2657 -03", "2657.03"), ("139. 20", "139.20"), ("7.713 ,37 €", "7713.37")],
)
def test_an_amount_ocr_broke_at_its_decimal_mark_is_read_whole(written: str, total: str) -> None:
    line = ["AMOUNT", "DUE", *written.split()]
    words, x = [], 56.0
    for text in line:
        gap = 60.0 if text == "DUE" else 4.0
        words.append(Word(text, x, 400.0, x + 6.0 * len(text), 407.0))
        x += 6.0 * len(text) + gap
    text = "Subtotal 2530.50\nVAT 5% 126.53\n" + " ".join(line)

    assert values(ocr_request(words, text, "total:number")) == {"total": total}
