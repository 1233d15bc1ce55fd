"""The offline engine's label matching: what a field looks for, and the labelled values that
fit it best.

Each field looks up its own name first, then the synonyms of the concept it names ("amount due"
for "total"), then its description, then lines that start with any of those labels. Only when
none of those gives a usable value are near labels considered: within difflib distance ("Invocie
numbr"), or holding the wanted words and up to two more ("Estimated tax"). A candidate must have
the shape the field wants: a declared date/number/boolean must parse as one; a string field named
like a date, an amount or an identifier prefers values of that shape. Ties go to the pair written
most explicitly (colon before gap before table), then to the first occurrence in the document.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import lru_cache

from extraction.fields import FieldSpec
from extraction.local.lines import (
    COLON,
    DIGIT,
    FUZZY_CUTOFF,
    HEAD_WORDS,
    KNOWN_KEYS,
    LETTER,
    LOOSE,
    PREFIX,
    Candidate,
    DocumentIndex,
    clean_value,
    joined,
    label_key,
)
from extraction.local.vocabulary import GROUPS, IDENT_TOKENS, Shape
from extraction.normalise import (
    date_spans,
    parse_amount,
    parse_boolean,
    parse_date,
    parse_list,
)

_PAGE_NUMBER = re.compile(
    r"^(?:page|seite|pagina|página|pag|blad|feuille|folio)\b|\b\d+\s*(?:of|von|de|sur|di|van)\s*\d+$",
    re.IGNORECASE,
)

# A clock time after a date on a receipt's line ("12.03.2024 14:22", "8 March 2024 4:09 PM").
_TIME = re.compile(
    r"\s*(?:\d{1,2}[:.]\d{2}(?::\d{2})?(?:\s*[AaPp]\.?[Mm]\.?)?(?:\s*[Uu]hr|\s*h)?)?\s*$"
)

# Table rules and box edges that OCR reads as characters beside a value ("| US008601").
_BORDERS = " |¦[]{}"
# A lower-case word glued to the digits before it, and a year or a clock time after it.
_GLUED_WORD = re.compile(r"(?<=\d)[^\W\d_]*[a-zà-ÿ]{3,}\b")
_YEAR_OR_TIME = re.compile(r"\b(?:19|20)\d{2}\b|\b\d{1,2}:\d{2}\b")

_FULL_YEAR = re.compile(r"(?<!\d)(?:19|20)\d{2}(?!\d)")
_CLOCK = re.compile(
    r"\s+\d{1,2}[:.]\s?\d{2}(?::\d{2})?(?:\s*[AaPp]\.?[Mm]\.?)?(?:\s*[Uu]hr|\s*h)?\s*"
)
_DAY_GLUED = re.compile(r"\d+[^\W\d_]")
# Where digits run into a date, the number before it is at least this long ("8939/2024").
RUN_INTO_NUMBER = 4
_SENTENCE_WORD = re.compile(r"(?:^|\s)[^\W\d_A-Z]{2,}(?=\s|$)")

_EXACT = 100
_SYNONYM = 90
_DESCRIPTION = 85
_FUZZY = 75  # times the difflib ratio, so always below a synonym
_CONTAINED = 0.8  # the weight of a label holding the wanted words and a few more
_SHAPE_PENALTY = 30


@dataclass
class Wanted:
    """What one field looks for: label keys with their scores, and the shape of its value."""

    spec: FieldSpec
    shape: Shape
    strict: bool  # a declared type: a value that does not parse is no value
    keys: dict[str, int] = field(default_factory=dict)
    concept: str | None = None  # the first phrase of the synonym group the name belongs to

    def accepts(self, value: str) -> bool:
        shape = self.shape
        if shape is Shape.DATE:
            return parse_date(value) is not None
        if shape is Shape.AMOUNT:
            return parse_amount(value) is not None
        if shape is Shape.BOOLEAN:
            return parse_boolean(value) is not None
        if shape is Shape.LIST:
            return bool(parse_list(value))
        if shape is Shape.IDENT:
            # An identifier has a digit, and is neither a date ("INVOICE" over "12 March 2024")
            # nor a page number ("INVOICE" over "Page 1 of 2").
            return (
                DIGIT.search(value) is not None
                and not _is_date_and_time(value)
                and not _PAGE_NUMBER.search(value)
            )
        if shape is Shape.TEXT:
            return LETTER.search(value) is not None
        return True


@lru_cache(maxsize=4096)
def _group_of(key: str) -> int | None:
    """The synonym group of a label (fuzzy); cached, since field names repeat per document."""
    if key in KNOWN_KEYS:
        return KNOWN_KEYS[key]
    best: tuple[float, int] | None = None
    matcher = difflib.SequenceMatcher(None, b=key)
    for known, group in KNOWN_KEYS.items():
        if _ident_mismatch(key, known):
            continue
        matcher.set_seq1(known)
        ratio = matcher.ratio()
        if ratio >= 0.85 and (best is None or ratio > best[0]):
            best = (ratio, group)
    return best[1] if best else None


def _ident_mismatch(first: str, second: str) -> bool:
    """'customer' is not 'customer no': identifier labels only match identifier labels."""
    return bool(IDENT_TOKENS & set(first.split())) != bool(IDENT_TOKENS & set(second.split()))


_TYPE_SHAPES = {
    "number": Shape.AMOUNT,
    "date": Shape.DATE,
    "boolean": Shape.BOOLEAN,
    "list": Shape.LIST,
}


def _shape_from_name(key: str) -> Shape:
    words = set(key.split())
    if words & IDENT_TOKENS or words & {"iban", "reference", "code"}:
        return Shape.IDENT
    if words & {"date", "dated", "due", "issued"}:
        return Shape.DATE
    if words & {"total", "amount", "subtotal", "tax", "vat", "price", "cost", "balance", "fee"}:
        return Shape.AMOUNT
    return Shape.ANY


# "total with currency", "total including VAT": the label to look for is what comes before.
_NAME_QUALIFIER = re.compile(
    r"\s+(?:with|including|incl\.?|excluding|excl\.?|in|as)\s+.*$", re.IGNORECASE
)


def wanted_by(spec: FieldSpec) -> Wanted:
    name_key = label_key(spec["name"])
    group = _group_of(name_key) if name_key else None
    base = _NAME_QUALIFIER.sub("", spec["name"])
    base_key = label_key(base) if base != spec["name"] else ""
    if group is None and base_key:
        group = _group_of(base_key)
    field_type = spec.get("type") or "string"
    if field_type in _TYPE_SHAPES:
        shape, strict = _TYPE_SHAPES[field_type], True
    else:
        shape = GROUPS[group][0] if group is not None else _shape_from_name(name_key)
        strict = False
    concept = GROUPS[group][1][0] if group is not None else None
    wanted = Wanted(spec=spec, shape=shape, strict=strict, concept=concept)
    if name_key:
        wanted.keys[name_key] = _EXACT
    if base_key:
        wanted.keys.setdefault(base_key, _EXACT)
    if group is not None:
        for phrase in GROUPS[group][1]:
            wanted.keys.setdefault(label_key(phrase), _SYNONYM)
    description = spec.get("description") or ""
    description_key = label_key(description) if description else ""
    if description_key and len(description_key.split()) <= 6:
        wanted.keys.setdefault(description_key, _DESCRIPTION)
    return wanted


def _prefix_candidates(index: DocumentIndex, wanted: Wanted) -> list[Candidate]:
    """Cells that start with a wanted label ("Invoice No. INV-001"); the rest is the value.

    The longest wanted label at the start of the cell is the one meant.
    """
    found: list[Candidate] = []
    first_words = {word for key in wanted.keys for word in key.split()}
    sites: set[tuple[int, int]] = set()
    for word in first_words:
        sites.update(index.by_first_word.get(word, ()))
    for number, cell_number in sorted(sites):
        cell = index.cells[number][cell_number]
        keys = index.head_keys(cell)
        for size in range(min(len(keys), HEAD_WORDS - 2), 0, -1):
            key, end = keys[size - 1]
            score = wanted.keys.get(key)
            if score is None:
                continue
            if size > 1 and keys[size - 2][0] == key:
                continue  # a repeated word ("Invoice No. INV-...") does not lengthen the label
            if joined(cell, end) or _extends_to_other_label(keys, size, wanted):
                break
            value = clean_value(cell[end:])
            if value:
                found.append(Candidate(score + PREFIX, number, PREFIX, cell, value))
            break
    return found


def starts_with_known_label(index: DocumentIndex, cell: str) -> bool:
    """Whether the cell's first words are a label the vocabulary knows."""
    return any(key in KNOWN_KEYS for key, _ in index.head_keys(cell)[: HEAD_WORDS - 2])


