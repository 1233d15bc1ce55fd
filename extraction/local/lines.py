"""The offline engine's index of a document: its lines, the label/value pairs they hold, filed
under canonical labels, and the words of those labels for near matches."""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass
from functools import cached_property, lru_cache

from extraction.contract import PAGE_BREAK
from extraction.local.vocabulary import CANON, GROUPS, LINE_ITEM_WORDS, STOP
from extraction.normalise import (
    CURRENCY_CODES,
    without_currency,
)

# How explicitly a pair is written; added to the label score and used to break ties.
COLON = 10
_CHECKBOX = 10
GAP = 8
PREFIX = 6
NEXT_LINE = 5
TABLE = 3
LINE_ITEMS = -15  # a header over several rows is a line-item table, not the document's own value
# Loosely delimited pairs are only trusted when the value has the wanted shape.
LOOSE = frozenset({PREFIX, NEXT_LINE, TABLE, LINE_ITEMS})

FUZZY_CUTOFF = 0.8
_FUZZY_BUCKET = 500
_FUZZY_MIN_WORD = 4  # "ut" is not a misspelt "ust": short words only ever match exactly

_LINE = re.compile(r"[^\n\r\f\v\x1c\x1d\x1e\x85\u2028\u2029]+")
# Cells end at a pipe, a tab, two spaces, a middle dot, or a dash between spaces unless it joins
# two numbers (a range: "01.02.2024 - 29.02.2024"): "SIRET 123 456 789 00012 - TVA FR123".
_CELL_SPLIT = re.compile(
    r"\s*\|\s*|\s*\t\s*|\s{2,}|\s+[·•]\s+|(?<!\d)\s+[-\u2013\u2014]\s+|\s+[-\u2013\u2014]\s+(?!\d)"
)
_COLON_PAIR = re.compile(r"(?P<label>[^:]{1,60}?)\s*:(?!//)\s*(?P<value>.*)")
_INLINE_COLON = re.compile(r":(?:\s|$)")
_LABEL_WORD = re.compile(r"\(?[^\W\d_][^\W\d_'\u2019.-]*\.?\)?|#|№")
_TOKEN = re.compile(r"[^\W_]+|[#№]")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_QUALIFIER = re.compile(r"\([^()]*\)|\[[^\[\]]*\]")
_CURRENCY_WORDS = frozenset(code.casefold() for code in CURRENCY_CODES)
LETTER = re.compile(r"[^\W\d_]")
DIGIT = re.compile(r"\d")
_CHECKBOX_LINE = re.compile(
    r"(?P<box>\[\s*[xX✓✔]?\s*\]|[☐☑☒])\s*(?P<label>[^\[\]☐☑☒]+?)"
    r"|(?P<label2>[^\[\]☐☑☒]+?)\s*(?P<box2>\[\s*[xX✓✔]?\s*\]|[☐☑☒])"
)
_VALUE_LEAD = " \t.:#=>°º"
_NUMERIC = re.compile(r"[\d\s.,'\u2019()%+\-\u2212]*\d[\d\s.,'\u2019()%+\-\u2212]*")


def is_numeric(cell: str) -> bool:
    """A cell of a totals row: an amount, a count or a percentage, with or without a currency."""
    return _NUMERIC.fullmatch(without_currency(cell).strip()) is not None


# "Total - 5.00": a dash and a space separate label and value; in "-5.00" the dash is a sign.
_DASH_LEAD = re.compile(r"^[-\u2013\u2014]\s+")


def clean_value(value: str) -> str:
    return _DASH_LEAD.sub("", value.strip().lstrip(_VALUE_LEAD)).strip()


@lru_cache(maxsize=8192)
def label_key(text: str) -> str:
    """Canonical form of a label: folded abbreviations, no filler words, words sorted.

    A parenthesised qualifier and a currency code are left out ("Total (EUR)" is "total"), unless
    nothing else is left.
    """
    spaced = _CAMEL.sub(" ", text)
    key = {_word(w) for w in _TOKEN.findall(spaced)} - STOP
    core = key
    if "(" in spaced or "[" in spaced:
        core = {_word(w) for w in _TOKEN.findall(_QUALIFIER.sub(" ", spaced))} - STOP
    return " ".join(sorted((core - _CURRENCY_WORDS) or key))


