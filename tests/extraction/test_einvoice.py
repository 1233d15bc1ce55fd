"""E-invoice XML read exactly (extraction/einvoice): the business terms of every syntax, the fields
they fill and how those are quoted, and XML that must be refused."""

from __future__ import annotations

import time
from dataclasses import replace
from decimal import Decimal

import pytest

from extraction.contract import ExtractionRequest
from extraction.einvoice import (
    BT,
    XML_CONTENT_TYPE,
    XmlProblem,
    invoice_text,
    parse_xml,
    prefill,
    read_invoice,
    stored_invoice,
    upload_root,
)
from extraction.einvoice.terms import LINES, target_of
from extraction.fields import FieldSpec, parse_fields
from samples.drawing import draw
from samples.einvoices import cii_xml, ubl_xml
from samples.invoices import InvoiceLabels, Layout
from tests.support.einvoices import BILLION_LAUGHS, EXTERNAL_ENTITY, ZUGFERD1

MB = 2**20


def labels(*, locale: str = "de-DE", credit_note: bool = False, seed: int = 3) -> InvoiceLabels:
    drawn, _style = draw(seed, locale=locale, layout=Layout.BLOCK, credit_note=credit_note)
    return drawn


def money(value: Decimal) -> str:
    return f"{value:.2f}"


# ---- the business terms -----------------------------------------------------------------------


@pytest.mark.parametrize("credit_note", [False, True], ids=["invoice", "credit-note"])
@pytest.mark.parametrize("write", [cii_xml, ubl_xml], ids=["cii", "ubl"])
def test_every_business_term_is_read_as_the_xml_states_it(write, credit_note) -> None:
    truth = labels(credit_note=credit_note)

    invoice = read_invoice(parse_xml(write(truth), max_bytes=MB))

    terms = {term: value.value for term, value in invoice.terms.items()}
    assert terms[BT.NUMBER] == truth.invoice_number
    assert terms[BT.ISSUE_DATE] == truth.date
    assert terms[BT.DUE_DATE] == truth.due_date
    assert terms[BT.CURRENCY] == truth.currency
    assert terms[BT.SELLER_NAME] == truth.supplier
    assert terms[BT.SELLER_VAT_ID] == truth.supplier_vat
    assert terms[BT.BUYER_NAME] == truth.customer
    assert terms[BT.BUYER_VAT_ID] == truth.customer_vat
    # The labels' amounts are negative on a credit note, as Sheaf gives them; the XML's positive.
    assert terms[BT.NET_TOTAL] == money(truth.subtotal)
    assert terms[BT.TAX_TOTAL] == money(truth.tax)
    assert terms[BT.GRAND_TOTAL] == money(truth.total)
    assert terms[BT.AMOUNT_DUE] == money(truth.total)
    assert invoice.terms[BT.GRAND_TOTAL].text == money(abs(truth.total))
    assert invoice.terms[BT.GRAND_TOTAL].currency == truth.currency
    assert invoice.credit_note is credit_note
    assert terms[BT.TYPE_CODE] == ("381" if credit_note else "380")
    assert (BT.PRECEDING_INVOICE in terms) is credit_note


@pytest.mark.parametrize("write", [cii_xml, ubl_xml], ids=["cii", "ubl"])
def test_invoice_lines_are_read_with_their_quantities_prices_and_amounts(write) -> None:
    truth = labels(credit_note=True, seed=8)

    lines = read_invoice(parse_xml(write(truth), max_bytes=MB)).lines

    assert [
        (line.description and line.description.value, line.quantity and line.quantity.value)
        for line in lines
    ] == [
        (" ".join(item.description.split()), f"{item.quantity.normalize():f}")
        for item in truth.line_items
    ]
    assert [(line.unit_price and line.unit_price.value) for line in lines] == [
        money(item.unit_price) for item in truth.line_items
    ]
    assert [(line.amount and line.amount.value) for line in lines] == [
        money(item.amount) for item in truth.line_items
    ]