def _extends_to_other_label(keys: list[tuple[str, int]], size: int, wanted: Wanted) -> bool:
    """'Customer No. 123' is not the customer, nor 'Due date ...' the date."""
    words = set(keys[size - 1][0].split())
    if len(keys) > size and not words & IDENT_TOKENS and set(keys[size][0].split()) & IDENT_TOKENS:
        return True
    for longer in keys[size : size + 2]:
        if longer[0] in KNOWN_KEYS and longer[0] not in wanted.keys:
            return True
    return False


def exact_candidates(index: DocumentIndex, wanted: Wanted) -> list[Candidate]:
    found = [
        Candidate(score + pair.kind, pair.line, pair.kind, pair.label, pair.value)
        for key, score in wanted.keys.items()
        for pair in index.pairs.get(key, ())
    ]
    return found + _prefix_candidates(index, wanted)


def _spelled(key: str) -> str:
    """A canonical key with "no" written out again, so "numbr" can be compared with "number"."""
    return " ".join(sorted("number" if word == "no" else word for word in key.split()))


@lru_cache(maxsize=4096)
def _is_identifier_word(word: str) -> bool:
    if word in IDENT_TOKENS:
        return True
    return difflib.SequenceMatcher(None, word, "number").ratio() >= FUZZY_CUTOFF


