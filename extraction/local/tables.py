"""The offline engine's reading of a line-item table from word boxes.

The table is found by its header row (a row whose cells name two or more of the columns
`vocabulary.TABLE_COLUMNS` knows, a description or an amount among them); the user's columns are
mapped to the header's by their names' synonyms; the rows under it are read by the header cells'
x positions until the totals block (a row that opens with a subtotal, total or tax word and has
no quantity or price) or the table's end. The table goes on on a later page, after a repeated
header or, without one, from its first row with an amount. A row without numbers right under an
item continues that item's description. Documents without word boxes give no rows: their lines
do not say reliably which text belongs to which column.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from extraction.fields import ColumnSpec
from extraction.local.layout import Cell, Layout, Row
from extraction.local.lines import label_key
from extraction.local.vocabulary import TABLE_COLUMNS, TABLE_END_WORDS
from extraction.normalise import DateOrder, parse_amount, parse_boolean, parse_date

_KEYS = {
    concept: frozenset(label_key(phrase) for phrase in phrases)
    for concept, phrases in TABLE_COLUMNS.items()
}
# A continuation line of a description sits at most this many row heights under the row above.
_CONTINUES = 1.2


@dataclass
class TableRow:
    cells: dict[str, list[str]] = field(default_factory=dict)
    quotes: list[str] = field(default_factory=list)
    pages: list[int] = field(default_factory=list)
    bottom: float = 0.0


def _concept(text: str) -> str | None:
    key = label_key(text)
    return next((concept for concept, keys in _KEYS.items() if key in keys), None)


def _header(row: Row) -> dict[str, Cell] | None:
    """The row's cells by the concept they head, when the row is a line-item table's header."""
    found: dict[str, Cell] = {}
    for cell in row.cells:
        concept = _concept(cell.text)
        if concept is not None and concept not in found:
            found[concept] = cell
    if len(found) >= 2 and ("description" in found or "amount" in found):
        return found
    return None


def _column_of(cell: Cell, header: dict[str, Cell]) -> str:
    """The header column a cell stands under: the one it overlaps most, else the nearest."""

    def distance(concept: str) -> float:
        head = header[concept]
        overlap = cell.overlap(head)
        if overlap > 0:
            return -overlap
        return min(abs(cell.x0 - head.x1), abs(head.x0 - cell.x1))

    return min(header, key=distance)


def _numeric(text: str) -> bool:
    return parse_amount(text) is not None


def _ends(row: Row, columns: dict[int, str]) -> bool:
    words = set(label_key(row.cells[0].text).split())
    if not words & TABLE_END_WORDS:
        return False
    if words <= TABLE_END_WORDS:
        return True  # "Total" alone opens a totals row, even one with a quantity column
    return not any(
        columns[number] in ("quantity", "unit price") and _numeric(cell.text)
        for number, cell in enumerate(row.cells)
    )


def read_table(layout: Layout) -> list[TableRow]:
    """The rows of the document's first line-item table, in order; [] when it has none."""
    ordered = [layout.rows[line] for line in sorted(layout.rows)]
    header: dict[str, Cell] | None = None
    rows: list[TableRow] = []
    previous: Row | None = None
    closed = False  # the table's rows on this page are over
    for row in ordered:
        found = _header(row)
        if found is not None and (header is None or rows):
            header, previous = found, None
            continue
        if header is None:
            continue
        if rows and row.page != rows[-1].pages[-1]:
            closed = False
        if previous is not None and row.page != previous.page:
            previous = None
        columns = {number: _column_of(cell, header) for number, cell in enumerate(row.cells)}
        if _ends(row, columns):
            break
        numbers = [
            number
            for number, cell in enumerate(row.cells)
            if columns[number] != "description" and _numeric(cell.text)
        ]
        text = " ".join(row.texts)
        if numbers and len(row.cells) >= 2 and not closed:
            item = TableRow(pages=[row.page], quotes=[text], bottom=row.bottom)
            for number, cell in enumerate(row.cells):
                item.cells.setdefault(columns[number], []).append(cell.text)
            rows.append(item)
            previous = row
        elif (
            rows
            and previous is not None
            and row.top - previous.bottom <= _CONTINUES * previous.height
            and all(column == "description" for column in columns.values())
        ):
            last = rows[-1]
            last.cells.setdefault("description", []).extend(row.texts)
            last.quotes.append(text)
            previous = row
        elif rows and row.page == rows[-1].pages[-1]:
            previous, closed = None, True  # under the table on its page: a footer, a note
    return rows


def column_concept(column: ColumnSpec) -> str | None:
    return _concept(column["name"])


def typed(text: str | None, column_type: str, order: DateOrder) -> Any:
    """A cell's value as its column's type, or None."""
    if text is None:
        return None
    if column_type == "number":
        amount = parse_amount(text)
        return None if amount is None else amount.value
    if column_type == "date":
        return parse_date(text, order)
    if column_type == "boolean":
        return parse_boolean(text)
    return text
