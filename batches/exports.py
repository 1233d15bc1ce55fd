"""A batch's results as a file a person downloads: CSV, JSON, Markdown, XLSX or items.csv.

Every per-document format has the same columns: ``filename, status, error_code, error_message,
engine, cost_usd, checks``, then for each field a value column, a ``<field> currency`` column
when some document's value carries a currency (a number cell holds the number alone), a
``<field> verified`` and a ``<field> status`` column, one row per document in upload order; a
table field's value column holds its row count. ``items.csv`` (and the XLSX ``Items`` sheet)
has one row per line item of the batch's table fields instead. JSON keeps the batch's checks
(`batches.checks`) and each document's raw ``result``. A reviewed value (``review.value``) wins
over the extracted one everywhere.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.template.defaultfilters import pluralize
from django.utils.text import slugify

from batches.models import BatchProcess
from batches.selectors import batch_documents, batch_field_names
from documents.models import Document

EXPORT_FORMATS = ("csv", "json", "md", "xlsx", "items.csv")

FIXED_COLUMNS = (
    "filename",
    "status",
    "error_code",
    "error_message",
    "engine",
    "cost_usd",
    "checks",
)

VALUE_STATUSES = ("missing", "invalid", "unverified", "found", "checked")

# Characters that make a spreadsheet read a cell as a formula (OWASP, "CSV Injection").
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


class NoTableField(ValueError):
    """items.csv asked of a batch whose fields include no table: there are no line items."""

    code = "no_table_field"


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
    if fmt == "items.csv" and not table_fields(batch=batch):
        raise NoTableField(
            f"Batch {batch.name!r} has no table field, so it has no line items to export; "
            "use format csv for one row per document."
        )
    content, content_type = _WRITERS[fmt](batch)
    return Export(
        content=content,
        content_type=content_type,
        filename=f"{slugify(batch.name) or 'batch'}-"
        + ("items.csv" if fmt == "items.csv" else f"results.{fmt}"),
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


def table_fields(*, batch: BatchProcess) -> list[tuple[str, list[str], dict[str, str]]]:
    """The batch's table fields as (name, column names, column types), in field order."""
    tables = []
    for spec in batch.fields:
        if spec.get("type") == "table":
            columns = [column for column in spec.get("columns", []) if column.get("name")]
            tables.append(
                (
                    spec["name"],
                    [column["name"] for column in columns],
                    {column["name"]: column.get("type", "string") for column in columns},
                )
            )
    return tables


def cell_value(entry: Any) -> Any:
    """A result cell's exported value: a review's value wins over the extracted one."""
    if not isinstance(entry, dict):
        return None
    review = entry.get("review")
    if isinstance(review, dict) and "value" in review:
        return review["value"]
    return entry.get("value")


def cell_status(entry: Any) -> str:
    """A result cell's status, `reviewed` when a person corrected or confirmed it; results
    stored before statuses existed derive it from `verified` and the value (the one place that
    fallback lives)."""
    if not isinstance(entry, dict):
        return "missing"
    if isinstance(entry.get("review"), dict):
        return "reviewed"
    status = entry.get("status")
    if status in VALUE_STATUSES:
        return str(status)
    if not _has_value(entry.get("value")):
        return "missing"
    return "found" if entry.get("verified") is True else "unverified"


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


def display_text(value: Any) -> str:
    """A cell as text (CSV, Markdown, column widths): lists joined with "; ", objects as JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "; ".join(display_text(item) for item in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, Decimal):
        return f"{value:f}"
    return str(value)


def _has_value(value: Any) -> bool:
    return value is not None and value != "" and value != []


def _field_cells(entry: Any, *, table: bool = False) -> tuple[Any, bool | None, str]:
    """The value, "verified" and "status" cells for one field of one document's result, typed;
    a table field's value is its row count."""
    status = cell_status(entry)
    value = cell_value(entry)
    if not _has_value(value):
        return (0 if table and isinstance(entry, dict) else None), None, status
    return (
        len(value) if table and isinstance(value, list) else value,
        status in ("found", "checked", "reviewed"),
        status,
    )


def _header(names: list[str], priced: set[str]) -> list[str]:
    header = list(FIXED_COLUMNS)
    for name in names:
        currency = [f"{name} currency"] if name in priced else []
        header += [name, *currency, f"{name} verified", f"{name} status"]
    return header


def _priced_fields(batch: BatchProcess, names: list[str]) -> set[str]:
    """The fields whose value carries a currency in some document (an amount's "EUR"): they
    get a currency column, as a number cell holds the number alone."""
    priced: set[str] = set()
    for result in batch_documents(batch=batch).values_list("result", flat=True).iterator():
        fields = _result_fields(result)
        priced.update(
            name
            for name in names
            if isinstance(fields.get(name), dict) and _has_value(fields[name].get("currency"))
        )
    return priced