@lru_cache(maxsize=8192)
def _word(token: str) -> str:
    """A word as labels are compared: case and accents folded, abbreviations expanded."""
    folded = token.casefold()
    if folded in CANON:
        return CANON[folded]
    if not folded.isascii():
        folded = unicodedata.normalize("NFKD", folded)
        folded = "".join(char for char in folded if not unicodedata.combining(char))
    return CANON.get(folded, folded)


def _is_label(text: str) -> bool:
    return (
        0 < len(text) <= 60
        and len(text.split()) <= 6
        and LETTER.search(text) is not None
        and label_key(text) != ""
    )


def is_heading(text: str) -> bool:
    """A line that can be a label whose value is on the next line."""
    return len(text) <= 40 and _is_label(text) and not DIGIT.search(text)


def _split_colon(cell: str) -> tuple[str, str] | None:
    match = _COLON_PAIR.match(cell)
    if not match:
        return None
    label, value = match["label"].strip(), match["value"].strip()
    if not _is_label(label):
        return None
    if label[-1].isdigit() and value[:1].isdigit():  # a time such as 10:30, not a label
        return None
    return label, value


KNOWN_KEYS: dict[str, int] = {}
for _index, (_shape, _phrases) in enumerate(GROUPS):
    for _phrase in _phrases:
        KNOWN_KEYS.setdefault(label_key(_phrase), _index)


def is_known_label(text: str) -> bool:
    """Whether `text` is a label the vocabulary knows, however its letters are cased ("BiLL TO"
    from OCR is not two words "Bi LL")."""
    return label_key(text) in KNOWN_KEYS or label_key(text.casefold()) in KNOWN_KEYS


def _inline_pairs(label: str, value: str) -> list[tuple[str, str, int]]:
    """Split "Invoice No: 123 Date: 12/03/2024", where single spaces hide the second label.

    The words before each further colon that form a known label are taken as that label (the
    longest known one); with no known label, the last word is.
    """
    pairs: list[tuple[str, str, int]] = []
    while True:
        match = _INLINE_COLON.search(value)
        if not match:
            break
        words = value[: match.start()].split()
        run = 0
        while run < min(3, len(words) - 1) and _LABEL_WORD.fullmatch(words[-1 - run]):
            run += 1
        if run == 0:
            break
        take = 1
        for size in range(1, run + 1):
            if label_key(" ".join(words[-size:])) in KNOWN_KEYS:
                take = size
        head = " ".join(words[:-take])
        pairs.append((label, head, COLON))
        label, value = " ".join(words[-take:]), value[match.end() :].strip()
    pairs.append((label, value, COLON))
    return pairs


def _cells(line: str) -> list[str]:
    if not any(mark in line for mark in ("|", "\t", "  ", "·", "•", " - ", " \u2013 ", " \u2014 ")):
        return [line]
    # A line of separators alone ("|", "-  -") is one cell, so every line has one.
    return [cell for cell in _CELL_SPLIT.split(line) if cell] or [line]


@dataclass(frozen=True, slots=True)
class _Line:
    """One distinct line, parsed: its cells, the pairs it holds, and where a label may start."""

    cells: list[str]
    pairs: list[tuple[str, str, int]]
    pending: str | None  # a trailing label whose value is on the next line
    starts: list[tuple[str, int]]  # (first word, cell number) of cells without a colon label