def _names_identifier(key: str) -> bool:
    """Like the check in `_ident_mismatch`, but "numbr" counts as an identifier word too."""
    return any(map(_is_identifier_word, key.split()))


def _fuzzy_candidates(index: DocumentIndex, wanted: Wanted) -> list[Candidate]:
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
    found: list[Candidate] = []
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
            if 2 * shorter < FUZZY_CUTOFF * (shorter + longer):
                continue  # the ratio cannot reach the cutoff with lengths this far apart
            matcher.set_seq1(target)
            if matcher.quick_ratio() < FUZZY_CUTOFF:
                continue
            ratio = matcher.ratio()
            if ratio >= FUZZY_CUTOFF:
                weight = max(weight, ratio * score / _EXACT)
        if not weight:
            continue
        score = int(_FUZZY * weight)
        found.extend(
            Candidate(score + pair.kind, pair.line, pair.kind, pair.label, pair.value)
            for pair in index.pairs[key]
        )
    return found


def best(candidates: list[Candidate], wanted: Wanted) -> Candidate | None:
    best: Candidate | None = None
    for candidate in sorted(candidates, key=Candidate.order):
        if best is not None and candidate.score < best.score:
            break  # sorted by score, and a penalty only lowers it: nothing later can win
        if wanted.accepts(candidate.value):
            adjusted = candidate
        elif wanted.strict or candidate.kind in LOOSE:
            continue
        else:
            adjusted = Candidate(
                candidate.score - _SHAPE_PENALTY,
                candidate.line,
                candidate.kind,
                candidate.label,
                candidate.value,
            )
        if best is None or adjusted.order() < best.order():
            best = adjusted
    return best


def _is_date_and_time(value: str) -> bool:
    """A date, and at most a clock time after it: "30 July 2025 15:23"."""
    spans = date_spans(value)
    return bool(spans) and spans[0][0] == 0 and _TIME.fullmatch(value[spans[0][1] :]) is not None


def is_date_then_time(value: str) -> bool:
    """A date with its year in full, its day set apart from the rest, and a clock time after
    it: "05/09/2024 08:54", "4 luglio 2025 16:29"."""
    if _DAY_GLUED.match(value):
        return False
    spans = date_spans(value)
    if not spans or spans[0][0] != 0:
        return False
    end = spans[0][1]
    return _FULL_YEAR.search(value[:end]) is not None and _CLOCK.fullmatch(value[end:]) is not None


def identifier_value(value: str) -> str | None:
    """An identifier without the date (and time) a receipt writes right after it on the same
    line: "SI-00011" of "SI-00011 30 July 2025 15:23", "INV02046" of "INV02046January 8, 2023
    16:09" (a text layer that lost the gap between the two). None for words of a sentence
    ("for invoice INV07779" after "Credit note"): an identifier has no lower-case word."""
    value = value.strip(_BORDERS)
    for start in range(1, len(value)):
        before, here = value[start - 1], value[start]
        if here.isspace():
            continue
        if before.isspace() or (before.isdigit() and here.isalpha()):
            cut = _is_date_and_time(value[start:])
        else:
            # Digits run into digits ("FT 8939/202405/09/2024 08:54"): only a date with its
            # clock time after it says where the number ends.
            token = value[:start].split()[-1] if value[:start].split() else ""
            cut = (
                before.isdigit()
                and here.isdigit()
                and len(token) >= RUN_INTO_NUMBER
                and is_date_then_time(value[start:])
            )
        if cut:
            value = value[:start].rstrip(" ,;-\u2013")
            break
    else:
        # OCR that lost the first letter of the month: "INV02046anuary 8, 2023 16:09".
        glued = _GLUED_WORD.search(value)
        if glued and _YEAR_OR_TIME.search(value, glued.end()):
            value = value[: glued.start()]
    return None if _SENTENCE_WORD.search(value) or not value else value


def choose(
    index: DocumentIndex, wanted: Wanted, clean: Callable[[str], str | None] | None = None
) -> Candidate | None:
    """The field's best labelled value: exact and synonym labels first, near labels only when
    those give nothing as explicit as a colon pair. `clean` turns a value into the one the field
    takes ("ACME GmbH" of "ACME GmbH, Hauptstr. 5"), or None when it is none; an identifier
    loses a date written after it."""
    if clean is None and wanted.shape is Shape.IDENT:
        clean = identifier_value
    chosen = best(_cleaned(exact_candidates(index, wanted), clean), wanted)
    if wanted.keys and (chosen is None or chosen.score < _FUZZY + COLON):
        fuzzy = best(_cleaned(_fuzzy_candidates(index, wanted), clean), wanted)
        if fuzzy is not None and (chosen is None or fuzzy.order() < chosen.order()):
            chosen = fuzzy
    return chosen


def _cleaned(
    candidates: list[Candidate], clean: Callable[[str], str | None] | None
) -> list[Candidate]:
    if clean is None:
        return candidates
    kept = []
    for candidate in candidates:
        value = clean(candidate.value)
        if value is not None:
            kept.append(replace(candidate, value=value))
    return kept
