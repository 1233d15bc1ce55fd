"""A file is a PDF only when its header comes first (documents/uploads.py): HTML or a ZIP that
carry ``%PDF-`` somewhere in their first kilobyte are refused, a BOM or whitespace before the
header is not. An image is a PNG, JPEG or TIFF when its magic bytes say so."""

from __future__ import annotations

import dataclasses
import html
import io
import random
import re
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from batches.models import BatchProcess
from documents.models import Document
from samples.drawing import draw
from samples.einvoices import cii_xml, ubl_xml
from samples.invoices import InvoiceLabels, Layout
from samples.layouts import render
from samples.scans import ScanFormat, scan
from tests.support.documents import HTML_PAGE
from tests.support.pdfs import one_page_pdf

UPLOAD_URL = "/dashboard/batch-upload/"
PDF = one_page_pdf(b"BT /F1 12 Tf 72 720 Td (Invoice INV-7 Total 12.00) Tj ET")


def _upload(client: Client, name: str, content: bytes):
    form = {"name": "", "description": "", "prompt": "invoice number, total", "mode": "standard"}
    return client.post(
        UPLOAD_URL, {**form, "fields": "", "files": [SimpleUploadedFile(name, content)]}
    )


def _text(response) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())


def _zip_with_a_member_named_like_a_pdf() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("%PDF-1.7 invoice.pdf", PDF)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "content",
    [
        b"<!doctype html><html><!-- %PDF-1.7 --><script>alert(1)</script></html>",
        b"<html>" + PDF,
        b"\x00" + PDF,
        _zip_with_a_member_named_like_a_pdf(),
    ],
    ids=["html-comment", "html-then-pdf", "nul-then-pdf", "zip-member-name"],
)
def test_a_pdf_header_that_is_not_at_the_start_is_refused_and_nothing_is_stored(
    frank_client, media_files, content
):
    assert b"%PDF-" in content[:1024]

    response = _upload(frank_client, "invoice.pdf", content)

    assert response.status_code == 400
    assert "invoice.pdf has a .pdf name but its content is not PDF." in _text(response)
    assert not BatchProcess.objects.exists()
    assert not Document.objects.exists()
    assert media_files() == []


@pytest.mark.parametrize("prefix", [b"", b"\xef\xbb\xbf", b"\r\n  \t", b"\xef\xbb\xbf\n"], ids=repr)
def test_a_pdf_whose_header_follows_a_bom_or_whitespace_is_accepted(frank_client, prefix):
    response = _upload(frank_client, "invoice.pdf", prefix + PDF)

    assert response.status_code == 302, _text(response)
    document = Document.objects.get()
    assert (document.original_filename, document.size) == ("invoice.pdf", len(prefix + PDF))


# ---- e-invoice XML ----------------------------------------------------------------------------


def _labels(**changes) -> InvoiceLabels:
    labels = draw(2, locale="de-DE", layout=Layout.BLOCK)[0]
    return dataclasses.replace(labels, **changes)


@pytest.mark.parametrize("kind", ["ubl", "ubl-credit-note", "cii"])
def test_an_xml_e_invoice_is_accepted_by_its_root_element(frank_client, media_files, kind):
    labels = _labels(document_type="credit_note" if kind == "ubl-credit-note" else "invoice")
    xml = cii_xml(labels) if kind == "cii" else ubl_xml(labels)

    response = _upload(frank_client, "rechnung.xml", xml)

    assert response.status_code == 302, _text(response)
    document = Document.objects.get()
    assert (document.original_filename, document.content_type) == (
        "rechnung.xml",
        "application/xml",
    )
    assert [path.suffix for path in media_files()] == [".xml"]


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (
            b'<?xml version="1.0"?><catalog><book/></catalog>',
            "it is not an e-invoice: its root element is <catalog>, not a UBL 2.1 Invoice or "
            "CreditNote, or a CII CrossIndustryInvoice",
        ),
        (
            b"<Invoice><ID>1</ID></Invoice>",  # the right name outside the UBL namespace
            "it is not an e-invoice: its root element is <Invoice>",
        ),
        (b"Invoice 7, total 12.00 EUR", "it is not well-formed XML"),
        (PDF, "it is not well-formed XML"),
    ],
    ids=["catalog", "no-namespace", "text", "pdf"],
)
def test_an_xml_upload_that_is_not_an_e_invoice_is_refused_and_nothing_is_stored(
    frank_client, media_files, content, why
):
    response = _upload(frank_client, "invoice.xml", content)

    assert response.status_code == 400
    assert f"invoice.xml has a .xml name but {why}" in _text(response)
    assert not Document.objects.exists()
    assert media_files() == []


def _scan(form: ScanFormat) -> bytes:
    labels, style = draw(3, locale="en-GB", layout=Layout.BLOCK, lines=2)
    return scan(render(labels, style)[0], random.Random(3), form)


@pytest.mark.parametrize(
    ("name", "form", "content_type"),
    [
        ("invoice.png", ScanFormat.PNG, "image/png"),
        ("invoice.JPG", ScanFormat.JPEG, "image/jpeg"),
        ("invoice.jpeg", ScanFormat.JPEG, "image/jpeg"),
        ("invoice.tif", ScanFormat.TIFF, "image/tiff"),
        ("invoice.tiff", ScanFormat.TIFF, "image/tiff"),
    ],
)
def test_a_scan_or_photo_is_accepted_and_stored_as_an_image(frank_client, name, form, content_type):
    content = _scan(form)

    response = _upload(frank_client, name, content)

    assert response.status_code == 302, _text(response)
    document = Document.objects.get()
    assert (document.original_filename, document.content_type, document.size) == (
        name,
        content_type,
        len(content),
    )
    assert document.file.name.endswith("." + name.rpartition(".")[2].lower())


@pytest.mark.parametrize(
    ("name", "content", "label"),
    [
        ("invoice.png", HTML_PAGE, "PNG"),
        ("invoice.jpg", _scan(ScanFormat.PNG), "JPEG"),
        ("invoice.tiff", b"%PDF-1.7\n" + HTML_PAGE, "TIFF"),
    ],
    ids=["html-as-png", "png-as-jpg", "pdf-as-tiff"],
)
def test_an_image_name_on_other_content_is_refused_and_nothing_is_stored(
    frank_client, media_files, name, content, label
):
    response = _upload(frank_client, name, content)

    assert response.status_code == 400
    assert f"{name} has a .{name.rpartition('.')[2]} name but its content is not {label}." in (
        _text(response)
    )
    assert not Document.objects.exists()
    assert media_files() == []


def test_the_upload_page_offers_images(frank_client):
    page = _text(frank_client.get(UPLOAD_URL))
    raw = frank_client.get(UPLOAD_URL).content.decode()

    assert "PDF, CSV, XLSX, TXT, PNG, JPEG, TIFF or an XML e-invoice (UBL, CII)" in page
    assert 'accept=".pdf,.csv,.xlsx,.txt,.xml,.png,.jpg,.jpeg,.tif,.tiff"' in raw
