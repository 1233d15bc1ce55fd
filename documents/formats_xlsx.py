"""The sandbox's "read" operation for XLSX workbooks (`documents.formats` imports it on a
workbook's first read, so a child that reads only PDFs, CSV and TXT never loads openpyxl).

An XLSX is refused before anything is inflated when its zip declares more than the unpacked
limit, and while parsing when its shared strings or the cells iterated go past their caps. Each
sheet is a page, its rows rendered as `documents.formats.table_lines` renders a CSV's.
"""

from __future__ import annotations

import datetime
import zipfile
from collections.abc import Iterator
from typing import IO, Any

from openpyxl.cell.text import Text as CellText
from openpyxl.reader.excel import ExcelReader
from openpyxl.workbook import Workbook
from openpyxl.xml.constants import SHARED_STRINGS, SHEET_MAIN_NS
from openpyxl.xml.functions import iterparse

from documents.formats import PAGE_BREAK, Text, joined, reason_of, table_lines
from documents.sandbox import Refused


def read_xlsx(
    path: str, max_chars: int, *, max_unpacked_mb: int, max_shared_strings: int, max_cells: int
) -> Text:
    try:
        with zipfile.ZipFile(path) as archive:
            # zipfile never inflates an entry past its declared size, so the declared total bounds
            # what openpyxl can unpack, whatever the compressed bytes say.
            declared = sum(entry.file_size for entry in archive.infolist())
    except zipfile.BadZipFile as error:
        raise Refused("malformed", reason_of(error)) from None
    if declared > max_unpacked_mb * 2**20:
        raise Refused(
            "too_large",
            f"it unpacks to {declared / 2**20:,.0f} MB and the limit is {max_unpacked_mb:,} MB",
        )
    try:
        workbook = _open_workbook(path, max_shared_strings)
        try:
            sheets = workbook.worksheets
            text, cut = joined(_workbook_lines(sheets, max_cells), max_chars)
        finally:
            workbook.close()
    except (Refused, OSError, MemoryError):
        raise
    except Exception as error:  # openpyxl raises anything from KeyError to its own types
        raise Refused("malformed", reason_of(error)) from None
    return Text(text, page_count=len(sheets), truncated=cut)


class _CappedReader(ExcelReader):
    """openpyxl's reader with its table of shared strings read by `_string_table`.

    openpyxl reads the whole table before any cell: a 485 KB file can declare 11 million tiny
    strings (190 MB of XML, under the unpacked limit) that take gigabytes as Python objects.
    """

    def __init__(self, path: str, max_shared_strings: int) -> None:
        super().__init__(path, read_only=True, data_only=True, keep_links=False)
        self.max_shared_strings = max_shared_strings

    def read_strings(self) -> None:
        part = next(self.package.findall(SHARED_STRINGS), None)
        if part is not None:
            with self.archive.open(part.PartName[1:]) as source:
                self.shared_strings = _string_table(source, self.max_shared_strings)


def _open_workbook(path: str, max_shared_strings: int) -> Workbook:
    reader = _CappedReader(path, max_shared_strings)
    reader.read()
    return reader.wb


def _string_table(source: IO[bytes], limit: int) -> list[str]:
    """openpyxl's read_string_table, stopping past `limit` strings, and dropping each string's
    element once read (openpyxl keeps an empty element per string under the root)."""
    string_tag, text_tag = f"{{{SHEET_MAIN_NS}}}si", f"{{{SHEET_MAIN_NS}}}t"
    strings: list[str] = []
    root = None
    for event, node in iterparse(source, events=("start", "end")):
        if root is None:
            root = node
        if event != "end" or node.tag != string_tag:
            continue
        if len(strings) == limit:
            raise Refused(
                "too_large",
                f"it holds more than {limit:,} distinct texts (shared strings), the limit",
            )
        if len(node) == 1 and node[0].tag == text_tag:
            # Plain text, nearly every string: what openpyxl's Text gives, at a fifth of its cost.
            text = node[0].text or ""
        else:  # rich text runs, phonetic hints
            rich = CellText.from_tree(node)
            text = rich.content if rich is not None else ""
        strings.append(text.replace("x005F_", ""))
        root.clear()
    return strings


def _workbook_lines(sheets: list[Any], max_cells: int) -> Iterator[str]:
    """Each sheet is a page headed "Sheet: <name>", its cells rendered like CSV rows."""
    cells = 0

    def rows(sheet: Any) -> Iterator[list[str]]:
        nonlocal cells
        for row in sheet.iter_rows(values_only=True):
            # Empty cells render to nothing, so the text cap never stops a sheet of them; this
            # count does. An empty row costs about what a cell does.
            cells += max(len(row), 1)
            if cells > max_cells:
                raise Refused(
                    "too_large",
                    f"sheet {sheet.title!r} takes it past {max_cells:,} cells, the limit",
                )
            yield [_cell_text(value) for value in row]

    for number, sheet in enumerate(sheets):
        # The declared <dimension> could be A1:XFD1048576; padding rows to it is a CPU bomb.
        sheet.reset_dimensions()
        yield f"{PAGE_BREAK if number else ''}Sheet: {sheet.title}"
        yield from table_lines(rows(sheet))


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime.datetime):
        # Excel has no date type: a date is a datetime at midnight.
        if value.time() == datetime.time():
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    return str(value)