def _parse_line(line: str) -> _Line:
    cells = _cells(line)
    pairs: list[tuple[str, str, int]] = []
    pending: str | None = None
    delimited: set[int] = set()
    index = 0
    while index < len(cells):
        split = _split_colon(cells[index])
        if split is None:
            index += 1
            continue
        delimited.add(index)
        label, value = split
        if value:
            pairs.extend(_inline_pairs(label, value))
        elif index + 1 < len(cells) and _split_colon(cells[index + 1]) is None:
            pairs.append((label, cells[index + 1], COLON))
            delimited.add(index + 1)
            index += 1
        elif index == len(cells) - 1:
            pending = label
        index += 1
    if not pairs and pending is None:
        if len(cells) == 2 and _is_label(cells[0]):
            # Two known labels side by side ("Supplier | Bill to") head two columns.
            if not (is_known_label(cells[0]) and is_known_label(cells[1])):
                pairs.append((cells[0], cells[1], GAP))
        elif len(cells) > 2:
            pairs.extend(_row_pairs(cells))
        elif len(cells) == 1:
            box = _CHECKBOX_LINE.fullmatch(cells[0]) if _maybe_checkbox(cells[0]) else None
            if box:
                label = (box["label"] or box["label2"]).strip()
                if _is_label(label):
                    pairs.append((label, box["box"] or box["box2"], _CHECKBOX))
            elif is_heading(cells[0]):
                pending = cells[0]
    # A cell with a colon label is read above; the others may start with a label followed by
    # its value after a space ("Invoice No. INV-001").
    starts = []
    for number, cell in enumerate(cells):
        if number not in delimited:
            first = _first_word(cell)
            if first:
                starts.append((first, number))
    return _Line(cells, pairs, pending, starts)


def _row_pairs(cells: list[str]) -> list[tuple[str, str, int]]:
    """Pairs in a row of three or more cells without colons.

    A label followed only by numbers is a totals row ("Total | 1 | 278.61 | 40.39 | 319.00"):
    its value is all of them, and the amount parser takes the row's last amount. Otherwise a
    known label followed by a cell that is not one is a pair ("Bill to | Contoso | Invoice No. |
    42"); a row of headings (a table's header) pairs only when known labels and values alternate.
    """
    label = cells[0]
    # A cell holding only a currency ("EUR" printed in a column of its own) belongs to the row.
    figures = [cell for cell in cells[1:] if without_currency(cell).strip()]
    if (
        _is_label(label)
        and not DIGIT.search(_QUALIFIER.sub("", label))  # "Tax (20%)", not "INV-2024-001"
        and figures
        and is_numeric(figures[-1])
        and all(is_numeric(cell) or _garbled_figure(cell) for cell in figures)
    ):
        return [(cells[0], "  ".join(cells[1:]), GAP)]
    known = [label_key(cell) in KNOWN_KEYS for cell in cells]
    alternating = all(known[0::2]) and not any(known[1::2])
    if is_header_row(cells) and not alternating:
        return []
    return [
        (cells[number], cells[number + 1], GAP)
        for number in range(len(cells) - 1)
        if known[number] and not known[number + 1]
    ]


def _garbled_figure(cell: str) -> bool:
    """A figure OCR garbled ("—e234,24€"): digits with a stray letter or two, not words."""
    return DIGIT.search(cell) is not None and sum(char.isalpha() for char in cell) <= 2


def _maybe_checkbox(line: str) -> bool:
    return "[" in line or "☐" in line or "☑" in line or "☒" in line


def is_line_item_header(cells: list[str]) -> bool:
    """A table of goods or services: its "Total" column is per line, not the document's total."""
    return any(LINE_ITEM_WORDS & set(label_key(cell).split()) for cell in cells)


def is_header_row(cells: list[str]) -> bool:
    return len(cells) >= 2 and all(is_heading(cell) and ":" not in cell for cell in cells)


@dataclass(frozen=True, slots=True)
class _Pair:
    label: str  # as written, for currency hints such as "Total (EUR)"
    value: str
    line: int  # the line quoted: the one holding the value
    kind: int


@dataclass(frozen=True, slots=True)
class Candidate:
    score: int
    line: int
    kind: int
    label: str
    value: str

    def order(self) -> tuple[int, int, int]:
        return (-self.score, self.line, -self.kind)


@dataclass(frozen=True, slots=True)
class SourceLine:
    """A line as the index reads it, and what a value found on it quotes."""

    text: str  # what is parsed; where a layout shows gaps between words, a tab marks them
    quote: str  # the line as the document's text has it
    page: int | None
    from_layout: bool = False  # built from word boxes: its quote is checked against the text


