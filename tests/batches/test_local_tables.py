"""Line items through the pipeline: an upload read by the real reader, the offline engine's
table field, the arithmetic checks, and the stored result and its items export."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.base import ContentFile

from batches import services
from batches.exports import batch_export
from batches.tasks import drain
from documents.models import Document
from extraction.fields import parse_fields
from samples.invoices import invoice
from tests.support.line_items import broken_item, expected_rows, with_two_line_descriptions
from tests.support.placed_pdfs import pdf_text

FIELDS = (
    "net:number\ntotal:number\n"
    "line items: table(description; quantity:number; unit price:number; amount:number)"
)


@pytest.mark.django_db(transaction=True)
def test_thirty_line_items_over_two_pages_are_thirty_rows_that_reconcile(alice, settings):
    settings.SHEAF_EXTRACTION_ENGINE = "local"
    generated = with_two_line_descriptions(invoice(3, language="de-DE", layout="stacked", lines=30))
    assert generated.pages == 2
    broken = broken_item(generated, pdf_text(generated.pdf).split("\f"))
    batch = services.batch_create(
        user=alice,
        files=[ContentFile(generated.pdf, name="thirty-items.pdf")],
        prompt="The invoice's line items.",
        fields=parse_fields(FIELDS),
    )

    drain(budget_seconds=120)

    document = Document.objects.get(batch=batch)
    assert document.status == Document.Status.COMPLETED
    table = document.result["fields"]["line items"]
    assert table["value"] == expected_rows(generated)
    assert table["rows"][broken]["pages"] == [1, 2]
    assert [row["page"] for row in table["rows"]] == [1] * (broken + 1) + [2] * (29 - broken)
    assert document.result["checks"] == {"status": "reconciled", "failures": []}
    assert table["status"] == "checked"
    assert {row["status"] for row in table["rows"]} == {"checked"}

    export = batch_export(batch=batch, fmt="items.csv")
    items = list(csv.DictReader(io.StringIO(export.content.decode("utf-8-sig"))))
    assert [row["description"] for row in items] == [
        row["description"] for row in expected_rows(generated)
    ]
    assert sum(float(row["amount"]) for row in items) == pytest.approx(
        float(generated.labels.subtotal)
    )
