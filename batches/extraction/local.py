"""The offline engine: label/value matching over the document's lines, with typed normalisation.

Deterministic and free of network, models and randomness, so the product works on a fresh machine
and the same document always gives the same result. How a value is found:

1. The text is indexed once. Every non-empty line is kept with its offset, and the label/value pairs
   it holds are filed under a canonical label (case folded, "#", "No." and "number" folded together,
   words sorted): ``Label: value``; ``Label<tab or 2+ spaces>value``; the cells of rendered table
   rows (``header: value | header: value``); a label alone on its line with the value on the next;
   a header row (cells split by tabs, ``|`` or 2+ spaces) followed by a value row, which counts
   for little when the table lists goods (several rows, or columns like "Qty" and "Unit price");
   ``[x] Label`` checkboxes. Cells are also indexed by their first word, for ``Invoice No. 001``.
2. Each field looks up its own name first, then the synonyms of the concept it names ("amount due"
   for "total"), then its description, then lines that start with any of those labels. Only when
   none of those gives a usable value are near labels considered: within difflib distance
   ("Invocie numbr"), or holding the wanted words and up to two more ("Estimated tax").
3. A candidate must have the shape the field wants: a declared date/number/boolean must parse as
   one; a string field named like a date, an amount or an identifier prefers values of that shape.
   Ties go to the pair written most explicitly (colon before gap before table), then to the first
   occurrence in the document.

A field without a match is null with ``verified`` False: values are only ever read from the text.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from functools import cached_property, lru_cache
from typing import Any

from batches.extraction.base import (
    ErrorKind,
    ExtractionError,
    ExtractionRequest,
    ExtractionResult,
    page_of,
)
from batches.extraction.normalise import (
    CURRENCY_CODES,
    DateOrder,
    date_order_of,
    parse_amount,
    parse_boolean,
    parse_date,
    parse_list,
)
from batches.fields import FieldSpec, fields_from_prompt


class _Shape(Enum):
    ANY = "any"
    TEXT = "text"
    IDENT = "ident"
    DATE = "date"
    AMOUNT = "amount"
    BOOLEAN = "boolean"
    LIST = "list"


# How explicitly a pair is written; added to the label score and used to break ties.
_COLON = 10
_CHECKBOX = 10
_GAP = 8
_PREFIX = 6
_NEXT_LINE = 5
_TABLE = 3
_LINE_ITEMS = -15  # a header over several rows is a line-item table, not the document's own value
# Loosely delimited pairs are only trusted when the value has the wanted shape.
_LOOSE = frozenset({_PREFIX, _NEXT_LINE, _TABLE, _LINE_ITEMS})

_EXACT = 100
_SYNONYM = 90
_DESCRIPTION = 85
_FUZZY = 75  # times the difflib ratio, so always below a synonym
_FUZZY_CUTOFF = 0.8
_CONTAINED = 0.8  # the weight of a label holding the wanted words and a few more
_FUZZY_BUCKET = 500
_FUZZY_MIN_WORD = 4  # "ut" is not a misspelt "ust": short words only ever match exactly
_SHAPE_PENALTY = 30

# Concepts that invoices and similar documents label in many ways. The first phrase names the
# concept; a field whose name is any of the phrases accepts all of them. A few German, French and
# Spanish labels are included because European invoices are a main use.
_GROUPS: tuple[tuple[_Shape, tuple[str, ...]], ...] = (
    (
        _Shape.IDENT,
        (
            *("invoice number", "invoice id", "invoice ref", "invoice reference", "invoice"),
            *("bill number", "document number", "receipt number"),
            *("rechnungsnummer", "rechnung no", "facture no", "numero de facture", "factura no"),
        ),
    ),
    (
        _Shape.DATE,
        (
            *("date", "invoice date", "issue date", "date of issue", "dated", "date issued"),
            *("issued", "issued on", "billing date", "document date", "tax point"),
            *("rechnungsdatum", "datum", "date de facture", "fecha", "fecha de factura"),
        ),
    ),
    (
        _Shape.DATE,
        (
            *("due date", "payment due", "payment due date", "due", "due by", "pay by"),
            *("date due", "fällig", "fälligkeitsdatum", "date d echeance", "echeance"),
        ),
    ),
    (
        _Shape.AMOUNT,
        (
            *("total", "amount due", "grand total", "balance due", "total amount", "total due"),
            *("total payable", "amount payable", "invoice total", "total to pay", "balance"),
            *("total incl vat", "total including vat", "total incl tax", "total including tax"),
            *("amount", "gesamtbetrag", "endbetrag", "total ttc", "montant ttc", "net a payer"),
            *("importe total",),
        ),
    ),
    (
        _Shape.AMOUNT,
        (
            *("subtotal", "sub total", "net total", "net amount", "total excl vat"),
            *("total excluding vat", "total before tax", "zwischensumme", "nettobetrag"),
            *("total ht", "montant ht", "base imponible"),
        ),
    ),
    (
        _Shape.AMOUNT,
        (
            *("tax", "vat", "tax amount", "vat amount", "sales tax", "gst", "total tax"),
            *("total vat", "mwst", "ust", "tva", "montant tva", "iva"),
        ),
    ),
    (
        _Shape.TEXT,
        (
            *("supplier", "vendor", "seller", "from", "company", "supplier name", "vendor name"),
            *("seller name", "company name", "issuer", "billed by", "sold by", "merchant"),
            *("payee", "lieferant", "fournisseur", "proveedor"),
        ),
    ),
    (
        _Shape.TEXT,
        (
            *("customer", "bill to", "billed to", "client", "sold to", "buyer", "customer name"),
            *("client name", "invoice to", "invoiced to", "kunde", "cliente"),
        ),
    ),
    (
        _Shape.IDENT,
        (
            *("vat id", "tax id", "vat number", "vat reg no", "vat registration number"),
            *("vat registration", "vat identification number", "tax number", "gst number"),
            *("tax registration number", "tin", "ein", "ust id", "ust idnr", "ust id nr"),
            *("steuernummer", "no tva", "tva intracommunautaire", "nif", "cif"),
        ),
    ),
    (
        _Shape.IDENT,
        (
            *("po number", "purchase order", "purchase order number", "po", "order number"),
            *("order reference", "bestellnummer", "bon de commande"),
        ),
    ),
    (
        _Shape.IDENT,
        (
            *("customer number", "customer id", "client number", "client id", "account number"),
            *("kundennummer", "numero client"),
        ),
    ),
    (_Shape.IDENT, ("iban", "bank account")),
    (_Shape.TEXT, ("payment terms", "terms", "zahlungsbedingungen")),
    (_Shape.TEXT, ("currency", "währung", "devise", "moneda")),
)

# Abbreviations folded onto one spelling, so "Inv #", "Invoice No." and "invoice_number" agree.
_CANON = {
    "#": "no",
    "№": "no",
    "nº": "no",
    "n": "no",
    "nr": "no",
    "num": "no",
    "nbr": "no",
    "number": "no",
    "inv": "invoice",
    "amt": "amount",
    "ref": "reference",
    "qty": "quantity",
    "reg": "registration",
    "regn": "registration",
    "tel": "phone",
    "telephone": "phone",
    "acct": "account",
    "incl": "including",
    "excl": "excluding",
    "identifier": "id",
}
_STOP = frozenset({"the", "a", "an", "of", "your", "our"})
_IDENT_TOKENS = frozenset({"no", "id"})

_LINE = re.compile(r"[^\n\r\f\v\x1c\x1d\x1e\x85\u2028\u2029]+")
_CELL_SPLIT = re.compile(r"\s*\|\s*|\s*\t\s*|\s{2,}")
_COLON_PAIR = re.compile(r"(?P<label>[^:]{1,60}?)\s*:(?!//)\s*(?P<value>.*)")
_INLINE_COLON = re.compile(r":(?:\s|$)")
_LABEL_WORD = re.compile(r"\(?[^\W\d_][^\W\d_'\u2019.-]*\.?\)?|#|№")
_TOKEN = re.compile(r"[^\W_]+|[#№]")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_QUALIFIER = re.compile(r"\([^()]*\)|\[[^\[\]]*\]")
_CURRENCY_WORDS = frozenset(code.casefold() for code in CURRENCY_CODES)
_LETTER = re.compile(r"[^\W\d_]")
_DIGIT = re.compile(r"\d")
_CHECKBOX_LINE = re.compile(
    r"(?P<box>\[\s*[xX✓✔]?\s*\]|[☐☑☒])\s*(?P<label>[^\[\]☐☑☒]+?)"
    r"|(?P<label2>[^\[\]☐☑☒]+?)\s*(?P<box2>\[\s*[xX✓✔]?\s*\]|[☐☑☒])"
)
_VALUE_LEAD = " \t.:#=>°º"
# "Total - 5.00": a dash and a space separate label and value; in "-5.00" the dash is a sign.
_DASH_LEAD = re.compile(r"^[-\u2013\u2014]\s+")


def _clean_value(value: str) -> str:
    return _DASH_LEAD.sub("", value.strip().lstrip(_VALUE_LEAD)).strip()


@lru_cache(maxsize=8192)
def _label_key(text: str) -> str:
    """Canonical form of a label: folded abbreviations, no filler words, words sorted.

    A parenthesised qualifier and a currency code are left out ("Total (EUR)" is "total"), unless
    nothing else is left.
    """
    spaced = _CAMEL.sub(" ", text)
    key = {_word(w) for w in _TOKEN.findall(spaced)} - _STOP
    core = key
    if "(" in spaced or "[" in spaced:
        core = {_word(w) for w in _TOKEN.findall(_QUALIFIER.sub(" ", spaced))} - _STOP
    return " ".join(sorted((core - _CURRENCY_WORDS) or key))


@lru_cache(maxsize=8192)
def _word(token: str) -> str:
    """A word as labels are compared: case and accents folded, abbreviations expanded."""
    folded = token.casefold()
    if not folded.isascii():
        folded = unicodedata.normalize("NFKD", folded)
        folded = "".join(char for char in folded if not unicodedata.combining(char))
    return _CANON.get(folded, folded)


def _is_label(text: str) -> bool:
    return (
        0 < len(text) <= 60
        and len(text.split()) <= 6
        and _LETTER.search(text) is not None
        and _label_key(text) != ""
    )


def _is_heading(text: str) -> bool:
    """A line that can be a label whose value is on the next line."""
    return len(text) <= 40 and _is_label(text) and not _DIGIT.search(text)


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


_KNOWN_KEYS: dict[str, int] = {}
for _index, (_shape, _phrases) in enumerate(_GROUPS):
    for _phrase in _phrases:
        _KNOWN_KEYS.setdefault(_label_key(_phrase), _index)


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
            if _label_key(" ".join(words[-size:])) in _KNOWN_KEYS:
                take = size
        head = " ".join(words[:-take])
        pairs.append((label, head, _COLON))
        label, value = " ".join(words[-take:]), value[match.end() :].strip()
    pairs.append((label, value, _COLON))
    return pairs


def _cells(line: str) -> list[str]:
    if "|" not in line and "\t" not in line and "  " not in line:
        return [line]
    return [cell for cell in _CELL_SPLIT.split(line) if cell]


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
            pairs.append((label, cells[index + 1], _COLON))
            delimited.add(index + 1)
            index += 1
        elif index == len(cells) - 1:
            pending = label
        index += 1
    if not pairs and pending is None:
        if len(cells) == 2 and _is_label(cells[0]):
            pairs.append((cells[0], cells[1], _GAP))
        elif len(cells) == 1:
            box = _CHECKBOX_LINE.fullmatch(cells[0]) if _maybe_checkbox(cells[0]) else None
            if box:
                label = (box["label"] or box["label2"]).strip()
                if _is_label(label):
                    pairs.append((label, box["box"] or box["box2"], _CHECKBOX))
            elif _is_heading(cells[0]):
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


_LINE_ITEM_WORDS = frozenset(
    {"description", "item", "items", "quantity", "unit", "price", "rate", "hours", "article"}
)


def _is_line_item_header(cells: list[str]) -> bool:
    """A table of goods or services: its "Total" column is per line, not the document's total."""
    return any(_LINE_ITEM_WORDS & set(_label_key(cell).split()) for cell in cells)