def text_lines(text: str) -> list[SourceLine]:
    """The non-empty lines of page-separated text, stripped, with their page numbers."""
    lines = []
    for number, page_text in enumerate(text.split(PAGE_BREAK), start=1):
        lines.extend(page_lines(page_text, number))
    return lines


def page_lines(page_text: str, page: int) -> list[SourceLine]:
    """The non-empty lines of one page's text, stripped."""
    return [
        SourceLine(stripped, stripped, page)
        for match in _LINE.finditer(page_text)
        if (stripped := match.group().strip())
    ]


class DocumentIndex:
    """Lines, their pages and the label/value pairs they hold, built in one pass.

    By default the lines are the text's own; a layout-aware caller passes lines it made from
    word boxes (cells split where the words are far apart) and adds the pairs it sees in the
    page's geometry with `add_pair`.
    """

    def __init__(self, text: str, lines: list[SourceLine] | None = None) -> None:
        self.text = text
        self.source = text_lines(text) if lines is None else lines
        self.lines = [line.text for line in self.source]
        self.pairs: dict[str, list[_Pair]] = {}
        self.cells: list[list[str]] = []
        # Where cells start with a word: "Invoice No. INV-001" is read from the cell's start.
        self.by_first_word: dict[str, list[tuple[int, int]]] = {}
        self._head_keys: dict[str, list[tuple[str, int]]] = {}
        self._explicit: set[str] = set()  # labels written with a delimiter, for fuzzy matching
        self._close: dict[str, list[str]] = {}
        self._index()

    def add_pair(self, label: str, value: str, line: int, kind: int) -> None:
        self._add(label, value, line, kind)

    def _add(self, label: str, value: str, line: int, kind: int) -> None:
        value = value.strip() if kind == _CHECKBOX else clean_value(value)
        if value:
            key = label_key(label)
            self.pairs.setdefault(key, []).append(_Pair(label, value, line, kind))
            if kind != NEXT_LINE:
                self._explicit.add(key)

    def _index(self) -> None:
        # Page headers, footers and repeated rows are parsed once per distinct line.
        seen: dict[str, _Line] = {}
        for text in self.lines:
            if text not in seen:
                seen[text] = _parse_line(text)
        parsed = [seen[text] for text in self.lines]
        self.cells = [line.cells for line in parsed]
        count = len(parsed)
        for number, line in enumerate(parsed):
            for label, value, kind in line.pairs:
                self._add(label, value, number, kind)
            for first, cell_number in line.starts:
                self.by_first_word.setdefault(first, []).append((number, cell_number))
            if self.source[number].from_layout:
                # Word boxes say what is under a label; the next line in reading order may be
                # in another column (see extraction.local.layout).
                continue
            following = number + 1
            after = parsed[following] if following < count else None
            if after is not None and line.pending is not None and not after.pairs:
                self._add(line.pending, after.cells[0], following, NEXT_LINE)
            header = line.cells
            if (
                after is not None
                and len(after.cells) == len(header)
                and not after.pairs
                and is_header_row(header)
            ):
                # A row of headings after the values starts another table, not a second row.
                several = (
                    following + 1 < count
                    and len(parsed[following + 1].cells) == len(header)
                    and not is_header_row(parsed[following + 1].cells)
                )
                kind = LINE_ITEMS if several or is_line_item_header(header) else TABLE
                for label, value in zip(header, after.cells, strict=True):
                    self._add(label, value, following, kind)

    def head_keys(self, text: str) -> list[tuple[str, int]]:
        """Label keys of the cell's first 1, 2, ... words, each with the offset where it ends."""
        keys = self._head_keys.get(text)
        if keys is None:
            words = _head(text)
            keys = [
                (" ".join(sorted({word for word, _ in words[:size]})), words[size - 1][1])
                for size in range(1, len(words) + 1)
            ]
            self._head_keys[text] = keys
        return keys

    @cached_property
    def labels_by_word(self) -> dict[str, list[str]]:
        """Delimited label keys by each word in them, built only when a fuzzy search needs it.

        A heading followed by a line is too weak a sign of a label to be matched fuzzily, and
        leaving headings out keeps the vocabulary of a long text small.
        """
        found: dict[str, list[str]] = {}
        for key in self.pairs:
            if key in self._explicit and key not in KNOWN_KEYS:
                for word in key.split():
                    if not DIGIT.search(word):
                        found.setdefault(word, []).append(key)
        return found

    @cached_property
    def words_by_length(self) -> dict[tuple[int, str], list[str]]:
        """Label words by length, and by length and first letter ("" for all first letters)."""
        found: dict[tuple[int, str], list[str]] = {}
        for word in self.labels_by_word:
            found.setdefault((len(word), ""), []).append(word)
            found.setdefault((len(word), word[0]), []).append(word)
        return found

    def close_words(self, word: str) -> list[str]:
        """Label words within difflib distance of `word`, remembered for the other fields.

        Only lengths that could reach the cutoff are tried. Where one length holds very many
        words, only those with the same first letter are, which bounds the cost on long texts.
        """
        close = self._close.get(word)
        if close is not None:
            return close
        close = [word] if word in self.labels_by_word else []
        if len(word) < _FUZZY_MIN_WORD:
            self._close[word] = close
            return close
        matcher = difflib.SequenceMatcher(None, b=word)
        size = len(word)
        for length in range(int(size * 2 / 3), int(size * 3 / 2) + 1):
            bucket = self.words_by_length.get((length, ""), [])
            if len(bucket) > _FUZZY_BUCKET:
                bucket = self.words_by_length.get((length, word[0]), [])
            for candidate in bucket:
                if candidate == word:
                    continue
                matcher.set_seq1(candidate)
                if (
                    matcher.real_quick_ratio() >= FUZZY_CUTOFF
                    and matcher.quick_ratio() >= FUZZY_CUTOFF
                    and matcher.ratio() >= FUZZY_CUTOFF
                ):
                    close.append(candidate)
        self._close[word] = close
        return close

    def page(self, line: int) -> int | None:
        return self.source[line].page