def test_a_zugferd_1_invoice_is_read_from_its_own_element_names() -> None:
    invoice = read_invoice(parse_xml(ZUGFERD1, max_bytes=MB))

    terms = {term: value.value for term, value in invoice.terms.items()}
    assert terms == {
        BT.NUMBER: "471102",
        BT.ISSUE_DATE: "2013-03-05",
        BT.TYPE_CODE: "380",
        BT.CURRENCY: "EUR",
        BT.DUE_DATE: "2013-04-04",
        BT.PAYMENT_TERMS: "Zahlbar innerhalb 30 Tagen netto bis 04.04.2013",
        BT.SELLER_NAME: "Lieferant GmbH",
        BT.SELLER_VAT_ID: "DE123456789",  # the VA registration, not the FC tax number
        BT.BUYER_NAME: "Kunden AG Mitte",
        BT.NET_TOTAL: "198.00",
        BT.TAX_TOTAL: "37.62",
        BT.GRAND_TOTAL: "235.62",
        BT.AMOUNT_DUE: "235.62",
    }
    [line] = invoice.lines
    assert line.description is not None and line.description.value == "Trennblätter A4"
    assert (line.quantity and line.quantity.value, line.unit_price and line.unit_price.value) == (
        "20",
        "9.9000",
    )


def test_a_term_that_does_not_parse_is_left_for_the_engine() -> None:
    xml = cii_xml(labels()).replace(b"<ram:GrandTotalAmount>", b"<ram:GrandTotalAmount>about ")

    invoice = read_invoice(parse_xml(xml, max_bytes=MB))

    assert BT.GRAND_TOTAL not in invoice.terms
    assert BT.NET_TOTAL in invoice.terms


# ---- which field names which term -------------------------------------------------------------


def spec(name: str, type_: str = "string", description: str = "") -> FieldSpec:
    return FieldSpec(name=name, type=type_, description=description)


@pytest.mark.parametrize(
    ("name", "term"),
    [
        ("invoice number", BT.NUMBER),
        ("Invoice No.", BT.NUMBER),
        ("Rechnungsnummer", BT.NUMBER),
        ("numéro de facture", BT.NUMBER),
        ("Factuurnummer", BT.NUMBER),
        ("número de factura", BT.NUMBER),
        ("numero fattura", BT.NUMBER),
        ("date", BT.ISSUE_DATE),
        ("Rechnungsdatum", BT.ISSUE_DATE),
        ("due date", BT.DUE_DATE),
        ("Fälligkeitsdatum", BT.DUE_DATE),
        ("currency", BT.CURRENCY),
        ("Währung", BT.CURRENCY),
        ("supplier", BT.SELLER_NAME),
        ("seller", BT.SELLER_NAME),
        ("vendor", BT.SELLER_NAME),
        ("Lieferant", BT.SELLER_NAME),
        ("fournisseur", BT.SELLER_NAME),
        ("buyer", BT.BUYER_NAME),
        ("customer", BT.BUYER_NAME),
        ("VAT id", BT.SELLER_VAT_ID),
        ("supplier VAT id", BT.SELLER_VAT_ID),
        ("USt-IdNr.", BT.SELLER_VAT_ID),
        ("partita IVA", BT.SELLER_VAT_ID),
        ("buyer VAT id", BT.BUYER_VAT_ID),
        ("net", BT.NET_TOTAL),
        ("total excl. VAT", BT.NET_TOTAL),
        ("Montant HT", BT.NET_TOTAL),
        ("tax", BT.TAX_TOTAL),
        ("MwSt", BT.TAX_TOTAL),
        ("total", BT.GRAND_TOTAL),
        ("total with currency", BT.GRAND_TOTAL),
        ("Gesamtbetrag", BT.GRAND_TOTAL),
        ("totaal", BT.GRAND_TOTAL),
        ("amount due", BT.AMOUNT_DUE),
        ("payment terms", BT.PAYMENT_TERMS),
    ],
)
def test_a_field_names_its_business_term_in_any_of_six_languages(name: str, term: BT) -> None:
    assert target_of(spec(name)) == term


def test_a_field_that_names_no_term_or_cannot_hold_its_value_is_left_for_the_engine() -> None:
    assert target_of(spec("delivery address")) is None
    assert target_of(spec("total number of pages")) is None  # no near matches: exact or nothing
    assert target_of(spec("invoice number", "number")) is None
    assert target_of(spec("total", "date")) is None
    assert target_of(spec("ref", description="invoice number")) == BT.NUMBER
    assert target_of(spec("line items", "list")) == LINES
    assert target_of(spec("line items")) is None