def _maybe_checkbox(line: str) -> bool:
    return "[" in line or "☐" in line or "☑" in line or "☒" in line


def _is_header_row(cells: list[str]) -> bool:
    return len(cells) >= 2 and all(_is_heading(cell) and ":" not in cell for cell in cells)


@dataclass(frozen=True, slots=True)
class _Pair:
    label: str  # as written, for currency hints such as "Total (EUR)"
    value: str
    line: int  # the line quoted: the one holding the value
    kind: int


@dataclass(frozen=True, slots=True)
class _Candidate:
    score: int
    line: int
    kind: int
    label: str
    value: str

    def order(self) -> tuple[int, int, int]:
        return (-self.score, self.line, -self.kind)


class _DocumentIndex:
    """Lines, their offsets and the label/value pairs they hold, built in one pass."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.lines: list[str] = []
        self.offsets: list[int] = []
        for match in _LINE.finditer(text):
            raw = match.group()
            stripped = raw.strip()
            if stripped:
                self.lines.append(stripped)
                self.offsets.append(match.start() + len(raw) - len(raw.lstrip()))
        self.pairs: dict[str, list[_Pair]] = {}
        self.cells: list[list[str]] = []
        # Where cells start with a word: "Invoice No. INV-001" is read from the cell's start.
        self.by_first_word: dict[str, list[tuple[int, int]]] = {}
        self._head_keys: dict[str, list[tuple[str, int]]] = {}
        self._explicit: set[str] = set()  # labels written with a delimiter, for fuzzy matching
        self._close: dict[str, list[str]] = {}
        self._index()

    def _add(self, label: str, value: str, line: int, kind: int) -> None:
        value = value.strip() if kind == _CHECKBOX else _clean_value(value)
        if value:
            key = _label_key(label)
            self.pairs.setdefault(key, []).append(_Pair(label, value, line, kind))
            if kind != _NEXT_LINE:
                self._explicit.add(key)

    def _index(self) -> None:
        # Page headers, footers and repeated rows are parsed once per distinct line.
        seen: dict[str, _Line] = {}
        for line in self.lines:
            if line not in seen:
                seen[line] = _parse_line(line)
        parsed = [seen[line] for line in self.lines]
        self.cells = [line.cells for line in parsed]
        count = len(parsed)
        for number, line in enumerate(parsed):
            for label, value, kind in line.pairs:
                self._add(label, value, number, kind)
            following = number + 1
            after = parsed[following] if following < count else None
            if after is not None and line.pending is not None and not after.pairs:
                self._add(line.pending, after.cells[0], following, _NEXT_LINE)
            header = line.cells
            if (
                after is not None
                and len(after.cells) == len(header)
                and not after.pairs
                and _is_header_row(header)
            ):
                several = following + 1 < count and len(parsed[following + 1].cells) == len(header)
                kind = _LINE_ITEMS if several or _is_line_item_header(header) else _TABLE
                for label, value in zip(header, after.cells, strict=True):
                    self._add(label, value, following, kind)
            for first, cell_number in line.starts:
                self.by_first_word.setdefault(first, []).append((number, cell_number))

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
            if key in self._explicit and key not in _KNOWN_KEYS:
                for word in key.split():
                    if not _DIGIT.search(word):
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
                    matcher.real_quick_ratio() >= _FUZZY_CUTOFF
                    and matcher.quick_ratio() >= _FUZZY_CUTOFF
                    and matcher.ratio() >= _FUZZY_CUTOFF
                ):
                    close.append(candidate)
        self._close[word] = close
        return close

    @cached_property
    def date_order(self) -> DateOrder:
        return date_order_of(self.text)

    def page(self, line: int) -> int | None:
        return page_of(self.text, self.offsets[line])


_HEAD_WORDS = 6  # the longest label looked for (4 words) plus two to see what follows it


def _head(line: str) -> list[tuple[str, int]]:
    """The first canonical words of a line and the offset where each ends."""
    words: list[tuple[str, int]] = []
    # Folding word by word keeps the offsets true to the original line ("ß" folds to "ss").
    for match in _TOKEN.finditer(line):
        word = _word(match.group())
        if word in _STOP:
            continue
        words.append((word, match.end()))
        if len(words) >= _HEAD_WORDS:
            break
    return words


def _first_word(cell: str) -> str | None:
    """The cell's first canonical word, unless it is joined to a value ("INV-0042")."""
    match = _TOKEN.search(cell)
    if match is None:
        return None
    word = _word(match.group())
    if word in _STOP:
        words = _head(cell)
        return words[0][0] if words else None
    if _joined(cell, match.end()):
        return None
    return word


