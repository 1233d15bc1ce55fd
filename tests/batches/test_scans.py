"""Scanned invoices through the whole pipeline with the offline engine: an image-only PDF and a
photo (PNG) of the same invoice complete with its values, and what was read is kept with where it
came from (OCR) and how sure OCR was."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from django.core.files.base import ContentFile

from batches import services
from batches.tasks import drain
from documents.models import Document
from documents.selectors import document_read_result
from extraction.fields import parse_fields
from samples.drawing import draw
from samples.invoices import Layout
from samples.layouts import render
from samples.scans import ScanFormat, scan

pytestmark = pytest.mark.usefixtures("requires_ocr")


@pytest.mark.django_db(transaction=True)
def test_a_scanned_pdf_and_a_photo_of_an_invoice_complete_with_its_values(grace, settings):
    settings.SHEAF_EXTRACTION_ENGINE = "local"
    labels, style = draw(31, locale="en-GB", layout=Layout.BLOCK, lines=2)
    pdf = render(labels, style)[0]
    files = {
        "scan.pdf": scan(pdf, random.Random(31), ScanFormat.PDF),
        "photo.png": scan(pdf, random.Random(32), ScanFormat.PNG),
    }
    services.batch_create(
        user=grace,
        files=[ContentFile(data, name=name) for name, data in files.items()],
        prompt="Extract the invoice's details.",
        fields=parse_fields("invoice number\ntotal:number"),
    )

    drain(budget_seconds=120)

    documents = {document.original_filename: document for document in Document.objects.all()}
    for name, document in documents.items():
        assert (document.status, document.error_code) == ("completed", ""), name
        assert labels.invoice_number in document.text, name
        read = document_read_result(document=document)
        assert read is not None
        (page,) = read.pages
        assert (page.source, page.text_layer) == ("ocr", False), name
        assert page.ocr_confidence is not None and page.ocr_confidence > 70, name
        # The document keeps its hardest page's confidence, for the review queue.
        assert document.ocr_confidence == round(page.ocr_confidence, 1), name
    values = {name: cell["value"] for name, cell in documents["scan.pdf"].result["fields"].items()}
    assert values["invoice number"] == labels.invoice_number
    assert Decimal(str(values["total"])) == labels.total
