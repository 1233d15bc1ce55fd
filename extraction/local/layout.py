"""The offline engine's reading of word boxes: rows and cells from a page's geometry, and the
label/value pairs only geometry shows.

Words whose vertical middles agree make a row; within a row, a gap wider than about two spaces
starts a new cell, so a label and its value printed in two columns ("Total due      $1,234.50")
are two cells even where the text has a single space between them. The rows become the index's
lines (cells separated by tabs), and these pairs are added from the geometry:

- a label with nothing to its right takes the cell right below it that overlaps it horizontally
  (a label stacked over its value, a header block's table of labels over values);
- a table's header row takes the first row under it, column by column, and counts for little
  when more rows follow (a table of goods, whose "Amount" column is per line).

Pages without words (text files, or pages the reader found no boxes for) keep the text's lines,
where a single-spaced row of known labels over a row of values is split by the values' shapes
(`extraction.local.header_rows`).
"""

from __future__ import annotations

from dataclasses import dataclass

from extraction.contract import PAGE_BREAK, PageLayout, Word
from extraction.local.header_rows import header_row_pairs
from extraction.local.lines import (
    DIGIT,
    KNOWN_KEYS,
    LINE_ITEMS,
    NEXT_LINE,
    TABLE,
    DocumentIndex,
    SourceLine,
    is_header_row,
    is_heading,
    is_line_item_header,
    label_key,
    page_lines,
)
from extraction.quotes import QuoteChecker

# Words are on one row when their middles are closer than this share of the smaller height.
_SAME_ROW = 0.4
# A gap wider than this share of the font's height (about two and a half spaces) splits cells.
_CELL_GAP = 0.6
# On an OCRed page, a gap wider than this many usual word heights (of ink) splits cells, and
# words this many usual heights from a row's mean level are on another row.
_OCR_CELL_GAP = 1.6
_OCR_SAME_ROW = 0.5
# Measuring skew: words at most this many heights apart continue a run along a line, and a
# run this many heights long or longer counts; with fewer such runs the page is taken as straight.
_RUN_GAP = 20.0
_RUN = 10.0
_SKEW_EVIDENCE = 3
# A value under its label starts at most this many label heights below the label's bottom.
_BELOW = 1.5
# Rows of a table are at most this many heights apart.
_TABLE_ROWS = 2.0
_HEADER_WORDS = 16
# A value cell reaching this many heights under a second header cell spans two columns.
_SPANS = 0.3


@dataclass(frozen=True, slots=True)
class Cell:
    text: str
    x0: float
    x1: float

    def overlap(self, other: Cell) -> float:
        return min(self.x1, other.x1) - max(self.x0, other.x0)


@dataclass(frozen=True, slots=True)
class Row:
    """One line of a page, its cells left to right; distances in points from the top."""

    page: int
    top: float
    bottom: float
    cells: tuple[Cell, ...]

    @property
    def height(self) -> float:
        return max(self.bottom - self.top, 1.0)

    @property
    def texts(self) -> list[str]:
        return [cell.text for cell in self.cells]


def _height(word: Word) -> float:
    return max(word.bottom - word.top, 1.0)


def _middle(word: Word) -> float:
    return (word.top + word.bottom) / 2