@dataclass
class _Wanted:
    """What one field looks for: label keys with their scores, and the shape of its value."""

    spec: FieldSpec
    shape: _Shape
    strict: bool  # a declared type: a value that does not parse is no value
    keys: dict[str, int] = field(default_factory=dict)

    def accepts(self, value: str) -> bool:
        shape = self.shape
        if shape is _Shape.DATE:
            return parse_date(value) is not None
        if shape is _Shape.AMOUNT:
            return parse_amount(value) is not None
        if shape is _Shape.BOOLEAN:
            return parse_boolean(value) is not None
        if shape is _Shape.LIST:
            return bool(parse_list(value))
        if shape is _Shape.IDENT:
            return _DIGIT.search(value) is not None
        if shape is _Shape.TEXT:
            return _LETTER.search(value) is not None
        return True


@lru_cache(maxsize=4096)
def _group_of(key: str) -> int | None:
    """The synonym group of a label (fuzzy); cached, since field names repeat per document."""
    if key in _KNOWN_KEYS:
        return _KNOWN_KEYS[key]
    best: tuple[float, int] | None = None
    matcher = difflib.SequenceMatcher(None, b=key)
    for known, group in _KNOWN_KEYS.items():
        if _ident_mismatch(key, known):
            continue
        matcher.set_seq1(known)
        ratio = matcher.ratio()
        if ratio >= 0.85 and (best is None or ratio > best[0]):
            best = (ratio, group)
    return best[1] if best else None


