"""Table fields: the line items of an invoice, read from its word boxes or its e-invoice XML."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from extraction.contract import ExtractionRequest
from extraction.einvoice import parse_xml, prefill, read_invoice
from extraction.fields import FieldSpec
from extraction.local.engine import LocalEngine
from samples.einvoices import cii_xml, ubl_xml
from samples.invoices import GeneratedInvoice, invoice
from tests.support.placed_pdfs import layout_request, make_pdf

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


def expected_rows(generated: GeneratedInvoice) -> list[dict[str, str]]:
    return [
        {
            "description": " ".join(item.description.split()),
            "quantity": f"{item.quantity.normalize():f}",
            "unit price": f"{item.unit_price:.2f}",
            "amount": f"{item.amount:.2f}",
        }
        for item in generated.labels.line_items
    ]


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
