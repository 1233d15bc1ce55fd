"""The offline engine's reading of a line-item table from word boxes.

The table is found by its header row: a row whose cells name a description and one more column,
or three columns, that `vocabulary.TABLE_COLUMNS` knows (or, for a header it does not know as a
whole, one of `TABLE_COLUMN_WORDS`: "Prezzo unit.", "Unit price (EUR)"); a second line of
header words under it ("Unit" over "price") adds the columns it names, and "Description" wins
over an item-code column ("Item", "Artikel"). Every cell of the header is a column, the ones the
vocabulary does not know too (VAT, gross, unit of measure), so a number under them never falls
into a known column beside them. The rows under the header are read by the header cells' x
positions:

- a row with a description and a number in the quantity, unit price or amount column is an item;
- a row holding only description text, close under an item, continues that item's description
  (also at the top of the next page, under its repeated header, when the table ran to the foot
  of the page before: the row then spans both pages), unless an item's numbers follow on a row
  of their own (set half-way down a description, as HTML tables set them): those take the lines
  nearer to them;
- a row that carries a running sum over a page break ("Carried forward", "Übertrag") is passed
  over;
- the totals block ends the table: a row that opens with a subtotal, total or tax word and has no
  quantity or price, or a row whose label starts right of the description column;
- anything else under the items ends the table on its page (a note), except at the page's foot
  (a footer, a page number).

The table goes on on a later page after a repeated header or, without one, from a row with a
description and two numbers. A page scanned askew is read along its lines' slope, and on a
scanned page the pieces of one line are one row; a scanned quantity whose decimal comma OCR lost
gets it back where the row's arithmetic proves it. A document without a header may be a till
receipt: its "2 x 1,91   3,82" lines whose product is their amount are its items. Documents
without word boxes give no rows: their lines do not say reliably which text belongs to which
column.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import cached_property, lru_cache
from itertools import pairwise
from typing import Any

from extraction.contract import PageLayout, Word
from extraction.fields import ColumnSpec
from extraction.local.layout import Cell, Layout, Row, page_rows
from extraction.local.lines import DIGIT, label_key
from extraction.local.vocabulary import (
    TABLE_CARRY_PHRASES,
    TABLE_COLUMN_WORDS,
    TABLE_COLUMNS,
    TABLE_END_WORDS,
    TABLE_OTHER_WORDS,
    TABLE_TEXT_WORDS,
    TABLE_UNIT_WORDS,
)
from extraction.normalise import Amount, DateOrder, parse_amount, parse_boolean, parse_date

_KEYS = {
    concept: frozenset(label_key(phrase) for phrase in phrases)
    for concept, phrases in TABLE_COLUMNS.items()
}
_CARRY = tuple(frozenset(label_key(phrase).split()) for phrase in TABLE_CARRY_PHRASES)
_NUMBERS = ("quantity", "unit price", "amount")
_LETTERS = re.compile(r"[^\W\d_]+")
# A number cell's unit or currency is one word of at most this many letters ("Stück", "hours").
_UNIT_LETTERS = 5
# A continuation line of a description sits at most this many row heights under the row above.
_CONTINUES = 1.2
# A page's lines slope when they drop more than this per point rightwards (0.2 degrees).
_LEVEL = 0.0035
# The slope is measured from a word to the next one on its line: it starts within this many word
# heights to the right, its middle within this share of a height; at least _SLOPES such pairs.
_NEXT_WORD = 1.5
_SAME_LINE = 0.6
_SLOPES = 12
# Two rows are pieces of one line when this share of the lower one's height is shared.
_ONE_LINE = 0.5
# A totals row's label has at most this many words.
_LABEL_WORDS = 6
# The foot of a page, where its footer and page number stand: below this share of its height.
_FOOT = 0.88


@dataclass
class TableRow:
    """One item: its cells' texts by column key (a concept, else the header's label key), the
    rows of words it was read from and the pages they are on."""

    cells: dict[str, list[str]] = field(default_factory=dict)
    quotes: list[str] = field(default_factory=list)
    pages: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Column:
    key: str  # the concept it holds, else its header's label key ("" for an empty one)
    head: Cell


@lru_cache(maxsize=4096)
def _concept(text: str) -> str | None:
    key = label_key(text)
    exact = next((concept for concept, keys in _KEYS.items() if key in keys), None)
    if exact is not None or DIGIT.search(text):
        return exact
    words = set(key.split())
    if words & TABLE_OTHER_WORDS:
        return None
    price = words & TABLE_COLUMN_WORDS["unit price"]
    amount = words & TABLE_COLUMN_WORDS["amount"]
    if price and (words & TABLE_UNIT_WORDS or not amount):
        return "unit price"
    if amount:
        return "amount"
    return next(
        (c for c in ("quantity", "description") if words & TABLE_COLUMN_WORDS[c]),
        None,
    )


def _header(row: Row) -> tuple[_Column, ...] | None:
    """The row's columns, when the row is a line-item table's header."""
    if len(row.cells) < 2:
        return None
    concepts = [_concept(cell.text) for cell in row.cells]
    named = {concept for concept in concepts if concept is not None}
    if len(named) < 3 and not (len(named) == 2 and "description" in named):
        return None
    texts = [
        n
        for n, (cell, concept) in enumerate(zip(row.cells, concepts, strict=True))
        if concept == "description" and set(label_key(cell.text).split()) & TABLE_TEXT_WORDS
    ]
    if texts:  # "Item | Description": the item's text is under "Description", not its code
        concepts = [
            None if c == "description" and n != texts[0] else c for n, c in enumerate(concepts)
        ]
    columns = []
    for cell, concept in zip(row.cells, concepts, strict=True):
        if concept is not None and concept in named:
            named.discard(concept)  # a concept's first cell holds it; others are other columns
            columns.append(_Column(concept, cell))
        else:
            columns.append(_Column(label_key(cell.text), cell))
    return tuple(columns)


def _second_line(columns: tuple[_Column, ...], header: Row, row: Row) -> tuple[_Column, ...] | None:
    """The header's columns with `row`, the second line of its words ("Unit" over "price"),
    when the row is one: close under it, words only, each under a header cell, and naming a
    column the first line alone does not."""
    if row.page != header.page or row.top - header.bottom > _CONTINUES * header.height:
        return None
    if any(DIGIT.search(cell.text) for cell in row.cells):
        return None
    texts = {column.head: [column.head.text] for column in columns}
    for cell in row.cells:
        under = [column.head for column in columns if cell.overlap(column.head) > 0]
        if len(under) != 1:
            return None
        texts[under[0]].append(cell.text)
    merged = Row(
        header.page,
        header.top,
        row.bottom,
        tuple(
            Cell(" ".join(texts[column.head]), column.head.x0, column.head.x1) for column in columns
        ),
    )
    found = _header(merged)
    if found is None or not _concepts(found) > _concepts(columns):
        return None
    return found


def _concepts(columns: tuple[_Column, ...]) -> frozenset[str]:
    return frozenset(column.key for column in columns if column.key in _KEYS)


@lru_cache(maxsize=8192)
def _numeric(text: str) -> bool:
    """Whether the cell is a number: an amount, perhaps with its currency or one short unit
    ("12,50 €", "CHF 931.26", "2 Stk", "1.5 hrs"), not text with a number in it ("Cable 5 m")."""
    if DIGIT.search(text) is None:
        return False
    words = _LETTERS.findall(text)
    if len(words) > 1 or any(len(word) > _UNIT_LETTERS for word in words):
        return False
    return _amount(text) is not None


@lru_cache(maxsize=8192)
def _amount(text: str) -> Amount | None:
    """`parse_amount`, once per cell text: a row's numbers are looked at while reading it and
    again when typing its cells."""
    return parse_amount(text)


def _column_of(cell: Cell, columns: tuple[_Column, ...]) -> _Column:
    """The header column a cell stands under: the one it overlaps most, else the nearest."""
    best, nearest = columns[0], float("inf")
    for column in columns:
        head = column.head
        overlap = min(cell.x1, head.x1) - max(cell.x0, head.x0)
        # An overlap counts as a negative distance, so the widest overlap is the nearest.
        distance = -overlap if overlap > 0 else min(abs(cell.x0 - head.x1), abs(head.x0 - cell.x1))
        if distance < nearest:
            best, nearest = column, distance
    return best


class _Line:
    """A row under the header, its cells by the column they stand under."""

    def __init__(self, row: Row, columns: tuple[_Column, ...]) -> None:
        self.row, self.columns = row, columns
        self.keys = [_column_of(cell, columns).key for cell in row.cells]
        # The number columns that hold a number in this row.
        self.numbers = {
            key
            for key, cell in zip(self.keys, row.cells, strict=True)
            if key in _NUMBERS and _numeric(cell.text)
        }

    @cached_property
    def label_words(self) -> set[str]:
        return set(label_key(self.row.cells[0].text).split())

    def describes(self) -> bool:
        """Whether a cell stands under the description column, starting where its text does."""
        head = next((c.head for c in self.columns if c.key == "description"), None)
        if head is None:
            return True
        return any(
            key == "description" and cell.x0 <= head.x1 and not _numeric(cell.text)
            for key, cell in zip(self.keys, self.row.cells, strict=True)
        )

    def only_description(self) -> bool:
        return all(key == "description" for key in self.keys)

    def carries(self) -> bool:
        """A running sum carried over a page break: "Carried forward", "Übertrag", "Report"."""
        words = self.label_words
        return (
            bool(words)
            and any(phrase <= words for phrase in _CARRY)
            and not (self.numbers & {"quantity", "unit price"})
        )

    def ends(self) -> bool:
        """The totals block under the items: "Subtotal", "Total", "VAT 20 %", "Montant HT"; or a
        label, with a number, that starts right of the description column."""
        words = self.label_words
        if len(words) > _LABEL_WORDS:
            return False  # a sentence, not a label
        if words & TABLE_END_WORDS:
            if words <= TABLE_END_WORDS:
                return True  # "Total" alone opens a totals row, even one with a quantity
            return not self.numbers & {"quantity", "unit price"}
        first = self.row.cells[0]
        return not self.describes() and not _numeric(first.text) and bool(self.numbers)


class _Reader:
    """Reads the rows under a header, page after page, until the table ends.

    A line of description only waits (`pending`) until the next row says whose it is: the
    item above's, as a continuation, unless the next row is an item's numbers with no
    description of their own (numbers set in the middle of a description over several lines,
    as an HTML table sets them), which then take the waiting lines nearer to them than to the
    item above."""

    def __init__(self, heights: dict[int, float]) -> None:
        self.heights = heights
        self.columns: tuple[_Column, ...] | None = None
        self.rows: list[TableRow] = []
        self.page = 0
        self.previous: Row | None = None  # the row a continuation line would stand under
        self.chained = False  # `previous` belongs to the last item
        self.closed = False  # the table's rows on this page are over
        self.open_end = False  # the table ran to the foot of the page before this one
        self.headed = False  # this page repeats the header
        self.pending: list[Row] = []  # description lines not yet given to an item
        self.anchor: Row | None = None  # the row of the last item's numbers

    def take(self, row: Row) -> bool:
        """Reads one row; False once the table has ended."""
        found = _header(row)
        if found is not None and (
            self.columns is None or (self.rows and _concepts(found) <= _concepts(self.columns))
        ):
            # A header again (on the next page): the table goes on under it. A two-line
            # header's first line names fewer columns than both; the columns stay those.
            self._turn(row.page)
            if self.columns is None or _concepts(found) == _concepts(self.columns):
                self.columns = found
            self.headed, self.previous, self.chained = True, row, False
            return True
        if self.columns is None:
            return True
        if self.previous is not None and not self.chained and not self.rows:
            below = _second_line(self.columns, self.previous, row)
            if below is not None:
                self.columns, self.previous = below, row
                return True
        self._turn(row.page)
        line = _Line(row, self.columns)
        if line.ends() and not self._at_foot(row):
            self.flush()
            return False
        if line.carries():
            if self.previous is not None:
                self.previous = row
            return True
        if self._item(line):
            self.flush()
            self._add(line, [])
        elif self._centred(line):
            self._add(line, self._split(row))
        elif self._waits(line):
            self.pending.append(row)
            self.previous = row
        elif self.rows and (row.page == self.rows[-1].pages[-1] or self.headed):
            # A note under the items ends them on this page; the page's foot (a footer, a page
            # number) does not, so a table that runs to it goes on on the next page.
            self.flush()
            if not self._at_foot(row):
                self.closed = True
            self.previous = None
        return True

    def flush(self) -> None:
        """The waiting description lines continue the last item (none: they head the table)."""
        for row in self.pending:
            self._attach(row)
        self.pending = []

    def _attach(self, row: Row) -> None:
        if not self.rows:
            return
        last = self.rows[-1]
        last.cells.setdefault("description", []).extend(row.texts)
        last.quotes.append(" ".join(row.texts))
        if row.page not in last.pages:
            last.pages.append(row.page)

    def _split(self, numbers: Row) -> list[Row]:
        """The waiting lines of the item whose `numbers` stand below them, the others going to
        the item above: each to the nearer of the two rows of numbers."""
        mine = []
        above = self.anchor
        for row in self.pending:
            if (
                above is not None
                and above.page == row.page
                and _middle(row) - _middle(above) < _middle(numbers) - _middle(row)
            ):
                self._attach(row)
            else:
                mine.append(row)
        self.pending = []
        return mine

    def _at_foot(self, row: Row) -> bool:
        height = self.heights.get(row.page)
        return height is not None and height > 0 and row.top > _FOOT * height

    def _turn(self, page: int) -> None:
        if page == self.page:
            return
        self.open_end = bool(self.rows) and not self.closed
        self.page, self.closed, self.headed = page, False, False
        self.previous = None  # until the header repeats, or a carried sum stands above

    def _item(self, line: _Line) -> bool:
        if self.closed or len(line.row.cells) < 2 or not line.describes():
            return False
        numbers = line.numbers
        if self.rows and line.row.page != self.rows[-1].pages[-1] and not self.headed:
            return len(numbers) >= 2  # a page without the header: only rows that look the part
        return bool(numbers)

    def _centred(self, line: _Line) -> bool:
        """An item's numbers alone on their row, right under description lines waiting."""
        if self.closed or not self.pending or line.describes() or len(line.numbers) < 2:
            return False
        last = self.pending[-1]
        return line.row.page == last.page and line.row.top - last.bottom <= (
            _CONTINUES * last.height
        )

    def _add(self, line: _Line, above: list[Row]) -> None:
        row = line.row
        item = TableRow(
            pages=sorted({r.page for r in (*above, row)}),
            quotes=[" ".join(r.texts) for r in (*above, row)],
        )
        for text in above:
            item.cells.setdefault("description", []).extend(text.texts)
        for key, cell in zip(line.keys, row.cells, strict=True):
            item.cells.setdefault(key, []).append(cell.text)
        self.rows.append(item)
        self.previous, self.chained, self.anchor = row, True, row

    def _waits(self, line: _Line) -> bool:
        """A description line close under the last item (or under the header, or at the top of
        the next page when the table ran to the foot of the page before)."""
        previous, row = self.previous, line.row
        if previous is None or self.closed or not line.only_description():
            return False
        if (
            self.rows
            and not self.chained
            and not (self.open_end and self.rows[-1].pages[-1] != row.page)
        ):
            return False
        return row.top - previous.bottom <= _CONTINUES * previous.height