def _ident_mismatch(first: str, second: str) -> bool:
    """'customer' is not 'customer no': identifier labels only match identifier labels."""
    return bool(_IDENT_TOKENS & set(first.split())) != bool(_IDENT_TOKENS & set(second.split()))


_TYPE_SHAPES = {
    "number": _Shape.AMOUNT,
    "date": _Shape.DATE,
    "boolean": _Shape.BOOLEAN,
    "list": _Shape.LIST,
}


def _shape_from_name(key: str) -> _Shape:
    words = set(key.split())
    if words & _IDENT_TOKENS or words & {"iban", "reference", "code"}:
        return _Shape.IDENT
    if words & {"date", "dated", "due", "issued"}:
        return _Shape.DATE
    if words & {"total", "amount", "subtotal", "tax", "vat", "price", "cost", "balance", "fee"}:
        return _Shape.AMOUNT
    return _Shape.ANY


# "total with currency", "total including VAT": the label to look for is what comes before.
_NAME_QUALIFIER = re.compile(
    r"\s+(?:with|including|incl\.?|excluding|excl\.?|in|as)\s+.*$", re.IGNORECASE
)


def _wanted(spec: FieldSpec) -> _Wanted:
    name_key = _label_key(spec["name"])
    group = _group_of(name_key) if name_key else None
    base = _NAME_QUALIFIER.sub("", spec["name"])
    base_key = _label_key(base) if base != spec["name"] else ""
    if group is None and base_key:
        group = _group_of(base_key)
    field_type = spec.get("type") or "string"
    if field_type in _TYPE_SHAPES:
        shape, strict = _TYPE_SHAPES[field_type], True
    else:
        shape = _GROUPS[group][0] if group is not None else _shape_from_name(name_key)
        strict = False
    wanted = _Wanted(spec=spec, shape=shape, strict=strict)
    if name_key:
        wanted.keys[name_key] = _EXACT
    if base_key:
        wanted.keys.setdefault(base_key, _EXACT)
    if group is not None:
        for phrase in _GROUPS[group][1]:
            wanted.keys.setdefault(_label_key(phrase), _SYNONYM)
    description = spec.get("description") or ""
    description_key = _label_key(description) if description else ""
    if description_key and len(description_key.split()) <= 6:
        wanted.keys.setdefault(description_key, _DESCRIPTION)
    return wanted


