"""E-invoices through the whole pipeline (batch_create, then the drain): the fields their XML
carries are filled from it exactly before any engine runs, the engine is asked only for the rest,
the XML is kept so a later run needs no read, and a hostile XML fails its document alone."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from batches import services
from batches.models import BatchProcess
from batches.tasks import drain
from documents.models import Document
from extraction.einvoice import kept_xml, parse_xml
from extraction.fields import parse_fields
from samples.drawing import draw
from samples.einvoices import cii_xml, facturx_pdf, ubl_xml
from samples.invoices import InvoiceLabels, Layout
from tests.factories import BatchFactory, DocumentFactory
from tests.support.documents import text_pdf
from tests.support.einvoices import BILLION_LAUGHS
from tests.support.engines import RecordingLocalEngine

DRAIN_BUDGET = 120
FIVE = "invoice number\ndate:date\ntotal:number\ncurrency\nsupplier"
TERMS = "Payment terms: 30 days net, 2% discount within 10 days"


def labels(seed: int, **options) -> InvoiceLabels:
    return draw(seed, locale="de-DE", layout=Layout.BLOCK, **options)[0]


def printed(truth: InvoiceLabels) -> bytes:
    """A page that prints the invoice German-style, and payment terms its XML does not carry."""
    day, month, year = truth.date[8:], truth.date[5:7], truth.date[:4]
    total = f"{truth.total:,.2f}".replace(",", "X").replace(".", ",").replace("X", ".")
    return text_pdf(
        [
            truth.supplier,
            f"Rechnungsnummer: {truth.invoice_number}",
            f"Rechnungsdatum: {day}.{month}.{year}",
            f"Gesamtbetrag: {total} EUR",
            TERMS,
        ]
    )


def run(user, files: dict[str, bytes], fields: str) -> dict[str, Document]:
    services.batch_create(
        user=user,
        files=[ContentFile(data, name=name) for name, data in files.items()],
        prompt="Extract the invoice's details.",
        fields=parse_fields(fields),
    )
    drain(budget_seconds=DRAIN_BUDGET)
    return {document.original_filename: document for document in Document.objects.all()}


@pytest.mark.django_db(transaction=True)
def test_a_factur_x_pdf_gives_its_xml_values_and_the_offline_engine_the_rest(grace, settings):
    settings.SHEAF_EXTRACTION_ENGINE = "local"
    truth = labels(5, credit_note=True)

    document = run(
        grace, {"gutschrift.pdf": facturx_pdf(printed(truth), truth)}, f"{FIVE}\npayment terms"
    )["gutschrift.pdf"]

    assert document.status == Document.Status.COMPLETED, document.error_message
    fields = document.result["fields"]
    assert {name: cell["value"] for name, cell in fields.items()} == {
        "invoice number": truth.invoice_number,
        "date": truth.date,
        "total": f"{truth.total:.2f}",  # negative: a credit note, as its labels say
        "currency": "EUR",
        "supplier": truth.supplier,
        "payment terms": TERMS.split(": ", 1)[1],
    }
    assert Decimal(fields["total"]["value"]) < 0
    assert fields["total"]["currency"] == "EUR"
    assert {name: cell["source"] for name, cell in fields.items()} == {
        **dict.fromkeys(["invoice number", "date", "total", "currency", "supplier"], "xml"),
        "payment terms": "text",
    }
    assert (fields["invoice number"]["quote"], fields["invoice number"]["page"]) == (
        f"Rechnungsnummer: {truth.invoice_number}",
        1,
    )
    assert fields["total"]["quote"].startswith("Gesamtbetrag: ")
    assert all(cell["verified"] for cell in fields.values())
    assert document.result["engine"] == "local"
    assert "CrossIndustryInvoice" in document.einvoice_xml


@pytest.fixture
def recording_engine(settings):
    settings.SHEAF_EXTRA_ENGINES = {"recording": "tests.support.engines.RecordingLocalEngine"}
    settings.SHEAF_EXTRACTION_ENGINE = "recording"
    RecordingLocalEngine.fields_asked.clear()
    yield RecordingLocalEngine.fields_asked
    RecordingLocalEngine.fields_asked.clear()


@pytest.mark.django_db(transaction=True)
def test_only_the_fields_the_xml_lacks_reach_the_engine(grace, recording_engine):
    truth, other = labels(6), labels(7)
    fields = f"{FIVE}\npayment terms\ndelivery address"

    documents = run(
        grace,
        {
            "rechnung.pdf": facturx_pdf(printed(truth), truth),
            "plain.pdf": printed(other),
        },
        fields,
    )

    asked = {name: recording_engine[str(document.pk)] for name, document in documents.items()}
    assert asked == {
        "rechnung.pdf": ["payment terms", "delivery address"],
        "plain.pdf": [field["name"] for field in parse_fields(fields)],
    }
    assert documents["rechnung.pdf"].result["fields"]["payment terms"]["value"]
    assert documents["rechnung.pdf"].result["fields"]["delivery address"]["value"] is None


@pytest.mark.django_db(transaction=True)
def test_an_e_invoice_whose_xml_has_every_field_never_reaches_the_engine(grace, recording_engine):
    truth = labels(8)

    document = run(grace, {"invoice.xml": ubl_xml(truth)}, FIVE)["invoice.xml"]

    assert document.status == Document.Status.COMPLETED, document.error_message
    assert recording_engine == {}
    assert (document.result["engine"], document.result["model"]) == ("recording", None)
    assert document.cost_usd == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("write", [ubl_xml, cii_xml], ids=["ubl", "cii"])
def test_an_uploaded_xml_e_invoice_is_read_exactly_through_the_pipeline(grace, settings, write):
    settings.SHEAF_EXTRACTION_ENGINE = "local"
    truth = labels(9)

    document = run(grace, {"rechnung.xml": write(truth)}, FIVE)["rechnung.xml"]

    assert document.status == Document.Status.COMPLETED, document.error_message
    assert document.batch.status == BatchProcess.Status.COMPLETED
    fields = document.result["fields"]
    assert {name: cell["value"] for name, cell in fields.items()} == {
        "invoice number": truth.invoice_number,
        "date": truth.date,
        "total": f"{truth.total:.2f}",
        "currency": truth.currency,
        "supplier": truth.supplier,
    }
    # No page to quote: each value is quoted by its element's text.
    assert (fields["total"]["quote"], fields["total"]["page"]) == (f"{truth.total:.2f}", None)
    assert {cell["source"] for cell in fields.values()} == {"xml"}
    assert (document.values_found, document.values_verified) == (5, 5)
    assert f": {truth.invoice_number}" in document.text
    assert document.einvoice_xml


@pytest.mark.django_db(transaction=True)
def test_a_document_read_before_is_filled_from_its_kept_xml_without_reading_again(settings):
    settings.SHEAF_EXTRACTION_ENGINE = "local"
    truth = labels(10)
    batch = BatchFactory(fields=parse_fields(FIVE))
    # Its original is gone: a read would fail with file_removed.
    document = DocumentFactory(
        batch=batch,
        file="",
        read_at=timezone.now(),
        text="Seller: someone else entirely",
        einvoice_xml=kept_xml(parse_xml(cii_xml(truth), max_bytes=2**20)),
    )

    drain(budget_seconds=DRAIN_BUDGET)

    document.refresh_from_db()
    assert document.status == Document.Status.COMPLETED, document.error_message
    assert document.result["fields"]["supplier"]["value"] == truth.supplier
    assert document.result["fields"]["total"]["value"] == f"{truth.total:.2f}"


@pytest.mark.django_db(transaction=True)
def test_a_hostile_xml_fails_its_own_document_and_the_batch_goes_on(grace, settings):
    settings.SHEAF_EXTRACTION_ENGINE = "local"
    truth = labels(11)

    documents = run(grace, {"laughs.xml": BILLION_LAUGHS, "good.xml": ubl_xml(truth)}, FIVE)

    hostile, good = documents["laughs.xml"], documents["good.xml"]
    assert (hostile.status, hostile.error_code, hostile.error_message) == (
        Document.Status.FAILED,
        "malformed",
        "laughs.xml is not a readable e-invoice: it declares a DTD (<!DOCTYPE>), which "
        "e-invoices never do.",
    )
    assert good.status == Document.Status.COMPLETED
    assert good.batch.status == BatchProcess.Status.COMPLETED_WITH_ERRORS