def _middle(row: Row) -> float:
    return (row.top + row.bottom) / 2


def read_table(layout: Layout, pages: Sequence[PageLayout] = ()) -> list[TableRow]:
    """The rows of the document's first line-item table, in order; [] when it has none. A
    document without a table header may be a till receipt (see `_receipt_rows`)."""
    rows = _rows(layout, pages)
    reader = _Reader(layout.heights)
    for row in rows:
        if not reader.take(row):
            break
    reader.flush()
    if reader.columns is None:
        return _receipt_rows(rows)
    scanned = {page.number for page in pages if page.ocr_confidence is not None}
    for item in reader.rows:
        _settle_quantity(item)
        if item.pages[0] in scanned:
            _restore_point(item)
    return reader.rows


# "1.000" and "1,000" are a thousand or one, depending on the document's decimal mark.
_AMBIGUOUS = re.compile(r"(?P<units>\d{1,3})(?P<mark>[.,])(?P<rest>\d{3})(?![\d.,])")
_CENTS_MARK = re.compile(r"\d(?P<mark>[.,])\d{2}(?![\d.,])")


def _settle_quantity(item: TableRow) -> None:
    """A quantity written "1,000" or "1.000" (an ERP's three decimals, or a thousand): the one
    reading that makes quantity x unit price the row's amount, else the one the row's money
    says (its cents come after its decimal mark)."""
    texts = item.cells.get("quantity")
    ambiguous = _AMBIGUOUS.search(texts[0]) if texts else None
    if texts is None or ambiguous is None:
        return
    one = Decimal(f"{ambiguous['units']}.{ambiguous['rest']}")
    thousand = Decimal(f"{ambiguous['units']}{ambiguous['rest']}")
    money = [(item.cells.get(key) or [""])[0] for key in ("unit price", "amount")]
    price, amount = (_amount(text) for text in money)
    chosen = None
    if price is not None and amount is not None:
        fits = [
            reading
            for reading in (one, thousand)
            if abs(reading * Decimal(price.value) - Decimal(amount.value)) <= _HALF_CENT
        ]
        chosen = fits[0] if len(fits) == 1 else None
    if chosen is None:
        marks = {found["mark"] for text in money for found in _CENTS_MARK.finditer(text)}
        if len(marks) == 1:
            chosen = one if marks == {ambiguous["mark"]} else thousand
    if chosen is not None:
        texts[0] = f"{chosen.normalize():f}"