def _prefix_candidates(index: _DocumentIndex, wanted: _Wanted) -> list[_Candidate]:
    """Cells that start with a wanted label ("Invoice No. INV-001"); the rest is the value.

    The longest wanted label at the start of the cell is the one meant.
    """
    found: list[_Candidate] = []
    first_words = {word for key in wanted.keys for word in key.split()}
    sites: set[tuple[int, int]] = set()
    for word in first_words:
        sites.update(index.by_first_word.get(word, ()))
    for number, cell_number in sorted(sites):
        cell = index.cells[number][cell_number]
        keys = index.head_keys(cell)
        for size in range(min(len(keys), _HEAD_WORDS - 2), 0, -1):
            key, end = keys[size - 1]
            score = wanted.keys.get(key)
            if score is None:
                continue
            if size > 1 and keys[size - 2][0] == key:
                continue  # a repeated word ("Invoice No. INV-...") does not lengthen the label
            if _joined(cell, end) or _extends_to_other_label(keys, size, wanted):
                break
            value = _clean_value(cell[end:])
            if value:
                found.append(_Candidate(score + _PREFIX, number, _PREFIX, cell, value))
            break
    return found


def _joined(cell: str, end: int) -> bool:
    """'INV-0042' and 'Total/net' continue the word: it is part of a value, not a label."""
    return cell[end : end + 1] in ("-", "/", "_", "'") and cell[end + 1 : end + 2].isalnum()