def _currency(entry: Any) -> str | None:
    currency = entry.get("currency") if isinstance(entry, dict) else None
    return (
        currency
        if isinstance(currency, str) and currency and _has_value(cell_value(entry))
        else None
    )


def _checks_status(result: Any) -> str:
    checks = result.get("checks") if isinstance(result, dict) else None
    status = checks.get("status") if isinstance(checks, dict) else None
    return status if isinstance(status, str) else ""


def _row(document: Document, names: list[str], tables: set[str], priced: set[str]) -> list[Any]:
    result = document.result
    engine = result.get("engine") if isinstance(result, dict) else None
    row: list[Any] = [
        document.original_filename,
        document.status,
        document.error_code,
        document.error_message,
        engine if isinstance(engine, str) else "",
        document.cost_usd,
        _checks_status(result),
    ]
    fields = _result_fields(document.reviewed_result)
    for name in names:
        value, verified, status = _field_cells(fields.get(name), table=name in tables)
        currency = [_currency(fields.get(name))] if name in priced else []
        row += [value, *currency, verified, status]
    return row


def typed_table(batch: BatchProcess) -> tuple[list[str], list[str], Iterator[list[Any]]]:
    """The header, each column's type, and one typed row per document."""
    names = field_names(batch=batch)
    tables = {name for name, _, _ in table_fields(batch=batch)}
    types = {spec["name"]: spec.get("type", "string") for spec in batch.fields}
    kinds = ["string"] * len(FIXED_COLUMNS)
    kinds[FIXED_COLUMNS.index("cost_usd")] = "number"
    priced = _priced_fields(batch, names)
    for name in names:
        currency = ["string"] if name in priced else []
        kind = "number" if name in tables else types.get(name, "string")
        kinds += [kind, *currency, "boolean", "string"]
    rows = (
        _row(document, names, tables, priced)
        for document in batch_documents(batch=batch).iterator()
    )
    return _header(names, priced), kinds, rows


def _table(batch: BatchProcess) -> Iterator[list[str]]:
    """The header, then one row per document, as display text."""
    header, _, rows = typed_table(batch)
    yield header
    for row in rows:
        yield [display_text(cell) for cell in row]


@dataclass(frozen=True)
class ItemsLayout:
    """The line-item layout: which scalar fields are repeated, which columns follow."""

    scalars: list[str]
    tables: list[tuple[str, list[str], dict[str, str]]]
    columns: list[str]
    types: dict[str, str]

    @property
    def header(self) -> list[str]:
        table = ["table"] if len(self.tables) > 1 else []
        return ["filename", *self.scalars, *table, *self.columns, "page", "status"]


def items_layout(batch: BatchProcess) -> ItemsLayout:
    tables = table_fields(batch=batch)
    table_names = {name for name, _, _ in tables}
    types = {spec["name"]: spec.get("type", "string") for spec in batch.fields}
    columns: list[str] = []
    for _, names, column_types in tables:
        for name in names:
            if name not in columns:
                columns.append(name)
                types.setdefault(name, column_types[name])
    scalars = [name for name in batch_field_names(batch=batch) if name not in table_names]
    return ItemsLayout(scalars=scalars, tables=tables, columns=columns, types=types)


def item_rows(batch: BatchProcess, layout: ItemsLayout) -> Iterator[list[Any]]:
    """One row per line item, values as stored (typed), in upload then row order."""
    for document in batch_documents(batch=batch).iterator():
        yield from _item_rows_of(document, layout)


def _item_rows_of(document: Document, layout: ItemsLayout) -> Iterator[list[Any]]:
    fields = _result_fields(document.reviewed_result)
    scalars = [cell_value(fields.get(name)) for name in layout.scalars]
    for table, _, _ in layout.tables:
        entry = fields.get(table)
        value = cell_value(entry)
        values = value if isinstance(value, list) else []
        rows = entry.get("rows") if isinstance(entry, dict) else None
        # A reviewed table is a person's list of rows: the machine's proofs no longer match it.
        rows = rows if isinstance(rows, list) and cell_status(entry) != "reviewed" else []
        label = [table] if len(layout.tables) > 1 else []
        for index, item in enumerate(values):
            item = item if isinstance(item, dict) else {}
            meta = rows[index] if index < len(rows) and isinstance(rows[index], dict) else {}
            yield [
                document.original_filename,
                *scalars,
                *label,
                *(item.get(column) for column in layout.columns),
                meta.get("page"),
                cell_status(meta) if meta else cell_status(entry),
            ]


def _items_csv(batch: BatchProcess) -> tuple[bytes, str]:
    layout = items_layout(batch)
    return _csv_bytes(
        [layout.header, *([display_text(cell) for cell in row] for row in item_rows(batch, layout))]
    )


def _csv(batch: BatchProcess) -> tuple[bytes, str]:
    return _csv_bytes(_table(batch))