def _restore_point(item: TableRow) -> None:
    """A scanned quantity whose decimal comma OCR lost ("125" for "12,5") gets it back where the
    row's unit price times it is then its amount, to the cent."""
    texts = [item.cells.get(key, [None])[0] for key in _NUMBERS]
    if any(text is None for text in texts):
        return
    quantity, price, amount = (_amount(text or "") for text in texts)
    if quantity is None or price is None or amount is None:
        return
    digits = quantity.value
    if not digits.isdigit() or len(digits) < 2:
        return
    price_value, amount_value = Decimal(price.value), Decimal(amount.value)
    if abs(Decimal(digits) * price_value - amount_value) <= _HALF_CENT:
        return
    for point in range(len(digits) - 1, 0, -1):
        restored = f"{digits[:point]}.{digits[point:]}"
        if abs(Decimal(restored) * price_value - amount_value) <= _HALF_CENT:
            item.cells["quantity"] = [restored, *item.cells["quantity"][1:]]
            return


def _rows(layout: Layout, pages: Sequence[PageLayout]) -> list[Row]:
    """The document's rows, top to bottom and page after page: as the layout read them, except
    on a page whose lines slope (a sheet scanned askew), where the words are read again along
    the slope so that a table row is one row, not pieces of two, and on a scanned page, where
    pieces of one line are joined."""
    by_page: dict[int, list[Row]] = {}
    for line in sorted(layout.rows):
        row = layout.rows[line]
        by_page.setdefault(row.page, []).append(row)
    for page in pages:
        if page.number not in by_page:
            continue
        slope = _slope(page.words)
        if abs(slope) > _LEVEL:
            by_page[page.number] = _joined(page_rows(_levelled(page, slope)))
        elif page.ocr_confidence is not None:
            by_page[page.number] = _joined(by_page[page.number])
    return [row for number in sorted(by_page) for row in by_page[number]]