# ---- filling fields ---------------------------------------------------------------------------

FIELDS = "invoice number, date:date, total:number, currency, supplier, payment terms"


def request(text: str, *, content_type: str = "application/pdf") -> ExtractionRequest:
    return ExtractionRequest(
        text=text, prompt="", fields=parse_fields(FIELDS), filename="x", content_type=content_type
    )


def test_the_xml_fills_the_fields_it_carries_and_leaves_the_rest_to_the_engine() -> None:
    truth = labels(credit_note=True)
    invoice = read_invoice(parse_xml(cii_xml(truth), max_bytes=MB))

    xml_first = prefill(request(""), invoice)

    values = {name: cell["value"] for name, cell in xml_first.cells.items()}
    assert values == {
        "invoice number": truth.invoice_number,
        "date": truth.date,
        "total": money(truth.total),
        "currency": truth.currency,
        "supplier": truth.supplier,
    }
    assert xml_first.cells["total"]["currency"] == truth.currency
    assert all(cell["source"] == "xml" for cell in xml_first.cells.values())
    assert [field["name"] for field in xml_first.rest.fields] == ["payment terms"]


def test_a_value_is_quoted_from_the_line_that_prints_it_on_its_page() -> None:
    truth = labels()
    invoice = read_invoice(parse_xml(ubl_xml(truth), max_bytes=MB))
    day, month, year = truth.date[8:], truth.date[5:7], truth.date[:4]
    total = f"{truth.total:,.2f}".replace(",", " ").replace(".", ",")
    text = (
        f"{truth.supplier}\nRechnung\f"
        f"Rechnungsnummer: {truth.invoice_number}\n"
        f"Rechnungsdatum: {day}.{month}.{year}\n"
        f"Zwischensumme {total} €\n"  # the same amount on a line without the term's label
        f"Gesamtbetrag: {total} €\n"
    )

    cells = prefill(request(text), invoice).cells

    assert (cells["invoice number"]["quote"], cells["invoice number"]["page"]) == (
        f"Rechnungsnummer: {truth.invoice_number}",
        2,
    )
    assert cells["date"]["quote"] == f"Rechnungsdatum: {day}.{month}.{year}"
    assert cells["total"]["quote"] == f"Gesamtbetrag: {total} €"
    assert (cells["supplier"]["quote"], cells["supplier"]["page"]) == (truth.supplier, 1)
    assert cells["currency"]["page"] == 2  # printed as its symbol


def test_a_value_the_page_does_not_print_is_quoted_from_the_xml_without_a_page() -> None:
    truth = labels()
    invoice = read_invoice(parse_xml(cii_xml(truth), max_bytes=MB))

    for xml_first in (
        prefill(request("Nothing useful here"), invoice),
        prefill(request("Seller: anything", content_type=XML_CONTENT_TYPE), invoice),
    ):
        cell = xml_first.cells["date"]
        assert (cell["value"], cell["quote"], cell["page"]) == (
            truth.date,
            truth.date.replace("-", ""),  # CII writes dates as CCYYMMDD
            None,
        )
        assert cell["verified"] is True


def test_the_document_type_is_given_in_words_and_quoted_by_its_code() -> None:
    invoice = read_invoice(parse_xml(cii_xml(labels(credit_note=True)), max_bytes=MB))

    xml_first = prefill(replace(request("Total 1.381,00"), fields=[spec("document type")]), invoice)
    cell = xml_first.cells["document type"]
    assert (cell["value"], cell["quote"], cell["page"]) == ("credit note", "381", None)


def test_the_merged_result_keeps_the_batch_order_and_says_where_each_value_came_from() -> None:
    truth = labels()
    invoice = read_invoice(parse_xml(cii_xml(truth), max_bytes=MB))
    xml_first = prefill(request(""), invoice)
    engine_cell = {"value": "30 days", "quote": "Terms: 30 days", "page": 1, "verified": True}

    merged = xml_first.result(
        {"engine": "local", "model": None, "fields": {"payment terms": engine_cell}},
        engine="local",
    )
    alone = xml_first.result(None, engine="anthropic")

    assert list(merged["fields"]) == [field["name"] for field in parse_fields(FIELDS)]
    assert merged["fields"]["payment terms"]["value"] == "30 days"
    assert merged["fields"]["supplier"]["source"] == "xml"
    assert (alone["engine"], alone["model"]) == ("anthropic", None)
    assert alone["fields"]["payment terms"] == {
        "value": None,
        "quote": None,
        "page": None,
        "verified": False,
        "source": "text",
    }


