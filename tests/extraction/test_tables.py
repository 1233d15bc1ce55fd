"""Table fields: the line items of an invoice, read from its word boxes or its e-invoice XML."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from extraction.contract import ExtractionRequest, PageLayout, Word
from extraction.einvoice import parse_xml, prefill, read_invoice
from extraction.fields import FieldSpec
from extraction.local.engine import LocalEngine
from samples.einvoices import cii_xml, ubl_xml
from samples.invoices import invoice
from tests.support.line_items import broken_item, expected_rows, with_two_line_descriptions
from tests.support.placed_pdfs import layout_request, make_pdf, pdf_text

LINE_ITEMS = FieldSpec(
    name="line items",
    type="table",
    description="",
    columns=[
        {"name": "description", "type": "string", "description": ""},
        {"name": "quantity", "type": "number", "description": ""},
        {"name": "unit price", "type": "number", "description": ""},
        {"name": "amount", "type": "number", "description": ""},
    ],
)


def table_of(pdf: bytes) -> dict[str, Any]:
    request = replace(layout_request(pdf, "total:number"), fields=[LINE_ITEMS])
    cell: dict[str, Any] = LocalEngine().extract(request).result["fields"]["line items"]
    return cell


def test_a_long_invoice_over_two_pages_gives_all_its_rows_in_order() -> None:
    generated = invoice(5, language="en-GB", lines=38, layout="table")
    assert generated.pages >= 2

    cell = table_of(generated.pdf)

    assert cell["value"] == expected_rows(generated)
    assert sum(Decimal(row["amount"]) for row in cell["value"]) == generated.labels.subtotal
    assert len(cell["rows"]) == 38
    assert {row["page"] for row in cell["rows"]} >= {1, 2}
    assert all(row["status"] == "found" for row in cell["rows"])
    assert cell["status"] == "found"


@pytest.mark.parametrize("language", ["de-DE", "fr-FR"])
def test_headers_in_other_languages_give_the_rows(language: str) -> None:
    generated = invoice(12, language=language, layout="table")

    cell = table_of(generated.pdf)

    assert cell["value"] == expected_rows(generated)
    for row, values in zip(cell["rows"], cell["value"], strict=True):
        assert values["description"].split()[0] in row["quote"]
        assert row["page"] == 1


def test_a_description_over_two_lines_is_one_row() -> None:
    pdf = make_pdf(
        [
            [
                (72, 740, "Bezeichnung"),
                (330, 740, "Menge"),
                (400, 740, "Einzelpreis"),
                (500, 740, "Betrag"),
                (72, 720, "Wartung der Heizungsanlage"),
                (330, 720, "2"),
                (400, 720, "120,00"),
                (500, 720, "240,00"),
                (72, 708, "inklusive Anfahrt"),
                (72, 690, "Filter"),
                (330, 690, "3"),
                (400, 690, "1.010,50"),
                (500, 690, "3.031,50"),
                (72, 660, "Zwischensumme"),
                (500, 660, "3.271,50"),
            ]
        ]
    )

    cell = table_of(pdf)

    assert cell["value"] == [
        {
            "description": "Wartung der Heizungsanlage inklusive Anfahrt",
            "quantity": "2",
            "unit price": "120.00",
            "amount": "240.00",
        },
        {"description": "Filter", "quantity": "3", "unit price": "1010.50", "amount": "3031.50"},
    ]
    assert "inklusive Anfahrt" in cell["rows"][0]["quote"]


@pytest.mark.parametrize(
    ("layout", "lines"),
    [("stacked", 30), ("letterhead", 20)],
    ids=["header-repeated", "sum-carried-forward"],
)
def test_a_row_that_runs_over_a_page_break_is_one_row_on_both_pages(
    layout: str, lines: int
) -> None:
    generated = with_two_line_descriptions(invoice(3, language="de-DE", layout=layout, lines=lines))
    broken = broken_item(generated, pdf_text(generated.pdf).split("\f"))

    cell = table_of(generated.pdf)

    assert cell["value"] == expected_rows(generated)
    pages = [row["pages"] for row in cell["rows"]]
    assert pages == [[1]] * broken + [[1, 2]] + [[2]] * (lines - broken - 1)
    assert cell["rows"][broken]["page"] == 1
    assert f"S{broken:02d}" in cell["rows"][broken]["quote"]
    assert all(row["status"] == "found" for row in cell["rows"])


def test_headers_in_other_words_give_their_columns_and_other_columns_stay_apart() -> None:
    # "Q.tà" and "Prezzo unit." are no header the vocabulary lists whole; the VAT column stands
    # between the unit price and the amount, and its numbers are no amount.
    pdf = make_pdf(
        [
            [
                (72, 740, "Articolo"),
                (300, 740, "Q.tà"),
                (360, 740, "Prezzo unit."),
                (440, 740, "IVA"),
                (500, 740, "Importo"),
                (72, 720, "Sedia da ufficio"),
                (310, 720, "2"),
                (370, 720, "76,48"),
                (440, 720, "33,65"),
                (500, 720, "152,96"),
                (72, 700, "Cavo di rete 5 m"),
                (310, 700, "10"),
                (370, 700, "5,72"),
                (440, 700, "12,58"),
                (500, 700, "57,20"),
                (330, 670, "Imponibile"),
                (500, 670, "210,16"),
            ]
        ]
    )

    cell = table_of(pdf)

    assert cell["value"] == [
        {
            "description": "Sedia da ufficio",
            "quantity": "2",
            "unit price": "76.48",
            "amount": "152.96",
        },
        {
            "description": "Cavo di rete 5 m",
            "quantity": "10",
            "unit price": "5.72",
            "amount": "57.20",
        },
    ]


def test_a_header_over_two_lines_and_an_item_code_column_give_the_right_columns() -> None:
    pdf = make_pdf(
        [
            [
                (72, 740, "Item"),
                (140, 740, "Description"),
                (330, 740, "Qty"),
                (400, 740, "Unit"),
                (500, 740, "Line"),
                (400, 728, "price"),
                (500, 728, "total"),
                (72, 708, "A-100"),
                (140, 708, "Desk lamp"),
                (335, 708, "2"),
                (400, 708, "24.50"),
                (500, 708, "49.00"),
                (72, 692, "B-220"),
                (140, 692, "Office chair"),
                (335, 692, "1"),
                (400, 692, "180.00"),
                (500, 692, "180.00"),
                (400, 662, "Subtotal"),
                (500, 662, "229.00"),
            ]
        ]
    )

    cell = table_of(pdf)

    assert cell["value"] == [
        {"description": "Desk lamp", "quantity": "2", "unit price": "24.50", "amount": "49.00"},
        {
            "description": "Office chair",
            "quantity": "1",
            "unit price": "180.00",
            "amount": "180.00",
        },
    ]


def test_numbers_set_in_the_middle_of_a_description_over_two_lines_take_both_lines() -> None:
    # As an HTML table sets them: the numbers half-way between the description's two lines,
    # on a row of their own.
    pdf = make_pdf(
        [
            [
                (72, 740, "Description"),
                (330, 740, "Qty"),
                (400, 740, "Price"),
                (500, 740, "Amount"),
                (72, 716, "Hosting, business plan"),
                (335, 710, "12"),
                (400, 710, "20.00"),
                (500, 710, "240.00"),
                (72, 704, "January to December"),
                (72, 686, "Domain example.com"),
                (335, 680, "1"),
                (400, 680, "15.00"),
                (500, 680, "15.00"),
                (72, 674, "renewal for one year"),
                (400, 650, "Total"),
                (500, 650, "255.00"),
            ]
        ]
    )

    cell = table_of(pdf)

    assert cell["value"] == [
        {
            "description": "Hosting, business plan January to December",
            "quantity": "12",
            "unit price": "20.00",
            "amount": "240.00",
        },
        {
            "description": "Domain example.com renewal for one year",
            "quantity": "1",
            "unit price": "15.00",
            "amount": "15.00",
        },
    ]
    assert cell["rows"][0]["quote"].splitlines() == [
        "Hosting, business plan",
        "12 20.00 240.00",
        "January to December",
    ]


def test_a_quantity_of_1_000_is_one_or_a_thousand_as_the_rows_money_says() -> None:
    pdf = make_pdf(
        [
            [
                (72, 740, "Bezeichnung"),
                (330, 740, "Menge"),
                (400, 740, "Einzelpreis"),
                (500, 740, "Betrag"),
                (72, 720, "Schrauben M6"),
                (330, 720, "1.000 Stk"),
                (400, 720, "0,10"),
                (500, 720, "100,00"),
                (72, 700, "Montage"),
                (330, 700, "1,000 Std"),
                (400, 700, "85,00"),
                (500, 700, "85,00"),
                (72, 680, "Versand"),
                (330, 680, "2,500 kg"),
                (400, 680, "4,00"),
                (500, 680, "9,00"),
                (72, 650, "Zwischensumme"),
                (500, 650, "194,00"),
            ]
        ]
    )

    cell = table_of(pdf)

    # The last row's arithmetic fails either way (a surcharge): its money's decimal comma says.
    assert [row["quantity"] for row in cell["value"]] == ["1000", "1", "2.5"]


def test_a_label_right_of_the_descriptions_ends_the_table_whatever_its_words() -> None:
    pdf = make_pdf(
        [
            [
                (72, 740, "Description"),
                (300, 740, "Qty"),
                (360, 740, "Price"),
                (500, 740, "Amount"),
                (72, 720, "Consulting"),
                (310, 720, "3"),
                (370, 720, "80.00"),
                (500, 720, "240.00"),
                (300, 690, "Amount payable by 30 June"),
                (500, 690, "240.00"),
                (72, 660, "Cleaning"),
                (310, 660, "1"),
                (370, 660, "50.00"),
                (500, 660, "50.00"),
            ]
        ]
    )

    cell = table_of(pdf)

    assert cell["value"] == [
        {"description": "Consulting", "quantity": "3", "unit price": "80.00", "amount": "240.00"}
    ]


@pytest.mark.parametrize("language", ["en-US", "de-DE", "fr-FR"])
def test_a_till_receipt_gives_its_items_without_a_header(language: str) -> None:
    generated = invoice(4, language=language, layout="receipt", lines=6)

    cell = table_of(generated.pdf)

    assert cell["value"] == expected_rows(generated)
    for row, values in zip(cell["rows"], cell["value"], strict=True):
        assert values["description"] in row["quote"]
        assert row["status"] == "found"


def test_a_receipt_line_whose_product_is_not_its_amount_is_no_item() -> None:
    pdf = make_pdf(
        [
            [
                (72, 740, "Coffee beans"),
                (80, 726, "2 x 7.50"),
                (300, 726, "15.00"),
                (72, 712, "Bus ticket 3 x 2.00 5.00"),
                (72, 698, "Paid 2 x 10.00"),
                (300, 698, "21.00"),
                (72, 684, "Milk"),
                (80, 670, "2 x 31.55"),
                (300, 670, "63 -10"),
                (72, 656, "Bread"),
                (80, 642, "2 x 31.55"),
                (300, 642, "63 -11"),
                (72, 628, "Total 78.10"),
            ]
        ]
    )

    cell = table_of(pdf)

    # "63 -10" is 63.10 with its point smudged, as 2 x 31.55 proves; "63 -11" is nothing.
    assert cell["value"] == [
        {"description": "Coffee beans", "quantity": "2", "unit price": "7.50", "amount": "15.00"},
        {"description": "Milk", "quantity": "2", "unit price": "31.55", "amount": "63.10"},
    ]


def askew_page(
    lines: list[list[tuple[float, str]]], slope: float, lower_right: float = 0.0
) -> ExtractionRequest:
    """An OCR'd page whose lines, 16 pt apart, drop `slope` points per point rightwards, and
    whose words right of x = 450 sit `lower_right` points lower: each line is cells (x, text), a
    letter 6 pt wide, a space 6 pt, a word 10 pt high."""
    words = []
    for number, line in enumerate(lines):
        for x, cell in line:
            for word in cell.split():
                width = 6.0 * len(word)
                top = 100 + 16 * number + slope * (x + width / 2) - 5
                top += lower_right if x > 450 else 0.0
                words.append(Word(text=word, x0=x, top=top, x1=x + width, bottom=top + 10))
                x += width + 6
    text = "\n".join(" ".join(text for _, text in line) for line in lines)
    page = PageLayout(number=1, width=600, height=800, words=tuple(words), ocr_confidence=90.0)
    return ExtractionRequest(
        text=text,
        prompt="",
        fields=[LINE_ITEMS],
        filename="scan.png",
        content_type="image/png",
        layout=(page,),
    )


SCANNED_TABLE = [
    [(50, "Northwind Traders Inc.")],
    [(50, "400 Pine Street, Seattle WA 98101")],
    [(50, "Invoice INV-2041 of 3 March 2025")],
    [(50, "Description"), (300, "Qty"), (380, "Price"), (500, "Amount")],
    [(50, "Desk lamp with a long arm"), (310, "2"), (380, "24.50"), (500, "49.00")],
    [(50, "Office chair"), (310, "1"), (380, "180.00"), (500, "180.00")],
    [(50, "Toner"), (310, "3"), (380, "60.00"), (500, "180.00")],
    [(300, "Total"), (500, "409.00")],
    [(50, "Payment within 30 days to the account below, quoting the invoice")],
]
SCANNED_ROWS = [
    {
        "description": "Desk lamp with a long arm",
        "quantity": "2",
        "unit price": "24.50",
        "amount": "49.00",
    },
    {"description": "Office chair", "quantity": "1", "unit price": "180.00", "amount": "180.00"},
    {"description": "Toner", "quantity": "3", "unit price": "60.00", "amount": "180.00"},
]


@pytest.mark.parametrize(
    ("slope", "lower_right"),
    [(0.04, 0.0), (0.0, 4.5)],
    ids=["lines-slope", "amounts-set-lower"],
)
def test_a_scanned_table_gives_each_row_whole(slope: float, lower_right: float) -> None:
    # Sloping over the width of the page, the lines drop more than their own height, so a row's
    # first words sit level with the next row's last ones; or the amounts' boxes sit lower
    # than the rest of their line.
    request = askew_page(SCANNED_TABLE, slope=slope, lower_right=lower_right)

    cell = LocalEngine().extract(request).result["fields"]["line items"]

    assert cell["value"] == SCANNED_ROWS
    assert [row["status"] for row in cell["rows"]] == ["found"] * 3


def test_a_scanned_quantity_whose_comma_ocr_lost_gets_it_back_where_the_row_proves_it() -> None:
    rows = [
        *SCANNED_TABLE[:4],
        [(50, "Toner cartridge"), (310, "125"), (380, "26.89"), (500, "336.13")],
        [(50, "Paper"), (310, "125"), (380, "2.00"), (500, "240.00")],
        [(300, "Total"), (500, "576.13")],
    ]

    cell = LocalEngine().extract(askew_page(rows, slope=0.0)).result["fields"]["line items"]

    assert [row["quantity"] for row in cell["value"]] == ["12.5", "125"]


def test_a_document_without_a_table_gives_no_rows_and_is_missing() -> None:
    pdf = make_pdf([[(72, 740, "Invoice number: 17"), (72, 720, "Total: 120.00")]])

    cell = table_of(pdf)

    assert cell["value"] == []
    assert cell["rows"] == []
    assert cell["status"] == "missing"
    assert cell["page"] is None


@pytest.mark.parametrize("write", [cii_xml, ubl_xml], ids=["cii", "ubl"])
def test_an_einvoice_gives_its_rows_from_the_xml(write) -> None:
    generated = invoice(8, language="de-DE", lines=4)
    parsed = read_invoice(parse_xml(write(generated.labels), max_bytes=2**20))
    request = ExtractionRequest(
        text=layout_request(generated.pdf, "total").text,
        prompt="",
        fields=[LINE_ITEMS],
        filename="invoice.pdf",
        content_type="application/pdf",
    )

    cell = prefill(request, parsed).cells["line items"]

    assert cell["value"] == expected_rows(generated)
    assert cell["source"] == "xml"
    for row, values in zip(cell["rows"], cell["value"], strict=True):
        assert row["quote"] is not None
        assert values["description"].split()[0] in row["quote"]
        assert row["pages"] == [row["page"]] == [1]