def _csv_bytes(rows: Iterable[list[str]]) -> tuple[bytes, str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
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
            "checks": batch.checks,
        },
        "documents": [
            {
                "id": document.id,
                "filename": document.original_filename,
                "status": document.status,
                "attempts": document.attempts,
                "pages": document.page_count,
                "error": document.error,
                "result": document.reviewed_result,
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


def _md_table(header: list[str], rows: Iterable[list[str]]) -> list[str]:
    return [_md_row(header), "| " + " | ".join("---" for _ in header) + " |"] + [
        _md_row(row) for row in rows
    ]


def _markdown(batch: BatchProcess) -> tuple[bytes, str]:
    """A report a person reads or hands on: what the batch is, a summary table of every
    document's values, then a section per document with each value's status, page and quote
    (and its line items), a person's reviewed value marked as such."""
    names = field_names(batch=batch)
    tables = {name for name, _, _ in table_fields(batch=batch)}
    priced = _priced_fields(batch, names)
    documents = list(batch_documents(batch=batch).iterator())
    completed = sum(document.status == Document.Status.COMPLETED for document in documents)
    reviewed = sum(document.reviewed_at is not None for document in documents)
    lines = [
        f"# {_md_text(' '.join(batch.name.split()))}",
        "",
        f"Status: {batch.get_status_display()} · Engine: {batch.get_engine_display()} · "
        f"{len(documents)} document{pluralize(len(documents))}, {completed} completed"
        + (f", {reviewed} reviewed by a person" if reviewed else ""),
        "",
        f"Prompt: {_md_text(' '.join(batch.extraction_prompt.split()))}",
        "",
        "## Summary",
        "",
    ]
    header = ["filename", "status", "checks"]
    for name in names:
        header += [name, f"{name} currency"] if name in priced else [name]
    summary = []
    for document in documents:
        fields = _result_fields(document.reviewed_result)
        row = [document.original_filename, document.status, _checks_status(document.result)]
        for name in names:
            value, _, status = _field_cells(fields.get(name), table=name in tables)
            mark = " (reviewed)" if status == "reviewed" else ""
            row.append(display_text(value) + mark if _has_value(value) else "")
            if name in priced:
                row.append(_currency(fields.get(name)) or "")
        summary.append(row)
    lines += _md_table(header, summary)
    layout = items_layout(batch) if tables else None
    for document in documents:
        lines += ["", f"## {_md_text(document.original_filename)}", ""]
        lines += _markdown_document(document, names, tables, layout)
    return ("\n".join(lines) + "\n").encode("utf-8"), "text/markdown; charset=utf-8"


def _markdown_document(
    document: Document, names: list[str], tables: set[str], layout: ItemsLayout | None
) -> list[str]:
    """One document's section: its status, then its values with status, page and quote."""
    if document.status != Document.Status.COMPLETED:
        # The error code is one of Sheaf's own; only the message can carry Markdown.
        code = f": `{document.error_code}` " if document.error_code else ""
        return [f"{document.get_status_display()}{code}{_md_cell(document.error_message)}"]
    checks = _checks_status(document.result)
    lines = [f"Completed · checks: {checks or 'none ran'}", ""]
    fields = _result_fields(document.reviewed_result)
    rows = []
    for name in names:
        entry = fields.get(name)
        value, _, status = _field_cells(entry, table=name in tables)
        cell = entry if isinstance(entry, dict) else {}
        if status == "reviewed":
            machine = display_text(cell.get("value")) or "no value"
            review = cell.get("review") or {}
            status = f"reviewed by {review.get('by')} (extracted: {machine})"
        shown = display_text(value) + (" rows" if name in tables and _has_value(value) else "")
        currency = _currency(entry)
        rows.append(
            [
                name,
                f"{shown} {currency}" if currency else shown,
                status,
                display_text(cell.get("page")),
                display_text(cell.get("quote")),
            ]
        )
    lines += _md_table(["field", "value", "status", "page", "quote"], rows)
    if layout is not None:
        first = 1 + len(layout.scalars)
        items = [
            [display_text(cell) for cell in row[first:]] for row in _item_rows_of(document, layout)
        ]
        lines += ["", "Line items:", ""]
        lines += _md_table(layout.header[first:], items) if items else ["No line items."]
    return lines


def _xlsx(batch: BatchProcess) -> tuple[bytes, str]:
    # openpyxl (with lxml and Pillow, 20 MB of every process that imports it) comes with the
    # export that writes a workbook, not with this module, which the workers import for checks.
    from batches.exports_xlsx import xlsx

    return xlsx(batch)


_WRITERS: dict[str, Callable[[BatchProcess], tuple[bytes, str]]] = {
    "csv": _csv,
    "json": _json,
    "md": _markdown,
    "xlsx": _xlsx,
    "items.csv": _items_csv,
}
