"""Reading e-invoices (documents/einvoices.py, documents/pdf_attachments.py): the XML a PDF carries,
found in the reader's sandbox, and uploaded UBL and CII files, each checked by the hardened parser
and kept; a broken or hostile XML fails its document with a specific error."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from pypdf import PdfReader, PdfWriter

from documents import sandbox
from documents.readers import ReadResult, read_document
from extraction.contract import ExtractionError
from extraction.einvoice import BT, stored_invoice
from samples.drawing import draw
from samples.einvoices import cii_xml, facturx_pdf, ubl_xml
from samples.invoices import InvoiceLabels, Layout
from samples.layouts import render
from tests.support.documents import text_pdf
from tests.support.einvoices import BILLION_LAUGHS, ZUGFERD1

PDF = "application/pdf"
XML = "application/xml"


@pytest.fixture(autouse=True, scope="module")
def _fresh_pool() -> Iterator[None]:
    # A pool of its own: no child that another module's tests left behind is reused.
    sandbox.shutdown()
    yield
    sandbox.shutdown()


def drawn(seed: int = 4, *, locale: str = "fr-FR") -> tuple[InvoiceLabels, bytes]:
    labels, style = draw(seed, locale=locale, layout=Layout.BLOCK)
    pdf, _pages = render(labels, style)
    return labels, pdf


def with_attachment(pdf: bytes, name: str, data: bytes) -> bytes:
    writer = PdfWriter(clone_from=io.BytesIO(pdf))
    writer.add_attachment(name, data)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def read(tmp_path: Path, name: str, data: bytes, content_type: str) -> ReadResult:
    path = tmp_path / name
    path.write_bytes(data)
    return read_document(path, content_type=content_type, filename=name)


def failure(tmp_path: Path, name: str, data: bytes, content_type: str) -> ExtractionError:
    with pytest.raises(ExtractionError) as caught:
        read(tmp_path, name, data, content_type)
    return caught.value


def test_a_factur_x_pdf_is_read_with_its_text_and_its_xml(tmp_path: Path) -> None:
    labels, pdf = drawn()

    result = read(tmp_path, "facture.pdf", facturx_pdf(pdf, labels), PDF)

    assert labels.invoice_number in result.text  # the page is read as before
    invoice = stored_invoice(result.einvoice_xml)
    assert invoice.terms[BT.NUMBER].value == labels.invoice_number
    assert invoice.terms[BT.GRAND_TOTAL].value == f"{labels.total:.2f}"


@pytest.mark.parametrize("name", ["ZUGFeRD-invoice.xml", "zugferd-invoice.xml", "xrechnung.xml"])
def test_the_xml_is_found_under_each_name_the_standards_give_it(tmp_path: Path, name) -> None:
    xml = ZUGFERD1 if name.startswith("ZUGFeRD") else cii_xml(drawn()[0])

    result = read(tmp_path, "rechnung.pdf", with_attachment(text_pdf(["Rechnung"]), name, xml), PDF)

    assert stored_invoice(result.einvoice_xml).terms[BT.NUMBER]


def test_a_pdf_without_an_invoice_attachment_keeps_no_xml(tmp_path: Path) -> None:
    pdf = text_pdf(["Invoice 7"])
    other = with_attachment(pdf, "notes.xml", cii_xml(drawn()[0]))
    not_an_invoice = with_attachment(pdf, "factur-x.xml", b"<order><id>1</id></order>")

    assert read(tmp_path, "plain.pdf", pdf, PDF).einvoice_xml == ""
    assert read(tmp_path, "other.pdf", other, PDF).einvoice_xml == ""
    assert read(tmp_path, "order.pdf", not_an_invoice, PDF).einvoice_xml == ""


def test_a_pdf_carrying_hostile_or_broken_xml_fails_with_a_clear_error(tmp_path: Path) -> None:
    pdf = text_pdf(["Invoice 7"])

    hostile = failure(
        tmp_path, "laughs.pdf", with_attachment(pdf, "factur-x.xml", BILLION_LAUGHS), PDF
    )
    broken = failure(tmp_path, "cut.pdf", with_attachment(pdf, "factur-x.xml", b"<a><b></a>"), PDF)

    assert (hostile.code, hostile.message) == (
        "malformed",
        "laughs.pdf carries an e-invoice (factur-x.xml) that cannot be read: it declares a DTD "
        "(<!DOCTYPE>), which e-invoices never do.",
    )
    assert broken.code == "malformed"
    assert broken.message.startswith(
        "cut.pdf carries an e-invoice (factur-x.xml) that cannot be read: it is not well-formed"
    )


def test_xml_past_the_size_limit_fails_as_too_large(tmp_path: Path, settings) -> None:
    settings.SHEAF_XML_MAX_MB = 1
    labels, pdf = drawn()
    comment = b"<!--" + b" " * 2**20 + b"-->"
    padded = cii_xml(labels).replace(b"<rsm:Exchanged", comment + b"<rsm:Exchanged", 1)

    embedded = failure(tmp_path, "big.pdf", with_attachment(pdf, "factur-x.xml", padded), PDF)
    uploaded = failure(tmp_path, "big.xml", padded, XML)

    assert embedded.code == uploaded.code == "too_large"
    assert embedded.message.startswith("big.pdf is too large to read: its embedded factur-x.xml is")
    assert uploaded.message == (
        "big.xml is too large to read: it is 1.0 MB of XML and the limit is 1 MB."
    )
    huge = failure(tmp_path, "huge.xml", padded * 3, XML)
    assert huge.message.startswith("huge.xml is too large to read: it is 3.0 MB of XML")


@pytest.mark.parametrize("write", [ubl_xml, cii_xml], ids=["ubl", "cii"])
def test_an_uploaded_e_invoice_is_read_as_labelled_lines_and_kept(tmp_path: Path, write) -> None:
    labels = drawn(locale="nl-NL")[0]

    result = read(tmp_path, "factuur.xml", write(labels), XML)

    assert result.page_count is None
    assert f": {labels.invoice_number}" in result.text
    assert stored_invoice(result.einvoice_xml).terms[BT.SELLER_NAME].value == labels.supplier


def test_an_uploaded_hostile_or_foreign_xml_fails_with_a_clear_error(tmp_path: Path) -> None:
    hostile = failure(tmp_path, "laughs.xml", BILLION_LAUGHS, XML)
    foreign = failure(tmp_path, "zugferd1.xml", ZUGFERD1, XML)

    assert (hostile.code, hostile.message) == (
        "malformed",
        "laughs.xml is not a readable e-invoice: it declares a DTD (<!DOCTYPE>), which e-invoices "
        "never do.",
    )
    # ZUGFeRD 1 is read where it lives, inside a PDF; alone it is not one of the upload formats.
    assert foreign.code == "unsupported_type"
    assert foreign.message.startswith("zugferd1.xml is not an e-invoice: its root element is <")


def test_the_sandbox_returns_the_attachment_it_found(tmp_path: Path) -> None:
    labels, pdf = drawn()
    path = tmp_path / "fx.pdf"
    path.write_bytes(facturx_pdf(pdf, labels))
    arguments = {
        "path": str(path),
        "format": "pdf",
        "max_pages": 10,
        "max_chars": 10_000,
        "max_xml_bytes": 2**20,
    }

    read = sandbox.run("read", arguments, sandbox.Limits(30, 1024, 60), processes=1, recycle_mb=512)

    assert read["einvoice"] is not None
    name, data = read["einvoice"]
    assert name == "factur-x.xml"
    assert base64.b64decode(data) == PdfReader(path).attachments["factur-x.xml"][0]
