"""A batch's results as a file a person downloads: CSV, JSON, Markdown or XLSX.

Every tabular format has the same columns: ``filename, status, error_code, error_message,
engine, cost_usd``, then for each field a value column and a ``<field> verified`` column, one
row per document in upload order. JSON keeps each document's raw ``result`` instead of
flattening it.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.core.serializers.json import DjangoJSONEncoder
from django.utils.text import slugify
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell
from openpyxl.styles import Font

from batches.models import BatchProcess
from batches.selectors import batch_documents, batch_field_names
from documents.models import Document

if TYPE_CHECKING:
    from openpyxl.worksheet._write_only import WriteOnlyWorksheet

EXPORT_FORMATS = ("csv", "json", "md", "xlsx")

FIXED_COLUMNS = ("filename", "status", "error_code", "error_message", "engine", "cost_usd")

# Characters that make a spreadsheet read a cell as a formula (OWASP, "CSV Injection").
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")

FIELD_KEYS = ("name", "type", "description")
FIELD_TITLES = ("Field", "Type", "Description")

# Excel refuses to open a workbook with a longer cell.
XLSX_MAX_CELL_LENGTH = 32_767


@dataclass(frozen=True)
class Export:
    content: bytes
    content_type: str
    filename: str


def batch_export(*, batch: BatchProcess, fmt: str) -> Export:
    """The batch's results in `fmt` (one of `EXPORT_FORMATS`); ValueError for any other format.

    Reads the documents once (twice when the batch has no field list and the names are taken
    from the results), streaming them without their extracted text.
    """
    if fmt not in _WRITERS:
        raise ValueError(f"Unknown export format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}.")
    content, content_type = _WRITERS[fmt](batch)
    return Export(
        content=content,
        content_type=content_type,
        filename=f"{slugify(batch.name) or 'batch'}-results.{fmt}",
    )


def field_names(*, batch: BatchProcess) -> list[str]:
    """The batch's fields (listed, or inferred from its prompt), then any other name found in
    results, alphabetically (PostgreSQL's jsonb does not keep key order, so "first seen" would
    differ between databases)."""
    names = batch_field_names(batch=batch)
    extra: set[str] = set()
    for result in batch_documents(batch=batch).values_list("result", flat=True).iterator():
        extra.update(name for name in _result_fields(result) if name not in names)
    return names + sorted(extra)


def neutralise_formula(text: str) -> str:
    """Prefix a cell that a spreadsheet would run as a formula with a single quote.

    Follows OWASP's CSV injection advice: a cell starting with ``= + - @``, a tab or a carriage
    return is prefixed. This includes legitimately negative numbers ("-12.50" becomes "'-12.50"):
    telling a number from a formula such as ``-2+3+cmd|' /C calc'!A0`` is exactly what the
    attack exploits, so OWASP recommends prefixing them all.
    """
    return f"'{text}" if text.startswith(FORMULA_TRIGGERS) else text


def _result_fields(result: Any) -> dict[str, Any]:
    fields = result.get("fields") if isinstance(result, dict) else None
    return fields if isinstance(fields, dict) else {}


def _display(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "; ".join(_display(item) for item in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def _has_value(value: Any) -> bool:
    return value is not None and value != "" and value != []


def _field_cells(entry: Any) -> tuple[str, str]:
    """The value and "verified" cells for one field of one document's result."""
    if not isinstance(entry, dict) or not _has_value(entry.get("value")):
        return "", ""
    text = _display(entry["value"])
    currency = entry.get("currency")
    if isinstance(currency, str) and currency:
        text = f"{text} {currency}"
    return text, "true" if entry.get("verified") is True else "false"


def _header(names: list[str]) -> list[str]:
    header = list(FIXED_COLUMNS)
    for name in names:
        header += [name, f"{name} verified"]
    return header


def _row(document: Document, names: list[str]) -> list[str]:
    result = document.result
    engine = result.get("engine") if isinstance(result, dict) else None
    row = [
        document.original_filename,
        document.status,
        document.error_code,
        document.error_message,
        engine if isinstance(engine, str) else "",
        "" if document.cost_usd is None else f"{document.cost_usd:f}",
    ]
    fields = _result_fields(result)
    for name in names:
        row += _field_cells(fields.get(name))
    return row


def _table(batch: BatchProcess) -> Iterator[list[str]]:
    """The header, then one row per document, as display text."""
    names = field_names(batch=batch)
    yield _header(names)
    for document in batch_documents(batch=batch).iterator():
        yield _row(document, names)


