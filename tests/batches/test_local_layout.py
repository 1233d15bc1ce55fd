"""The offline engine reading word boxes: values beside, under and in the columns of labels."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from extraction.contract import ExtractionRequest
from samples.invoices import invoice
from tests.batches.test_local_engine import settled
from tests.support.placed_pdfs import layout_request, make_pdf, pdf_text


def extract(request: ExtractionRequest) -> dict[str, Any]:
    fields: dict[str, Any] = settled(request)["fields"]
    return fields


def values(request: ExtractionRequest) -> dict[str, Any]:
    return {name: cell["value"] for name, cell in extract(request).items()}


@pytest.mark.parametrize("language", ["en-US", "en-GB", "de-DE", "fr-FR"])
def test_a_header_table_gives_each_value_under_its_label(language: str) -> None:
    generated = invoice(11, language=language, layout="table")
    labels = generated.labels

    fields = extract(
        layout_request(generated.pdf, "invoice number\ndate:date\ndue date:date\ncustomer")
    )

    assert {name: cell["value"] for name, cell in fields.items()} == {
        "invoice number": labels.invoice_number,
        "date": labels.date,
        "due date": labels.due_date,
        "customer": labels.customer,
    }
    for cell in fields.values():
        assert cell["verified"] is True
        assert cell["page"] == 1
        assert labels.invoice_number in cell["quote"]  # the row of values under the labels


def test_a_totals_row_gives_the_amount_column_not_the_quantity() -> None:
    page = [
        (72, 740, "Description"),
        (300, 740, "Qty"),
        (360, 740, "Net"),
        (440, 740, "VAT"),
        (510, 740, "Gross"),
        (72, 720, "Annual maintenance"),
        (300, 720, "1"),
        (360, 720, "278.61"),
        (440, 720, "40.39"),
        (510, 720, "319.00"),
        (72, 690, "Total"),
        (300, 690, "1"),
        (360, 690, "278.61"),
        (440, 690, "40.39"),
        (510, 690, "319.00"),
    ]
    request = layout_request(make_pdf([page]), "total:number")

    total = extract(request)["total"]

    assert total["value"] == "319.00"
    assert total["quote"] == "Total 1 278.61 40.39 319.00"
    assert total["verified"] is True


def test_a_label_stacked_over_its_value_in_a_side_box_is_read() -> None:
    # The address on the left and a box of labels over values on the right share their rows, so
    # in the text each label is followed by a line of the address, not by its value.
    page = [
        (72, 740, "Northwind Traders Inc.", 16),
        (72, 700, "400 Pine Street"),
        (400, 700, "Invoice No."),
        (72, 686, "Seattle, WA 98101"),
        (400, 686, "NW-88231"),
        (72, 672, "United States"),
        (400, 660, "Invoice Date"),
        (400, 646, "March 12, 2024"),
        (400, 620, "Amount Due"),
        (400, 606, "$1,234.50"),
    ]
    request = layout_request(make_pdf([page]), "invoice number\ndate:date\ntotal:number")

    assert values(request) == {
        "invoice number": "NW-88231",
        "date": "2024-03-12",
        "total": "1234.50",
    }


def test_labels_and_values_side_by_side_in_two_columns_pair_up() -> None:
    page = [
        (72, 740, "Bill to"),
        (150, 740, "Contoso Ltd."),
        (360, 740, "Invoice No."),
        (450, 740, "C-1187"),
        (72, 722, "Ship to"),
        (150, 722, "Contoso Warehouse"),
        (360, 722, "Date"),
        (450, 722, "12/03/2024"),
    ]
    request = layout_request(make_pdf([page]), "customer\ninvoice number\ndate:date")

    assert values(request) == {
        "customer": "Contoso Ltd.",
        "invoice number": "C-1187",
        "date": "2024-03-12",
    }


def test_a_goods_tables_amount_column_is_not_the_document_total() -> None:
    page = [
        (72, 740, "Item"),
        (300, 740, "Qty"),
        (450, 740, "Amount"),
        (72, 722, "Printer paper"),
        (300, 722, "2"),
        (450, 722, "20.00"),
        (72, 704, "Toner"),
        (300, 704, "1"),
        (450, 704, "80.00"),
        (300, 670, "Amount due"),
        (450, 670, "100.00"),
    ]
    request = layout_request(make_pdf([page]), "amount:number")

    assert values(request) == {"amount": "100.00"}


def test_a_value_on_page_two_reports_page_two_and_quotes_its_row() -> None:
    pages = [
        [(72, 740, "Globex Services plc"), (72, 700, "Invoice number:"), (200, 700, "GS-117")],
        [
            (72, 740, "Travel expenses"),
            (400, 740, "£234.50"),
            (72, 700, "Amount payable"),
            (400, 700, "£1,234.50"),
        ],
    ]
    data = make_pdf(pages)
    request = layout_request(data, "invoice number\ntotal:number")

    fields = extract(request)

    assert fields["invoice number"]["page"] == 1
    assert fields["total"] == {
        "value": "1234.50",
        "currency": "GBP",
        "quote": "Amount payable £1,234.50",
        "page": 2,
        "status": "found",
        "source": "text",
        "verified": True,
        "review": None,
    }
    assert fields["total"]["quote"] in pdf_text(data).split("\f")[1]


def test_a_page_without_word_boxes_is_read_from_its_text() -> None:
    data = make_pdf([[(72, 740, "Invoice number: A-1")], [(72, 740, "Total: 12.50 EUR")]])
    request = layout_request(data, "invoice number\ntotal:number")
    only_first_page = ExtractionRequest(
        text=request.text,
        prompt="",
        fields=request.fields,
        filename="a.pdf",
        content_type="application/pdf",
        layout=request.layout[:1],
    )

    fields = extract(only_first_page)

    assert (fields["invoice number"]["value"], fields["invoice number"]["page"]) == ("A-1", 1)
    assert (fields["total"]["value"], fields["total"]["page"]) == ("12.50", 2)
    assert fields["total"]["quote"] == "Total: 12.50 EUR"


def test_bill_to_and_ship_to_side_by_side_give_the_billed_customer() -> None:
    page = [
        (72, 700, "Bill To"),
        (300, 700, "Ship To"),
        (72, 686, "Contoso Ltd."),
        (300, 686, "Contoso Warehouse"),
        (72, 672, "1 Microsoft Way"),
        (300, 672, "500 Dock Road"),
    ]

    assert values(layout_request(make_pdf([page]), "customer")) == {"customer": "Contoso Ltd."}


def test_a_value_beside_its_label_in_a_side_column_quotes_the_label_and_value() -> None:
    # A reader that gives the address column first: the row's words never stand together in
    # the text; the label and its value do.
    page = [
        (72, 700, "Architekturbüro Klein"),
        (380, 700, "Rechnungsnr.:"),
        (470, 700, "2024-117"),
        (72, 686, "Bahnhofstraße 3"),
        (380, 686, "Datum:"),
        (470, 686, "14.03.2024"),
    ]
    request = layout_request(make_pdf([page]), "invoice number\ndate:date")
    by_column = "Architekturbüro Klein\nBahnhofstraße 3\nRechnungsnr.: 2024-117\nDatum: 14.03.2024"

    fields = extract(replace(request, text=by_column))

    assert fields["invoice number"]["quote"] == "Rechnungsnr.: 2024-117"
    assert fields["date"]["quote"] == "Datum: 14.03.2024"
    assert all(cell["verified"] for cell in fields.values())


def test_values_of_two_columns_run_together_are_split_by_their_shapes() -> None:
    # The invoice date is so long that it touches the due date: one cell under two labels,
    # which the columns cannot split; the values' shapes can, in exactly one way.
    page = [
        (50, 700, "Nº Factura"),
        (170, 700, "Fecha"),
        (290, 700, "Fecha de vencimiento"),
        (50, 686, "F-2024-118"),
        (170, 686, "5 de noviembre de 2023"),
        (292, 686, "05/12/2023"),
    ]
    request = layout_request(make_pdf([page]), "invoice number\ndate:date\ndue date:date")

    assert values(request) == {
        "invoice number": "F-2024-118",
        "date": "2023-11-05",
        "due date": "2023-12-05",
    }


def test_one_row_of_values_under_its_labels_is_no_table_of_goods_when_a_table_follows() -> None:
    page = [
        (72, 740, "Invoice No."),
        (220, 740, "Date of issue"),
        (380, 740, "Due"),
        (72, 726, "INV 05563"),
        (220, 726, "03/10/2022"),
        (380, 726, "02/11/2022"),
        (72, 712, "Item"),
        (220, 712, "Quantity"),
        (300, 712, "Rate"),
        (380, 712, "Amount"),
        (72, 698, "Toner cartridge, black"),
        (220, 698, "1"),
        (300, 698, "55.94"),
        (380, 698, "55.94"),
        (72, 684, "Standing desk"),
        (220, 684, "20"),
        (300, 684, "25.32"),
        (380, 684, "506.40"),
    ]

    found = values(layout_request(make_pdf([page]), "invoice number\ndate:date"))

    assert found == {"invoice number": "INV 05563", "date": "2022-10-03"}