def _joined(rows: list[Row]) -> list[Row]:
    """The page's rows with the pieces of one line joined: rows one after the other whose
    heights mostly overlap and whose cells do not, as OCR boxes of one line, some of them
    shorter or set a little lower than others, can be read."""
    joined: list[Row] = []
    for row in rows:
        last = joined[-1] if joined else None
        if last is not None and _one_line(last, row):
            cells = tuple(sorted((*last.cells, *row.cells), key=lambda cell: cell.x0))
            row = Row(last.page, min(last.top, row.top), max(last.bottom, row.bottom), cells)
            joined[-1] = row
        else:
            joined.append(row)
    return joined


def _one_line(above: Row, below: Row) -> bool:
    shared = min(above.bottom, below.bottom) - max(above.top, below.top)
    if shared < _ONE_LINE * min(above.height, below.height):
        return False
    return not any(a.overlap(b) > 0 for a in above.cells for b in below.cells)


def _slope(words: Sequence[Word]) -> float:
    """How far a line of the page drops per point rightwards: the median slope from a word to
    the next one on its line, the words being in reading order (a reader gives them line by
    line); 0 when too few words say."""
    slopes = []
    for word, after in pairwise(words):
        height = word.bottom - word.top
        gap = after.x0 - word.x1
        rise = (after.top + after.bottom - word.top - word.bottom) / 2
        if -1 < gap < _NEXT_WORD * height and abs(rise) < _SAME_LINE * height:
            slopes.append(rise / ((after.x0 + after.x1 - word.x0 - word.x1) / 2))
    if len(slopes) < _SLOPES:
        return 0.0
    return statistics.median(slopes)