def _extends_to_other_label(keys: list[tuple[str, int]], size: int, wanted: _Wanted) -> bool:
    """'Customer No. 123' is not the customer, nor 'Due date ...' the date."""
    words = set(keys[size - 1][0].split())
    if (
        len(keys) > size
        and not words & _IDENT_TOKENS
        and set(keys[size][0].split()) & _IDENT_TOKENS
    ):
        return True
    for longer in keys[size : size + 2]:
        if longer[0] in _KNOWN_KEYS and longer[0] not in wanted.keys:
            return True
    return False


def _exact_candidates(index: _DocumentIndex, wanted: _Wanted) -> list[_Candidate]:
    found = [
        _Candidate(score + pair.kind, pair.line, pair.kind, pair.label, pair.value)
        for key, score in wanted.keys.items()
        for pair in index.pairs.get(key, ())
    ]
    return found + _prefix_candidates(index, wanted)


def _spelled(key: str) -> str:
    """A canonical key with "no" written out again, so "numbr" can be compared with "number"."""
    return " ".join(sorted("number" if word == "no" else word for word in key.split()))


@lru_cache(maxsize=4096)
def _is_identifier_word(word: str) -> bool:
    if word in _IDENT_TOKENS:
        return True
    return difflib.SequenceMatcher(None, word, "number").ratio() >= _FUZZY_CUTOFF


def _names_identifier(key: str) -> bool:
    """Like the check in `_ident_mismatch`, but "numbr" counts as an identifier word too."""
    return any(map(_is_identifier_word, key.split()))