def test_an_uploaded_invoice_reads_as_labelled_lines_and_is_kept_for_later_runs() -> None:
    truth = labels()
    root = parse_xml(ubl_xml(truth), max_bytes=MB)

    text, cut = invoice_text(root, max_chars=100_000)

    assert not cut
    assert f"Invoice ID: {truth.invoice_number}" in text.splitlines()
    assert f"Party Legal Entity Registration Name: {truth.supplier}" in text.splitlines()
    from extraction.einvoice import kept_xml

    assert stored_invoice(kept_xml(root)).terms == read_invoice(root).terms


# ---- refused XML ------------------------------------------------------------------------------


def _utf16(xml: bytes) -> bytes:
    declared = xml.replace(b'<?xml version="1.0"?>', b'<?xml version="1.0" encoding="UTF-16"?>')
    return declared.decode().encode("utf-16-le")  # and no byte-order mark


@pytest.mark.parametrize(
    "hostile",
    [BILLION_LAUGHS, EXTERNAL_ENTITY, _utf16(BILLION_LAUGHS)],
    ids=["billion-laughs", "external-entity", "billion-laughs-utf-16"],
)
def test_xml_that_declares_entities_is_refused_without_expanding_them(hostile: bytes) -> None:
    started = time.process_time()

    with pytest.raises(XmlProblem) as refused:
        parse_xml(hostile, max_bytes=MB)

    assert refused.value.code == "malformed"
    assert "DTD" in refused.value.reason
    assert "root:" not in refused.value.reason  # /etc/passwd was not read into the message
    assert time.process_time() - started < 1  # a billion laughs was never laughed


def test_xml_past_the_size_depth_or_element_limits_is_too_large() -> None:
    from extraction.einvoice.parsing import MAX_DEPTH, MAX_ELEMENTS

    deep = b"<a>" * (MAX_DEPTH + 1) + b"</a>" * (MAX_DEPTH + 1)
    wide = b"<a>" + b"<b/>" * MAX_ELEMENTS + b"</a>"
    for data, limit, reason in (
        (cii_xml(labels()), 1000, "of XML and the limit is"),
        (deep, MB, f"nest more than {MAX_DEPTH} deep"),
        (wide, 10 * MB, f"more than {MAX_ELEMENTS:,} elements"),
    ):
        with pytest.raises(XmlProblem) as refused:
            parse_xml(data, max_bytes=limit)
        assert (refused.value.code, reason in refused.value.reason) == ("too_large", True)


def test_xml_that_is_not_well_formed_or_not_an_invoice_is_refused_as_such() -> None:
    with pytest.raises(XmlProblem) as broken:
        parse_xml(b"<Invoice><ID>1</Invoice>", max_bytes=MB)
    with pytest.raises(XmlProblem) as other:
        read_invoice(parse_xml(b"<catalog><book/></catalog>", max_bytes=MB))

    assert broken.value.code == "malformed"
    assert broken.value.reason.startswith("it is not well-formed XML (Opening and ending tag")
    assert "<string>" not in broken.value.reason
    assert other.value.code == "unsupported_type"


def test_an_uploads_root_element_is_found_from_its_first_chunks() -> None:
    ubl = ubl_xml(labels())

    assert upload_root(iter([ubl[:40], ubl[40:]])) == (
        "{urn:oasis:names:specification:ubl:schema:xsd:Invoice-2}Invoice",
        "",
    )
    assert upload_root(iter([b"<?xml version='1.0'?><catalog>"])) == ("catalog", "")
    assert upload_root(iter([b"Invoice, 12.00 EUR"]))[0] is None
    assert upload_root(iter([b"<!-- " + b"x" * 70_000]))[1] == (
        "no XML root element was found in its first 64 KB"
    )
