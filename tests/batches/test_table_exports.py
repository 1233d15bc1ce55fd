"""Exports of a batch with a table field: items.csv, the per-document formats, typed XLSX."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from accounts.models import User
from batches.exports import Export, NoTableField, batch_export
from batches.models import BatchProcess
from documents.models import Document
from tests.factories import BatchFactory, DocumentFactory

pytestmark = pytest.mark.django_db

COLUMNS = [
    {"name": "description", "type": "string", "description": ""},
    {"name": "quantity", "type": "number", "description": ""},
    {"name": "amount", "type": "number", "description": ""},
]
FIELDS = [
    {"name": "invoice number", "type": "string", "description": ""},
    {"name": "date", "type": "date", "description": ""},
    {"name": "total", "type": "number", "description": ""},
    {"name": "line items", "type": "table", "description": "", "columns": COLUMNS},
]


def scalar(value: Any, status: str = "found", review: Any = None) -> dict[str, Any]:
    return {
        "value": value,
        "quote": None if value is None else str(value),
        "page": 1,
        "status": status,
        "source": "text",
        "verified": status in ("found", "checked"),
        "review": review,
    }


def table(rows: list[tuple[dict[str, Any], int, str]]) -> dict[str, Any]:
    return {
        "value": [values for values, _, _ in rows],
        "rows": [
            {"quote": "…", "page": page, "pages": [page], "status": status}
            for _, page, status in rows
        ],
        "quote": None,
        "page": rows[0][1] if rows else None,
        "status": "found" if rows else "missing",
        "source": "text",
        "verified": bool(rows),
        "review": None,
    }


FIRST = {
    "engine": "local",
    "model": None,
    "fields": {
        "invoice number": scalar("INV-1"),
        "date": scalar("2024-03-01", "checked"),
        "total": scalar("99.00"),
        "line items": table(
            [
                ({"description": "Widget", "quantity": 2, "amount": 100.5}, 1, "checked"),
                ({"description": "=HYPERLINK(1)", "quantity": 1, "amount": 20}, 2, "unverified"),
            ]
        ),
    },
    "checks": {"status": "reconciled", "failures": []},
}
# A person corrected the first document's total: the reviewed value wins in every export.
REVIEWS = {"total": {"value": "120.50", "by": "alice@example.com", "at": "2024-03-02"}}
SECOND = {
    "engine": "local",
    "model": None,
    "fields": {
        "invoice number": scalar("INV-2"),
        "date": scalar("2024-03-05"),
        "total": scalar("-5", "unverified"),
        "line items": table([({"description": "Refund", "quantity": 1, "amount": -5}, 1, "found")]),
    },
    "checks": {"status": "failed", "failures": []},
}


@pytest.fixture
def batch(alice: User) -> BatchProcess:
    batch = BatchFactory(user=alice, name="March", fields=FIELDS)
    started = timezone.now() - timedelta(days=1)
    documents = [("a.pdf", FIRST, REVIEWS), ("b.pdf", SECOND, {})]
    for position, (name, result, reviews) in enumerate(documents):
        document = DocumentFactory(
            batch=batch,
            original_filename=name,
            status=Document.Status.COMPLETED,
            result=result,
            reviews=reviews,
        )
        Document.objects.filter(pk=document.pk).update(
            created_at=started + timedelta(seconds=position)
        )
    return batch


def csv_dicts(content: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))


def test_items_csv_has_a_row_per_line_item_with_the_documents_fields(batch: BatchProcess) -> None:
    export = batch_export(batch=batch, fmt="items.csv")

    assert export.filename == "march-items.csv"
    header = export.content.decode("utf-8-sig").splitlines()[0]
    assert header == ("filename,invoice number,date,total,description,quantity,amount,page,status")
    rows = csv_dicts(export.content)
    assert [(row["filename"], row["description"], row["page"], row["status"]) for row in rows] == [
        ("a.pdf", "Widget", "1", "checked"),
        ("a.pdf", "'=HYPERLINK(1)", "2", "unverified"),
        ("b.pdf", "Refund", "1", "found"),
    ]
    assert [row["total"] for row in rows] == ["120.50", "120.50", "'-5"]
    assert rows[0]["invoice number"] == "INV-1" and rows[2]["date"] == "2024-03-05"


def test_items_csv_of_a_batch_without_a_table_field_is_refused(alice: User) -> None:
    plain = BatchFactory(user=alice, fields=FIELDS[:3])

    with pytest.raises(NoTableField, match="has no table field"):
        batch_export(batch=plain, fmt="items.csv")


def test_csv_has_a_status_per_field_the_row_count_and_the_checks(batch: BatchProcess) -> None:
    first, second = csv_dicts(batch_export(batch=batch, fmt="csv").content)

    assert first["total"] == "120.50"
    assert first["date status"] == "checked" and second["total status"] == "unverified"
    assert first["line items"] == "2" and second["line items"] == "1"
    assert first["checks"] == "reconciled" and second["checks"] == "failed"


def test_json_carries_rows_statuses_checks_and_the_review(batch: BatchProcess) -> None:
    payload = json.loads(batch_export(batch=batch, fmt="json").content)

    result = payload["documents"][0]["result"]
    assert result["fields"]["line items"]["rows"][1]["status"] == "unverified"
    assert result["fields"]["total"]["review"]["value"] == "120.50"
    assert result["checks"]["status"] == "reconciled"


def test_markdown_lists_each_documents_line_items_and_checks(batch: BatchProcess) -> None:
    text = batch_export(batch=batch, fmt="md").content.decode()

    sections = text[text.index("## a.pdf") :]
    assert sections.index("Line items:") < sections.index("Widget") < sections.index("## b.pdf")
    assert "checks: failed" in sections
    assert "| Refund | 1 | -5 | 1 | found |" in sections


def workbook(export: Export) -> openpyxl.Workbook:
    return openpyxl.load_workbook(io.BytesIO(export.content))


def test_xlsx_items_sheet_is_typed_frozen_and_filtered(batch: BatchProcess) -> None:
    book = workbook(batch_export(batch=batch, fmt="xlsx"))

    assert book.sheetnames == ["Results", "Items", "Batch"]
    items = book["Items"]
    header = [cell.value for cell in items[1]]
    rows = [dict(zip(header, row, strict=True)) for row in items.iter_rows(2, values_only=True)]
    assert sum(row["amount"] for row in rows) == 115.5
    assert rows[0]["date"] == datetime(2024, 3, 1)
    assert items["C2"].number_format == "yyyy-mm-dd"
    assert rows[0]["total"] == 120.5 and rows[2]["total"] == -5
    assert rows[1]["description"] == "'=HYPERLINK(1)"
    assert [row["page"] for row in rows] == [1, 2, 1]
    for sheet in (items, book["Results"]):
        assert sheet.freeze_panes == "A2"
        assert sheet.auto_filter.ref.startswith("A1:")
    assert items.auto_filter.ref == "A1:I4"
    assert items.column_dimensions["B"].width >= len("invoice number")


@pytest.fixture
def plain(alice: User) -> BatchProcess:
    """A finished batch with no table field."""
    plain = BatchFactory(user=alice, fields=FIELDS[:3])
    DocumentFactory(batch=plain, status=Document.Status.COMPLETED, result=SECOND)
    return plain


def test_the_api_serves_items_csv_and_refuses_it_without_a_table_field(
    batch: BatchProcess, plain: BatchProcess, alice_client: Client
) -> None:
    client = alice_client
    response = client.get(f"/api/v1/batches/{batch.pk}/results/?format=items.csv")
    refused = client.get(f"/api/v1/batches/{plain.pk}/results/?format=items.csv")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert [row["description"] for row in csv_dicts(response.content)] == [
        "Widget",
        "'=HYPERLINK(1)",
        "Refund",
    ]
    assert refused.status_code == 400
    assert refused.json()["code"] == "no_table_field"


def test_the_dashboard_links_items_csv_only_for_a_batch_with_a_table(
    batch: BatchProcess, plain: BatchProcess, alice_client: Client
) -> None:
    client = alice_client
    download = client.get(f"/dashboard/batches/{batch.pk}/export/items.csv/")
    page = client.get(f"/dashboard/batches/{batch.pk}/").content.decode()
    plain_page = client.get(f"/dashboard/batches/{plain.pk}/").content.decode()

    assert download.status_code == 200
    assert b"Widget" in download.content
    assert f"/dashboard/batches/{batch.pk}/export/items.csv/" in page
    assert f"/dashboard/batches/{plain.pk}/export/csv/" in plain_page
    assert "items.csv" not in plain_page
    assert client.get(f"/dashboard/batches/{plain.pk}/export/items.csv/").status_code == 404


def test_the_cli_reports_items_csv_and_refuses_it_without_a_table_field(
    batch: BatchProcess, plain: BatchProcess
) -> None:
    stdout = io.StringIO()
    call_command("batch", "report", str(batch.pk), "--format", "items.csv", stdout=stdout)

    assert [row["filename"] for row in csv_dicts(stdout.getvalue().encode())] == [
        "a.pdf",
        "a.pdf",
        "b.pdf",
    ]
    with pytest.raises(CommandError, match="has no table field"):
        call_command("batch", "report", str(plain.pk), "--format", "items.csv")


def test_the_cli_takes_items_csv_from_the_output_files_name(
    batch: BatchProcess, tmp_path: Path
) -> None:
    target = tmp_path / "march.items.csv"

    call_command("batch", "report", str(batch.pk), "-o", str(target), stdout=io.StringIO())

    rows = csv_dicts(target.read_bytes())
    assert [row["description"] for row in rows] == ["Widget", "'=HYPERLINK(1)", "Refund"]