def _fuzzy_candidates(index: _DocumentIndex, wanted: _Wanted) -> list[_Candidate]:
    """Labels near the field's name or a synonym: misspelt ("Invocie numbr") or longer ("Estimated
    tax" for "tax", up to two extra words), the last resort before giving up.

    Only labels that share a word, or a near-spelling of one, with a wanted label are compared
    whole, so a document with thousands of distinct labels costs little more than one with a few.
    """
    targets = [
        (target, score, set(target.split()), _names_identifier(target))
        for target, score in {_spelled(key): score for key, score in wanted.keys.items()}.items()
    ]
    words = sorted({word for target in targets for word in target[2]})
    keys: set[str] = set()
    for word in words:
        for close in index.close_words(word):
            keys.update(index.labels_by_word.get(close, ()))
    found: list[_Candidate] = []
    for key in sorted(keys):
        spelled = _spelled(key)
        matcher = difflib.SequenceMatcher(None, b=spelled)
        weight = 0.0  # closeness times how good the matched label is (name over synonym)
        label_words = set(spelled.split())
        label_identifier = _names_identifier(spelled)
        for target, score, target_words, target_identifier in targets:
            if label_identifier != target_identifier:
                continue
            if target_words < label_words and len(label_words - target_words) <= 2:
                weight = max(weight, _CONTAINED * score / _EXACT)
                continue
            shorter, longer = sorted((len(spelled), len(target)))
            if 2 * shorter < _FUZZY_CUTOFF * (shorter + longer):
                continue  # the ratio cannot reach the cutoff with lengths this far apart
            matcher.set_seq1(target)
            if matcher.quick_ratio() < _FUZZY_CUTOFF:
                continue
            ratio = matcher.ratio()
            if ratio >= _FUZZY_CUTOFF:
                weight = max(weight, ratio * score / _EXACT)
        if not weight:
            continue
        score = int(_FUZZY * weight)
        found.extend(
            _Candidate(score + pair.kind, pair.line, pair.kind, pair.label, pair.value)
            for pair in index.pairs[key]
        )
    return found


def _best(candidates: list[_Candidate], wanted: _Wanted) -> _Candidate | None:
    best: _Candidate | None = None
    for candidate in sorted(candidates, key=_Candidate.order):
        if best is not None and candidate.score < best.score:
            break  # sorted by score, and a penalty only lowers it: nothing later can win
        if wanted.accepts(candidate.value):
            adjusted = candidate
        elif wanted.strict or candidate.kind in _LOOSE:
            continue
        else:
            adjusted = _Candidate(
                candidate.score - _SHAPE_PENALTY,
                candidate.line,
                candidate.kind,
                candidate.label,
                candidate.value,
            )
        if best is None or adjusted.order() < best.order():
            best = adjusted
    return best


_MISSING: dict[str, Any] = {"value": None, "quote": None, "page": None, "verified": False}


def _field_result(index: _DocumentIndex, wanted: _Wanted) -> dict[str, Any]:
    chosen = _best(_exact_candidates(index, wanted), wanted)
    if wanted.keys and (chosen is None or chosen.score < _FUZZY + _COLON):
        fuzzy = _best(_fuzzy_candidates(index, wanted), wanted)
        if fuzzy is not None and (chosen is None or fuzzy.order() < chosen.order()):
            chosen = fuzzy
    if chosen is None:
        return dict(_MISSING)
    quote = index.lines[chosen.line]
    result: dict[str, Any] = {"value": None}
    field_type = wanted.spec.get("type") or "string"
    if field_type == "number":
        amount = parse_amount(chosen.value, context=f"{chosen.label} {quote}")
        if amount is None:
            return dict(_MISSING)
        result["value"] = amount.value
        if amount.currency:
            result["currency"] = amount.currency
    elif field_type == "date":
        result["value"] = parse_date(chosen.value, index.date_order)
    elif field_type == "boolean":
        result["value"] = parse_boolean(chosen.value)
    elif field_type == "list":
        result["value"] = parse_list(chosen.value)
    else:
        result["value"] = chosen.value
    if result["value"] is None:
        return dict(_MISSING)
    # The quote is a line sliced from the document text, so it is found there by construction.
    result.update(quote=quote, page=index.page(chosen.line), verified=True)
    return result


class LocalEngine:
    """Offline, deterministic extraction by label/value matching; costs nothing."""

    name = "local"

    def extract(self, request: ExtractionRequest) -> ExtractionResult:
        if not request.text.strip():
            raise ExtractionError(
                "no_text_layer",
                f"{request.filename} has no text to extract from (no text layer)",
                kind=ErrorKind.PERMANENT,
            )
        specs = request.fields or fields_from_prompt(request.prompt)
        index = _DocumentIndex(request.text)
        fields = {spec["name"]: _field_result(index, _wanted(spec)) for spec in specs}
        return ExtractionResult(
            result={"engine": self.name, "model": None, "fields": fields},
            cost_usd=Decimal("0"),
        )
