"""The development set: seeded, its labels true to what every document shows, its twins carrying
their original's labels, e-invoices that validate and say what the labels say."""

from __future__ import annotations

import io
import itertools
import json
import random
import xml.etree.ElementTree as ET
from decimal import Decimal

import pytest
from PIL import Image
from pypdf import PdfReader

from samples import devset
from samples.drawing import draw
from samples.einvoices import CBC, RAM, RSM, UDT, EInvoiceFormat, cii_xml, einvoice, ubl_xml
from samples.invoices import Layout, invoice
from samples.layouts import render
from samples.locales import LOCALES
from samples.scans import ScanFormat, scan
from samples.writing import Style

COMBINATIONS = list(itertools.product(LOCALES, Layout))


def pdf_text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def test_a_style_writes_amounts_dates_and_currencies_as_its_locale_does() -> None:
    german, french = Style.default(LOCALES["de-DE"]), Style.default(LOCALES["fr-FR"])
    english = Style.default(LOCALES["en-US"])
    accounting = Style(**{**vars(english), "negative": "({})"})
    sap = Style(**{**vars(german), "negative": "{}-", "currency_as_code": True})

    assert german.money(Decimal("1234.56"), "EUR") == "1.234,56 €"
    assert german.money(Decimal("-8.79"), "EUR") == "-8,79 €"
    assert sap.money(Decimal("-8.79"), "EUR") == "8,79- EUR"
    assert french.money(Decimal("1234.56"), "EUR") == "1 234,56 €"
    assert english.money(Decimal("1234.56"), "USD") == "$1,234.56"
    assert accounting.money(Decimal("-8.79"), "USD") == "($8.79)"
    assert german.date("2024-03-01") == "01.03.2024"
    assert Style(**{**vars(french), "date_format": "{d} {month} {yyyy}"}).date("2024-03-01") == (
        "1er mars 2024"
    )
    assert german.quantity(Decimal("1.50")) == "1,5"
    assert german.quantity(Decimal("3")) == "3"


@pytest.mark.parametrize(("locale", "layout"), COMBINATIONS)
def test_every_layout_shows_its_labels(locale: str, layout: Layout) -> None:
    labels, style = draw(7, locale=locale, layout=layout, lines=3)

    text = pdf_text(render(labels, style)[0])

    assert labels.invoice_number in text
    assert labels.supplier in text
    assert style.date(labels.date) in text
    for item in labels.line_items:  # a till receipt never repeats the currency on its lines
        assert item.description in text
        if layout is Layout.RECEIPT:
            assert style.amount(item.amount) in text
        else:
            assert style.cell(item.amount, labels.currency) in text
    if layout is Layout.TOTALS_ROW:  # the total is the last cell of the table's last row
        quantity = style.quantity(sum(item.quantity for item in labels.line_items))
        amounts = (labels.subtotal, labels.tax, labels.total)
        cells = " ".join(style.cell(value, labels.currency) for value in amounts)
        assert f"{style.word('total_row')} {quantity} {cells}" in text
    else:
        assert style.money(labels.total, labels.currency) in text
    if layout is not Layout.RECEIPT:
        assert labels.customer in text


def test_amounts_add_up_in_every_layout_and_credit_notes_are_negative() -> None:
    for n, (locale, layout) in enumerate(COMBINATIONS):
        labels, _ = draw(n, locale=locale, layout=layout, credit_note=n % 3 == 0)
        amounts = sum(item.amount for item in labels.line_items)
        for item in labels.line_items:
            assert abs(item.quantity * item.unit_price - item.amount) <= Decimal("0.005")
        if labels.prices_include_tax:
            assert labels.total == amounts == labels.subtotal + labels.tax
        else:
            assert labels.subtotal == amounts
            assert labels.total == labels.subtotal + labels.tax
        if labels.document_type == "credit_note":
            assert labels.total < 0 and labels.reference
            assert labels.reference != labels.invoice_number
        else:
            assert labels.total > 0 and not labels.reference
        assert labels.currency in {"EUR", "USD", "GBP", "CHF"}


def test_a_long_invoice_runs_over_pages_carries_its_sum_and_a_row_across_a_break() -> None:
    labels, style = draw(3, locale="de-DE", layout=Layout.LETTERHEAD, lines=70)

    pdf, pages = render(labels, style)

    pages_lines = [page.extract_text().splitlines() for page in PdfReader(io.BytesIO(pdf)).pages]
    assert pages == len(pages_lines) >= 2
    assert all(any(line.startswith("Übertrag") for line in lines) for lines in pages_lines)
    shown = [line for lines in pages_lines for line in lines]
    for item in labels.line_items:
        first, *more = item.description.splitlines()
        assert any(line.startswith(f"{first} ") for line in shown)
        assert all(line in shown for line in more)
    # A row whose article number was pushed onto the next page, under the sum brought forward.
    spanning = [
        lines[number + 1]
        for lines in pages_lines[1:]
        for number, line in enumerate(lines[:-1])
        if line.startswith("Übertrag") and lines[number + 1].startswith("#")
    ]
    assert spanning
    (entry,) = [e for e in devset.truth(labels)[1] if e["description"].endswith(spanning[0])]
    assert "\n" not in entry["description"]


