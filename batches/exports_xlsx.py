"""The XLSX export (`batches.exports`, format ``xlsx``): typed cells, a header row that stays in
view and filters, and a sheet describing the batch. Its own module so that openpyxl is imported
only by the process that writes a workbook."""

from __future__ import annotations

import io
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, cast

from django.db.models import Count, Q
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from batches.exports import (
    display_text,
    item_rows,
    items_layout,
    neutralise_formula,
    table_fields,
    typed_table,
)
from batches.models import BatchProcess
from documents.models import Document

if TYPE_CHECKING:
    from openpyxl.worksheet._write_only import WriteOnlyWorksheet
    from openpyxl.worksheet.worksheet import Worksheet

# Excel refuses to open a workbook with a longer cell.
XLSX_MAX_CELL_LENGTH = 32_767
# The Batch sheet's table of the batch's fields.
FIELD_KEYS = ("name", "type", "description")
FIELD_TITLES = ("Field", "Type", "Description")


def _xlsx_cell(sheet: WriteOnlyWorksheet, text: str, *, bold: bool = False) -> Cell:
    # Control characters are stripped before neutralising, so "\x01=cmd" cannot become "=cmd".
    text = neutralise_formula(ILLEGAL_CHARACTERS_RE.sub("", text))[:XLSX_MAX_CELL_LENGTH]
    cell = WriteOnlyCell(sheet, value=text)
    cell.data_type = "s"
    if bold:
        cell.font = Font(bold=True)
    return cell


def _xlsx_typed(sheet: WriteOnlyWorksheet, value: Any, kind: str) -> Cell | Any:
    """A typed cell: numbers as numbers, dates as dates, booleans as booleans, else text."""
    if isinstance(value, bool) or value is None:
        return value
    if kind == "number" or isinstance(value, int | float):
        try:
            return value if isinstance(value, int | float) else Decimal(str(value))
        except InvalidOperation:
            pass
    if kind == "date" and isinstance(value, str):
        try:
            cell = WriteOnlyCell(sheet, value=datetime.strptime(value, "%Y-%m-%d"))
        except ValueError:
            pass
        else:
            cell.number_format = "yyyy-mm-dd"
            return cell
    return _xlsx_cell(sheet, display_text(value))


# Column widths in characters: a date or an amount fits the narrowest, a long text wraps past
# the widest rather than pushing every other column off the screen.
XLSX_MIN_WIDTH, XLSX_MAX_WIDTH = 10, 50


def _xlsx_sheet(sheet: WriteOnlyWorksheet, header: list[str], rows: list[list[Any]]) -> None:
    """A header row that stays in view and filters, each column as wide as its longest cell
    (within bounds)."""
    # A write-only sheet has the layout attributes of a normal one (openpyxl shares them before
    # the first row is written); the stubs only declare them on Worksheet.
    layout = cast("Worksheet", sheet)
    layout.freeze_panes = "A2"
    layout.auto_filter.ref = f"A1:{get_column_letter(len(header))}{len(rows) + 1}"
    for index, name in enumerate(header):
        longest = max([len(name), *(len(display_text(row[index])) for row in rows)])
        width = min(max(longest + 2, XLSX_MIN_WIDTH), XLSX_MAX_WIDTH)
        layout.column_dimensions[get_column_letter(index + 1)].width = width
    sheet.append([_xlsx_cell(sheet, name, bold=True) for name in header])


def _xlsx_about(sheet: WriteOnlyWorksheet, value: str | int | datetime | None) -> Any:
    """A value of the Batch sheet: text as text, counts as numbers, times as UTC date-times."""
    if isinstance(value, str):
        return _xlsx_cell(sheet, value)
    if isinstance(value, datetime):
        cell = WriteOnlyCell(sheet, value=value)
        cell.number_format = "yyyy-mm-dd hh:mm"
        return cell
    return value


def xlsx(batch: BatchProcess) -> tuple[bytes, str]:
    """The batch as an XLSX workbook: the Results sheet, an Items sheet when the batch has
    table fields, and a Batch sheet describing it."""
    workbook = Workbook(write_only=True)
    documents = workbook.create_sheet("Results")
    header, kinds, typed = typed_table(batch)
    rows = list(typed)
    _xlsx_sheet(documents, header, rows)
    for row in rows:
        documents.append([_xlsx_typed(documents, v, k) for v, k in zip(row, kinds, strict=True)])

    if table_fields(batch=batch):
        items = workbook.create_sheet("Items")
        layout = items_layout(batch)
        kinds = [layout.types.get(name, "string") for name in layout.header]
        kinds[-2] = "number"
        lines = list(item_rows(batch, layout))
        _xlsx_sheet(items, layout.header, lines)
        for line in lines:
            items.append([_xlsx_typed(items, v, k) for v, k in zip(line, kinds, strict=True)])

    about = workbook.create_sheet("Batch")
    for column, width in (("A", 22), ("B", 60), ("C", 40)):
        cast("Worksheet", about).column_dimensions[column].width = width
    counts = batch.documents.aggregate(
        documents=Count("id"),
        completed=Count("id", filter=Q(status=Document.Status.COMPLETED)),
        failed=Count("id", filter=Q(status=Document.Status.FAILED)),
        reviewed=Count("id", filter=Q(reviewed_at__isnull=False)),
    )
    for label, value in (
        ("Name", batch.name),
        ("Status", batch.get_status_display()),
        ("Engine", batch.get_engine_display()),
        ("Prompt", batch.extraction_prompt),
        ("Documents", counts["documents"]),
        ("Completed", counts["completed"]),
        ("Failed", counts["failed"]),
        ("Reviewed by a person", counts["reviewed"]),
        ("Created", batch.created_at.replace(tzinfo=None)),
        ("Finished", batch.completed_at.replace(tzinfo=None) if batch.completed_at else None),
    ):
        about.append([_xlsx_cell(about, label, bold=True), _xlsx_about(about, value)])
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