def _levelled(page: PageLayout, slope: float) -> PageLayout:
    """The page's words moved up or down so that its sloping lines lie level."""
    words = []
    for word in page.words:
        drop = slope * (word.x0 + word.x1) / 2
        words.append(Word(word.text, word.x0, word.top - drop, word.x1, word.bottom - drop))
    return replace(page, words=tuple(words))


# "2 x 3,50", "1,5 kg x 2.00", "3 Stk * 1,99", "2 @ 4.50": a quantity times a unit price.
_TIMES = re.compile(
    r"(?P<quantity>\d+(?:[.,]\d+)?)\s*(?:[^\W\d_]{1,5}\.?\s*)?[x\u00d7*@]\.?\s*"
    r"(?P<price>-?(?:\d{1,3}(?:[ .,'\u00a0\u202f]\d{3})+|\d+)(?:[.,]\d+)?)(?=\s|$)",
    re.IGNORECASE,
)
# A receipt line proves itself when its quantity times its price rounds to its amount.
_HALF_CENT = Decimal("0.005")
_NAME = re.compile(r"[^\W\d_]{2,}")


# OCR reads "139.20" as "139. 20" now and then: a decimal point, a space and the cents.
_SPACED_CENTS = re.compile(r"(?<=\d)([.,]) (?=\d\d(?:\D|$))")
# On a coarse scan the decimal point of a whole-euro amount may come out as a dash, a colon or
# a semicolon ("63 -10", "35: 65"): taken so only where the line's arithmetic proves it.
_SMUDGED_POINT = re.compile(r"^(\d+) ?[-:;.,] ?(\d\d)$")