def _skew(words: tuple[Word, ...], height: float) -> float:
    """How much a page's lines climb or fall per point to the right. A scan or a photo is
    rarely quite straight, and over a page's width a degree moves a line's end by more than its
    height.

    Words that follow each other in reading order, left to right at about the same height, make
    a run (a line, or the cells of a table's row); the slope of each long run is fitted by least
    squares, and the page's is their median. Short runs say little: word boxes are rounded to
    whole pixels."""
    runs: list[list[Word]] = []
    for word in words:
        if runs:
            last = runs[-1][-1]
            if (
                word.x0 > last.x1 - 1
                and word.x0 - last.x1 < _RUN_GAP * height
                and abs(_middle(word) - _middle(last)) < _SAME_ROW * height
            ):
                runs[-1].append(word)
                continue
        runs.append([word])
    slopes = sorted(
        _slope(run) for run in runs if len(run) >= 3 and run[-1].x0 - run[0].x0 >= _RUN * height
    )
    return slopes[len(slopes) // 2] if len(slopes) >= _SKEW_EVIDENCE else 0.0


def _slope(run: list[Word]) -> float:
    xs = [(word.x0 + word.x1) / 2 for word in run]
    ys = [_middle(word) for word in run]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread


def page_rows(page: PageLayout) -> list[Row]:
    """The page's words as rows of cells, top to bottom.

    OCR boxes hug the ink: they are shorter than a font's boxes and the gaps between them
    wider, so on an OCRed page a cell ends at a gap wider than about one and a half times the
    page's usual word height rather than at a share of the word's own box.
    """
    if not page.words:
        return []
    heights = sorted(_height(word) for word in page.words)
    usual = heights[len(heights) // 2]
    skew = _skew(page.words, usual)

    def level(word: Word) -> float:
        return _middle(word) - skew * word.x0

    def cell_gap(previous: Word, word: Word) -> float:
        if page.ocr_confidence is not None:
            return _OCR_CELL_GAP * usual
        return _CELL_GAP * max(_height(previous), _height(word))

    def same_row(group: list[Word], word: Word) -> bool:
        if page.ocr_confidence is not None:
            # OCR boxes of one line differ in height (a box may take in a table's rule), so a
            # word is compared with the line's mean level and the page's usual word height.
            mean = sum(map(level, group)) / len(group)
            return abs(level(word) - mean) <= _OCR_SAME_ROW * usual
        first = group[0]
        return abs(level(word) - level(first)) <= _SAME_ROW * min(_height(first), _height(word))

    groups: list[list[Word]] = []
    for word in sorted(page.words, key=lambda w: (level(w), w.x0)):
        if groups and same_row(groups[-1], word):
            groups[-1].append(word)
        else:
            groups.append([word])
    rows = []
    for group in groups:
        group.sort(key=lambda w: w.x0)
        cells: list[list[Word]] = [[group[0]]]
        for word in group[1:]:
            previous = cells[-1][-1]
            if word.x0 - previous.x1 > cell_gap(previous, word):
                cells.append([word])
            else:
                cells[-1].append(word)
        rows.append(
            Row(
                page=page.number,
                top=min(w.top for w in group),
                bottom=max(w.bottom for w in group),
                cells=tuple(
                    Cell(" ".join(w.text for w in words), words[0].x0, words[-1].x1)
                    for words in cells
                ),
            )
        )
    return rows


def document_index(text: str, layout: tuple[PageLayout, ...]) -> tuple[DocumentIndex, Layout]:
    """The index of a document read from its word boxes where it has them, with the pairs its
    geometry shows; from its text alone where it has none."""
    pages = text.split(PAGE_BREAK)
    by_number = {page.number: page for page in layout if page.words}
    count = max([len(pages), *by_number])
    source: list[SourceLine] = []
    rows: dict[int, list[tuple[int, Row]]] = {}  # page number: (line number, row)
    for number in range(1, count + 1):
        page = by_number.get(number)
        if page is None:
            if number <= len(pages):
                source.extend(page_lines(pages[number - 1], number))
            continue
        for row in page_rows(page):
            rows.setdefault(number, []).append((len(source), row))
            source.append(
                SourceLine("\t".join(row.texts), " ".join(row.texts), number, from_layout=True)
            )
    index = DocumentIndex(text, source)
    for page_rows_ in rows.values():
        _add_geometric_pairs(index, page_rows_)
    _add_header_rows(index)
    heights = {number: page.height for number, page in by_number.items()}
    return index, Layout(text, rows, heights)


def _add_geometric_pairs(index: DocumentIndex, rows: list[tuple[int, Row]]) -> None:
    for position, (_, row) in enumerate(rows):
        texts = row.texts
        header = len(texts) > 1 and is_header_row(texts)
        goods = header and (is_line_item_header(texts) or _rows_follow(rows, position))
        for number, cell in enumerate(row.cells):
            if not is_heading(cell.text):
                continue
            if not header and number + 1 < len(row.cells) and not is_heading(texts[number + 1]):
                continue  # its value is beside it
            below = _cell_below(rows, position, cell)
            if below is None:
                continue
            line, value = below
            if label_key(value.text) in KNOWN_KEYS or value.text.endswith(":"):
                continue  # another label, stacked under this one
            if header and any(
                other is not cell and value.overlap(other) > _SPANS * row.height
                for other in row.cells
            ):
                continue  # values of two columns run together: which part is whose is unknown
            kind = LINE_ITEMS if goods else TABLE if header else NEXT_LINE
            index.add_pair(cell.text, value.text, line, kind)


def _add_header_rows(index: DocumentIndex) -> None:
    """A row of known labels over a row of values, split by the values' shapes (see
    header_rows): all a text line has to go by, and what reads a row of word boxes whose values
    run together across columns."""
    for number in range(len(index.source) - 1):
        line, after = index.source[number], index.source[number + 1]
        if line.page != after.page or line.from_layout != after.from_layout:
            continue
        header = line.quote
        if DIGIT.search(header) or ":" in header or len(header.split()) > _HEADER_WORDS:
            continue
        for label, value in header_row_pairs(header, after.quote):
            index.add_pair(label, value, number + 1, TABLE)


def _cell_below(rows: list[tuple[int, Row]], position: int, cell: Cell) -> tuple[int, Cell] | None:
    """The cell under `cell` that overlaps it most, in the nearest row below that has one."""
    row = rows[position][1]
    for line, below in rows[position + 1 :]:
        if below.top - row.bottom > _BELOW * row.height:
            return None
        overlapping = [(cell.overlap(other), other) for other in below.cells]
        best = max(overlapping, key=lambda pair: pair[0])
        if best[0] > 0:
            return line, best[1]
    return None


def _rows_follow(rows: list[tuple[int, Row]], position: int) -> bool:
    """Two or more rows under a header row fill two or more of its columns: a table of goods.
    A row of headings under the first row of values starts another table ("Invoice No. | Date"
    over its values, then "Item | Quantity | Amount")."""
    header = rows[position][1]
    previous = header
    for filled, (_, row) in enumerate(rows[position + 1 :], start=1):
        if row.top - previous.bottom > _TABLE_ROWS * previous.height:
            break
        if filled > 1 and is_header_row(row.texts):
            break
        columns = {
            number
            for cell in row.cells
            for number, column in enumerate(header.cells)
            if cell.overlap(column) > 0
        }
        if len(columns) < 2:
            break
        previous = row
        if filled >= 2:
            return True
    return False


class Layout:
    """The rows of the pages read from word boxes, and their quotes checked against the text."""

    def __init__(
        self, text: str, rows: dict[int, list[tuple[int, Row]]], heights: dict[int, float]
    ) -> None:
        self.pages = text.split(PAGE_BREAK)
        self.rows = {line: row for page in rows.values() for line, row in page}
        self.heights = heights
        self._checkers: dict[int, QuoteChecker] = {}

    def row(self, line: int) -> Row | None:
        """The row of word boxes an index line was read from, if it was."""
        return self.rows.get(line)

    def share_down(self, line: int) -> float | None:
        """How far down its page the row of `line` starts, from 0 (top) to 1."""
        row = self.rows.get(line)
        if row is None or not self.heights.get(row.page):
            return None
        return row.top / self.heights[row.page]

    def quote(self, line: int, label: str, value: str) -> str:
        """What a value read from a row quotes: the first the page's text holds of the row's
        words, the cells from its label to its value, the value's cell and the value (a reader
        that orders a page's text otherwise, one column after the other, still holds the
        shorter ones); the row's words when the text holds none."""
        row = self.rows.get(line)
        if row is None:
            return value
        quotes = [" ".join(row.texts)]
        texts = row.texts
        at_value = next((n for n, text in enumerate(texts) if value in text), None)
        if at_value is not None:
            at_label = next((n for n, text in enumerate(texts) if label and label in text), None)
            if at_label is not None and at_label < at_value:
                quotes.append(" ".join(texts[at_label : at_value + 1]))
            quotes.append(texts[at_value])
        quotes.append(value)
        checker = self._checker(row.page)
        for quote in quotes:
            if checker is not None and checker.locate(quote) is not None:
                return quote
        return quotes[0]

    def holds(self, page: int, quote: str) -> bool:
        """Whether the text of `page` holds `quote`."""
        checker = self._checker(page)
        return checker is not None and checker.locate(quote) is not None

    def _checker(self, page: int) -> QuoteChecker | None:
        if not 0 < page <= len(self.pages):
            return None
        checker = self._checkers.get(page)
        if checker is None:
            checker = self._checkers[page] = QuoteChecker(self.pages[page - 1])
        return checker
