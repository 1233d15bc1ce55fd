"""Issue #16's "done when": an invoice with 30 line items over two pages, uploaded through the
form with a table field, gives 30 rows that reconcile with its total, in the API, the CLI and
every export."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client

from accounts.services import api_key_create
from batches.models import BatchProcess
from batches.tasks import drain
from documents.models import Document
from samples.invoices import GeneratedInvoice, invoice

FIELDS = (
    "invoice number\n"
    "net:number -- the subtotal before tax\n"
    "tax:number\n"
    "total:number\n"
    "line items: table(description; quantity:number; unit price:number; amount:number)"
    " -- one row per invoice line"
)
COLUMNS = ("description", "quantity", "unit price", "amount")


def rows_of(generated: GeneratedInvoice) -> list[tuple[str, Decimal, Decimal, Decimal]]:
    return [
        (" ".join(item.description.split()), item.quantity, item.unit_price, item.amount)
        for item in generated.labels.line_items
    ]


def typed(row: dict[str, object]) -> tuple[str, Decimal | None, Decimal | None, Decimal | None]:
    description, *numbers = (row[column] for column in COLUMNS)
    quantity, price, amount = (
        None if number in (None, "") else Decimal(str(number)) for number in numbers
    )
    return str(description), quantity, price, amount


@pytest.mark.django_db(transaction=True)
def test_thirty_line_items_over_two_pages_reconcile_in_the_api_the_cli_and_every_export(
    alice, alice_client, settings, tmp_path
):
    settings.SHEAF_EXTRACTION_ENGINE = "local"
    generated = invoice(7, language="en-GB", layout="letterhead", lines=30)
    assert generated.pages == 2
    expected = rows_of(generated)

    response = alice_client.post(
        "/dashboard/batch-upload/",
        {
            "name": "Long invoice",
            "description": "",
            "prompt": "The invoice's number, total and line items.",
            "fields": FIELDS,
            "mode": "standard",
            "files": [SimpleUploadedFile("long.pdf", generated.pdf, "application/pdf")],
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    drain(budget_seconds=60)

    batch = BatchProcess.objects.get(user=alice)
    assert batch.status == BatchProcess.Status.COMPLETED
    document = Document.objects.get(batch=batch)

    # The API: 30 rows in order, each with its quote and page, the document reconciled.
    _, secret = api_key_create(user=alice, name="tests")
    api = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    shown = api.get(f"/api/v1/documents/{document.pk}/").json()
    cell = shown["result"]["fields"]["line items"]
    assert [typed(row) for row in cell["value"]] == expected
    assert len(cell["rows"]) == 30
    assert {row["page"] for row in cell["rows"]} == {1, 2}
    assert all(row["pages"][0] == row["page"] for row in cell["rows"])
    assert sum(amount for *_, amount in expected) == generated.labels.subtotal
    assert shown["checks"]["status"] == "reconciled", shown["checks"]
    assert Decimal(str(shown["result"]["fields"]["total"]["value"])) == generated.labels.total

    # items.csv from the API, the dashboard and the CLI: one row per line item.
    for content in (
        api.get(f"/api/v1/batches/{batch.pk}/results/?format=items.csv").content,
        alice_client.get(f"/dashboard/batches/{batch.pk}/export/items.csv/").content,
    ):
        items = list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))
        assert [typed(row) for row in items] == expected
        assert {row["invoice number"] for row in items} == {generated.labels.invoice_number}
    out = tmp_path / "long.items.csv"
    call_command("batch", "report", str(batch.pk), "--format", "items.csv", "-o", str(out))
    items = list(csv.DictReader(io.StringIO(out.read_text("utf-8-sig"))))
    assert [typed(row) for row in items] == expected

    # The per-document CSV: the row count and the checks outcome.
    content = api.get(f"/api/v1/batches/{batch.pk}/results/?format=csv").content
    (row,) = csv.DictReader(io.StringIO(content.decode("utf-8-sig")))
    assert (row["line items"], row["checks"]) == ("30", "reconciled")

    # XLSX: the Items sheet, typed.
    content = api.get(f"/api/v1/batches/{batch.pk}/results/?format=xlsx").content
    book = openpyxl.load_workbook(io.BytesIO(content))
    header, *sheet = book["Items"].iter_rows(values_only=True)
    items_xlsx = [dict(zip(header, values, strict=True)) for values in sheet]
    assert [typed(row) for row in items_xlsx] == expected
    assert all(isinstance(row["amount"], int | float) for row in items_xlsx)

    # Markdown lists the rows under the document; JSON keeps them with their quotes.
    markdown = api.get(f"/api/v1/batches/{batch.pk}/results/?format=md").content.decode()
    assert "Line items:" in markdown
    assert all(description in markdown for description, *_ in expected)
    data = json.loads(api.get(f"/api/v1/batches/{batch.pk}/results/?format=json").content)
    (kept,) = data["documents"]
    assert len(kept["result"]["fields"]["line items"]["rows"]) == 30