HEAD_WORDS = 6  # the longest label looked for (4 words) plus two to see what follows it


# What may stand before a label at the start of a line without being part of it: "zzgl. 19 %
# USt. 256,50 €", "plus VAT 20% 200.00", "20 % TVA 200,00".
_LEAD = re.compile(
    r"(?:(?:zzgl|zuzügl|zuzgl|inkl|incl|plus|davon|darin|enthaltene?|including|excluding|excl)"
    r"\.?\s+|\+\s*)*(?:\d{1,2}(?:[.,]\d{1,2})?\s?%\s+)?",
    re.IGNORECASE,
)


def _lead_end(text: str) -> int:
    lead = _LEAD.match(text)
    return lead.end() if lead else 0


def _head(line: str) -> list[tuple[str, int]]:
    """The first canonical words of a line and the offset where each ends."""
    words: list[tuple[str, int]] = []
    # Folding word by word keeps the offsets true to the original line ("ß" folds to "ss").
    for match in _TOKEN.finditer(line, _lead_end(line)):
        word = _word(match.group())
        if word in STOP:
            continue
        words.append((word, match.end()))
        if len(words) >= HEAD_WORDS:
            break
    return words


def _first_word(cell: str) -> str | None:
    """The cell's first canonical word, unless it is joined to a value ("INV-0042")."""
    match = _TOKEN.search(cell, _lead_end(cell))
    if match is None:
        return None
    word = _word(match.group())
    if word in STOP:
        words = _head(cell)
        return words[0][0] if words else None
    if joined(cell, match.end()):
        return None
    return word


def joined(cell: str, end: int) -> bool:
    """'INV-0042' and 'Total/net' continue the word: it is part of a value, not a label. A
    hyphen joins words of a label when no digit follows ("USt-IdNr.", "BTW-nummer")."""
    mark, after = cell[end : end + 1], cell[end + 1 : end + 2]
    if mark == "-" and after.isalpha():
        token = cell[end:].split(maxsplit=1)[0]
        return DIGIT.search(token) is not None
    return mark in ("-", "/", "_", "'") and after.isalnum()