def _csv(batch: BatchProcess) -> tuple[bytes, str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in _table(batch):
        writer.writerow([neutralise_formula(cell) for cell in row])
    # The BOM is how Excel knows the file is UTF-8 rather than the system's code page.
    return buffer.getvalue().encode("utf-8-sig"), "text/csv; charset=utf-8"


def _json(batch: BatchProcess) -> tuple[bytes, str]:
    payload = {
        "batch": {
            "id": batch.id,
            "name": batch.name,
            "status": batch.status,
            "engine": batch.engine,
            "prompt": batch.extraction_prompt,
            "fields": batch.fields,
            "created_at": batch.created_at,
            "completed_at": batch.completed_at,
        },
        "documents": [
            {
                "id": document.id,
                "filename": document.original_filename,
                "status": document.status,
                "attempts": document.attempts,
                "pages": document.page_count,
                "error": document.error,
                "result": document.result,
                "cost_usd": document.cost_usd,
            }
            for document in batch_documents(batch=batch).iterator()
        ],
    }
    content = json.dumps(payload, cls=DjangoJSONEncoder, ensure_ascii=False, indent=2)
    return content.encode("utf-8"), "application/json"


# Markdown's own syntax that could turn a value into a link, an image, code or emphasis (or, in a
# table, a new cell): written with a backslash, it shows as the character itself. Underscores are
# left alone: they sit inside names like error_code, where they emphasise nothing.
_MD_SYNTAX = re.compile(r"([\\`*\[\]|])")


def _md_text(text: str) -> str:
    """Text that a Markdown viewer shows as written: Markdown passes HTML through, so a
    ``<script>`` in a document's text, a filename or a batch name would otherwise run there, and
    ``[x](javascript:…)`` would be a link."""
    return _MD_SYNTAX.sub(r"\\\1", html.escape(text, quote=False))


def _md_cell(text: str) -> str:
    return "<br>".join(_md_text(text).splitlines())


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(_md_cell(cell) for cell in cells) + " |"


def _markdown(batch: BatchProcess) -> tuple[bytes, str]:
    lines = [
        f"# {_md_text(' '.join(batch.name.split()))}",
        "",
        f"Status: {batch.get_status_display()} · Engine: {batch.get_engine_display()}",
        "",
    ]
    rows = _table(batch)
    header = next(rows)
    lines += [_md_row(header), "| " + " | ".join("---" for _ in header) + " |"]
    lines += [_md_row(row) for row in rows]
    return ("\n".join(lines) + "\n").encode("utf-8"), "text/markdown; charset=utf-8"


def _xlsx_cell(sheet: WriteOnlyWorksheet, text: str, *, bold: bool = False) -> Cell:
    # Control characters are stripped before neutralising, so "\x01=cmd" cannot become "=cmd".
    text = neutralise_formula(ILLEGAL_CHARACTERS_RE.sub("", text))[:XLSX_MAX_CELL_LENGTH]
    cell = WriteOnlyCell(sheet, value=text)
    cell.data_type = "s"
    if bold:
        cell.font = Font(bold=True)
    return cell


def _xlsx(batch: BatchProcess) -> tuple[bytes, str]:
    workbook = Workbook(write_only=True)
    results = workbook.create_sheet("Results")
    rows = _table(batch)
    results.append([_xlsx_cell(results, name, bold=True) for name in next(rows)])
    for row in rows:
        results.append([_xlsx_cell(results, cell) for cell in row])

    about = workbook.create_sheet("Batch")
    for label, value in (
        ("Name", batch.name),
        ("Status", batch.get_status_display()),
        ("Engine", batch.get_engine_display()),
        ("Prompt", batch.extraction_prompt),
    ):
        about.append([_xlsx_cell(about, label, bold=True), _xlsx_cell(about, value)])
    about.append([])
    about.append([_xlsx_cell(about, title, bold=True) for title in FIELD_TITLES])
    for spec in batch.fields:
        about.append([_xlsx_cell(about, str(spec.get(key) or "")) for key in FIELD_KEYS])

    buffer = io.BytesIO()
    workbook.save(buffer)
    return (
        buffer.getvalue(),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )


_WRITERS: dict[str, Callable[[BatchProcess], tuple[bytes, str]]] = {
    "csv": _csv,
    "json": _json,
    "md": _markdown,
    "xlsx": _xlsx,
}
