"""Header rows in plain text: a line of known labels over a line of their values, both written
with single spaces, as PDF text extraction gives a table of header fields:

    Invoice number Invoice date Due date Bill to
    INV-2024-1074 May 2, 2024 July 1, 2024 Contoso Ltd.

The header is cut into known labels (the fewest, so "Invoice date" is one label, not two), and
the value line into as many values, each of its label's shape: an identifier is one word with a
digit, a date is exactly a date, an amount exactly an amount, a name the words left. Only a cut
that is the one way to fit the shapes is taken; word boxes, where a reader gives them, say
where the columns are instead (`extraction.local.layout`).
"""

from __future__ import annotations

from extraction.local.lines import DIGIT, KNOWN_KEYS, LETTER, is_numeric, label_key
from extraction.local.vocabulary import GROUPS, Shape
from extraction.normalise import date_spans, parse_amount

_LONGEST_LABEL = 4  # words
_MOST_COLUMNS = 8


def header_row_pairs(header: str, values: str) -> list[tuple[str, str]]:
    """(label, value) of each column when `header` is a row of known labels and `values` fits
    under it in exactly one way; nothing otherwise."""
    labels = _labels(header.split())
    if labels is None or not 2 <= len(labels) <= _MOST_COLUMNS:
        return []
    tokens = values.split()
    shapes = [GROUPS[KNOWN_KEYS[label_key(label)]][0] for label in labels]
    fits = _fits(shapes, tokens, 0, 0, [])
    if len(fits) != 1:
        return []
    return list(zip(labels, fits[0], strict=True))


def _labels(words: list[str]) -> list[str] | None:
    """The words as the fewest known labels, or None when they are not all labels."""
    best: list[list[str] | None] = [None] * (len(words) + 1)
    best[0] = []
    for end in range(1, len(words) + 1):
        for size in range(1, min(_LONGEST_LABEL, end) + 1):
            before = best[end - size]
            if before is None:
                continue
            group = words[end - size : end]
            label = " ".join(group)
            if label_key(label) not in KNOWN_KEYS or len({w.casefold() for w in group}) < size:
                continue  # a repeated word starts the next label ("Invoice number Invoice date")
            current = best[end]
            if current is None or len(before) + 1 < len(current):
                best[end] = [*before, label]
    return best[len(words)]


def _fits(
    shapes: list[Shape], tokens: list[str], column: int, start: int, taken: list[str]
) -> list[list[str]]:
    """Every way (stopping at two) to cut tokens[start:] into values of shapes[column:]."""
    if column == len(shapes):
        return [list(taken)] if start == len(tokens) else []
    left = len(shapes) - column - 1  # columns after this one need a token each
    found: list[list[str]] = []
    for end in range(start + 1, len(tokens) - left + 1):
        value = " ".join(tokens[start:end])
        if not _fits_shape(shapes[column], value, end - start):
            continue
        found.extend(_fits(shapes, tokens, column + 1, end, [*taken, value]))
        if len(found) > 1:
            break
    return found


def _fits_shape(shape: Shape, value: str, words: int) -> bool:
    if shape is Shape.IDENT:
        return words == 1 and DIGIT.search(value) is not None
    if shape is Shape.DATE:
        return date_spans(value) == [(0, len(value))]
    if shape is Shape.AMOUNT:
        return words <= 3 and is_numeric(value) and parse_amount(value) is not None
    # A name or other text: words, not a date or a number on their own.
    return LETTER.search(value) is not None and not date_spans(value) and not is_numeric(value)