def _ocr_number(text: str) -> str:
    return _SPACED_CENTS.sub(r"\1", text)


def _amounts(text: str) -> list[Amount]:
    """What a receipt line's amount may read as: as written, or with a smudged decimal point."""
    read = [_ocr_number(text)]
    smudged = _SMUDGED_POINT.fullmatch(text)
    if smudged is not None:
        read.append(f"{smudged[1]}.{smudged[2]}")
    return [amount for amount in map(parse_amount, read) if amount is not None and _numeric(text)]


def _receipt_rows(rows: list[Row]) -> list[TableRow]:
    """A receipt's items, which have no header: a line "quantity x unit price" with the amount
    beside it, under the item's name ("Aktenordner" / "2 x 1,91   3,82"), or all on one line
    ("Aktenordner 2 x 1,91 3,82"). A line counts only when its quantity times its price is its
    amount, to the cent, so prices, dates and totals are never taken for items; a name the
    scanner could not read leaves the description empty."""
    items: list[TableRow] = []
    for number, row in enumerate(rows):
        text = " ".join(row.texts)
        times = _TIMES.search(text)
        if times is None:
            continue
        quantity, price = parse_amount(times["quantity"]), parse_amount(times["price"])
        if quantity is None or price is None:
            continue
        product = Decimal(quantity.value) * Decimal(price.value)
        amount = next(
            (
                amount
                for amount in _amounts(text[times.end() :].strip())
                if abs(product - Decimal(amount.value)) <= _HALF_CENT
            ),
            None,
        )
        if amount is None:
            continue
        item = TableRow(quotes=[text], pages=[row.page])
        item.cells = {"quantity": [times["quantity"]], "unit price": [times["price"]]}
        item.cells["amount"] = [amount.value]
        name = text[: times.start()].strip()
        if not name:
            above = _name_line(rows, number)
            if above is None:
                continue  # nothing names it: no item
            name = " ".join(above.texts)
            item.quotes.insert(0, name)
        if _NAME.search(name):  # else a speck the scanner saw: the item has no description
            item.cells["description"] = [name]
        items.append(item)
    return items


def _name_line(rows: list[Row], number: int) -> Row | None:
    """The line right above a receipt's "quantity x price" line, when it is text, not another
    item's line or a number."""
    if number == 0:
        return None
    above, row = rows[number - 1], rows[number]
    text = " ".join(above.texts)
    if (
        above.page != row.page
        or row.top - above.bottom > _CONTINUES * above.height
        or _TIMES.search(text)
        or _numeric(text)
        or _numeric(above.cells[-1].text)
        or not text.strip("-=_*. ")
    ):
        return None
    return above


def column_concept(column: ColumnSpec) -> str | None:
    """The concept a user's column names (description, quantity, unit price, amount), if any."""
    return _concept(column["name"])


def column_key(column: ColumnSpec) -> str:
    """Where a user's column finds its cells in a `TableRow`: the concept its name says, else
    a header cell of the same name."""
    return column_concept(column) or label_key(column["name"])


def typed(text: str | None, column_type: str, order: DateOrder) -> Any:
    """A cell's value as its column's type, or None."""
    if text is None:
        return None
    if column_type == "number":
        amount = _amount(text)
        return None if amount is None else amount.value
    if column_type == "date":
        return parse_date(text, order)
    if column_type == "boolean":
        return parse_boolean(text)
    return text