def test_the_classic_generator_draws_the_new_layouts_too() -> None:
    made = invoice(4, language="fr-FR", layout=Layout.TOTALS_ROW)

    assert made.labels.invoice_number in pdf_text(made.pdf)


@pytest.mark.parametrize("form", list(ScanFormat))
def test_a_scan_is_an_image_of_its_original_with_no_text(form: ScanFormat) -> None:
    labels, style = draw(1, locale="nl-NL", layout=Layout.BLOCK, lines=2)
    pdf, _ = render(labels, style)

    made = scan(pdf, random.Random(5), form)

    assert made == scan(pdf, random.Random(5), form)
    if form is ScanFormat.PDF:
        reader = PdfReader(io.BytesIO(made))
        assert len(reader.pages) == 1 and not reader.pages[0].extract_text().strip()
    else:
        image = Image.open(io.BytesIO(made))
        assert image.format == {"jpeg": "JPEG", "png": "PNG", "tiff": "TIFF"}[form.value]
        assert image.mode == "L" and image.width > 1000


def test_cii_and_ubl_state_the_labels_and_credit_notes_their_own_type() -> None:
    labels, _ = draw(2, locale="it-IT", layout=Layout.BLOCK, lines=3, credit_note=True)

    cii = ET.fromstring(cii_xml(labels))  # noqa: S314 (our own XML)
    ubl = ET.fromstring(ubl_xml(labels))  # noqa: S314

    def cii_value(path: str) -> str | None:
        return cii.findtext(path.format(ram=f"{{{RAM}}}", rsm=f"{{{RSM}}}", udt=f"{{{UDT}}}"))

    assert cii_value("{rsm}ExchangedDocument/{ram}ID") == labels.invoice_number
    assert cii_value(".//{ram}TypeCode") == "381"
    assert cii_value(".//{ram}IssueDateTime/{udt}DateTimeString") == labels.date.replace("-", "")
    assert cii_value(".//{ram}GrandTotalAmount") == f"{-labels.total:.2f}"
    assert cii_value(".//{ram}InvoiceCurrencyCode") == labels.currency
    assert cii_value(".//{ram}SellerTradeParty/{ram}Name") == labels.supplier
    assert len(cii.findall(f".//{{{RAM}}}IncludedSupplyChainTradeLineItem")) == 3
    assert ubl.tag.endswith("}CreditNote")
    assert ubl.findtext(f"{{{CBC}}}ID") == labels.invoice_number
    assert ubl.findtext(f".//{{{CBC}}}PayableAmount") == f"{-labels.total:.2f}"


@pytest.mark.parametrize("form", list(EInvoiceFormat))
def test_e_invoices_pass_their_schema_and_are_the_same_for_the_same_seed(
    form: EInvoiceFormat,
) -> None:
    labels, style = draw(9, locale="de-DE", layout=Layout.TABLE, lines=2)
    pdf, _ = render(labels, style)

    made = einvoice(pdf, labels, form)  # raises when the schema check fails

    assert made == einvoice(pdf, labels, form)
    if form is EInvoiceFormat.FACTURX:
        reader = PdfReader(io.BytesIO(made))
        assert list(reader.attachments) == ["factur-x.xml"]
        assert labels.invoice_number in reader.pages[0].extract_text()


def test_the_command_writes_the_files_and_their_labels(tmp_path, capsys) -> None:
    assert devset.main(["--out", str(tmp_path), "--count", "5", "--seed", "3"]) == 0

    labels = json.loads((tmp_path / "labels.json").read_text())
    entries = labels["documents"]
    assert len(entries) == 5 and labels["fields"][:5] == list(devset.FIELDS[:5])
    assert {entry["kind"] for entry in entries} == {"born-digital", "scan", "einvoice"}
    for entry in entries:
        assert (tmp_path / entry["file"]).is_file()
        assert set(entry["fields"]) == set(devset.FIELDS)
        if entry["twin_of"]:
            original = next(e for e in entries if e["file"] == entry["twin_of"])
            assert (entry["fields"], entry["line_items"]) == (
                original["fields"],
                original["line_items"],
            )
    assert "wrote 5 documents" in capsys.readouterr().out
    again = [(d.file, d.data) for d in devset.documents(5, seed=3)]
    assert again == [(e["file"], (tmp_path / e["file"]).read_bytes()) for e in entries]
