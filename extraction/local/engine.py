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
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any

from extraction.contract import (
    Engine,
    ErrorKind,
    ExtractionError,
    ExtractionRequest,
    ExtractionResult,
)
from extraction.fields import FieldSpec, fields_from_prompt
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
    parse_amount,
    parse_boolean,
    parse_date,
    parse_list,
)

_EXACT = 100
_SYNONYM = 90
_DESCRIPTION = 85
_FUZZY = 75  # times the difflib ratio, so always below a synonym
_CONTAINED = 0.8  # the weight of a label holding the wanted words and a few more
_SHAPE_PENALTY = 30


@dataclass
class _Wanted:
    """What one field looks for: label keys with their scores, and the shape of its value."""

    spec: FieldSpec
    shape: Shape
    strict: bool  # a declared type: a value that does not parse is no value
    keys: dict[str, int] = field(default_factory=dict)

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
            return DIGIT.search(value) is not None
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


def _wanted(spec: FieldSpec) -> _Wanted:
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
    wanted = _Wanted(spec=spec, shape=shape, strict=strict)
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


def _prefix_candidates(index: DocumentIndex, wanted: _Wanted) -> list[Candidate]:
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


def _extends_to_other_label(keys: list[tuple[str, int]], size: int, wanted: _Wanted) -> bool:
    """'Customer No. 123' is not the customer, nor 'Due date ...' the date."""
    words = set(keys[size - 1][0].split())
    if len(keys) > size and not words & IDENT_TOKENS and set(keys[size][0].split()) & IDENT_TOKENS:
        return True
    for longer in keys[size : size + 2]:
        if longer[0] in KNOWN_KEYS and longer[0] not in wanted.keys:
            return True
    return False


def _exact_candidates(index: DocumentIndex, wanted: _Wanted) -> list[Candidate]:
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


def _fuzzy_candidates(index: DocumentIndex, wanted: _Wanted) -> list[Candidate]:
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


def _best(candidates: list[Candidate], wanted: _Wanted) -> Candidate | None:
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


_MISSING: dict[str, Any] = {
    "value": None,
    "quote": None,
    "page": None,
    "verified": False,
    "source": "text",
}


def _field_result(index: DocumentIndex, wanted: _Wanted) -> dict[str, Any]:
    chosen = _best(_exact_candidates(index, wanted), wanted)
    if wanted.keys and (chosen is None or chosen.score < _FUZZY + COLON):
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
    result.update(quote=quote, page=index.page(chosen.line), verified=True, source="text")
    return result


class LocalEngine(Engine):
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
        index = DocumentIndex(request.text)
        fields = {spec["name"]: _field_result(index, _wanted(spec)) for spec in specs}
        return ExtractionResult(
            result={"engine": self.name, "model": None, "fields": fields},
            cost_usd=Decimal("0"),
        )
