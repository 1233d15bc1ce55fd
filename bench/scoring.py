"""Scoring extracted values against the development set's labels: pure functions, no I/O.

The rules of issue 15: a value is correct when it matches exactly after a field's own light
normalisation — dates as ISO 8601, amounts to the cent, currency as its ISO 4217 code, invoice
number ignoring spaces, party names ignoring case and punctuation. Anything else the engine gave
is wrong, and no value is missing; the benchmark counts a wrong value against the engine like a
missing one, and reports the two apart because a wrong value is worse.

Line items (issue 16): the extracted rows are paired with the expected ones in document order so
that the pairs share as many correct cells as possible (an alignment, so a missing or invented
row in the middle does not shift every row after it); cells correct / (max(expected rows,
extracted rows) x columns) then counts missing and invented rows alike.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum

CENT = Decimal("0.01")
DATES = frozenset({"date", "due date"})
AMOUNTS = frozenset({"total", "net", "tax", "unit price", "amount"})
NAMES = frozenset({"supplier", "buyer", "description"})
IDENTIFIERS = frozenset({"invoice number", "supplier vat id", "buyer vat id"})
COLUMNS = ("description", "quantity", "unit price", "amount")

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class Outcome(StrEnum):
    CORRECT = "correct"
    WRONG = "wrong"
    MISSING = "missing"


def _decimal(value: object) -> Decimal | None:
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _name(text: str) -> str:
    """Case, punctuation and spacing removed: "ACME Supplies, Ltd." -> "acme supplies ltd"."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    kept = "".join(" " if unicodedata.category(c)[0] in "PSZ" else c for c in folded)
    return " ".join(kept.split())


def canonical(field: str, value: object) -> object:
    """The form in which `field`'s values are compared; a value of the wrong shape stays as it
    is (and so matches nothing the labels hold)."""
    text = str(value).strip()
    if field in DATES:
        return text if _ISO_DATE.fullmatch(text) else ("not a date", text)
    if field in AMOUNTS:
        number = _decimal(text)
        return number.quantize(CENT) if number is not None else ("not an amount", text)
    if field == "quantity":
        number = _decimal(text)
        return number.normalize() if number is not None else ("not a quantity", text)
    if field == "currency":
        return text.upper()
    if field in IDENTIFIERS:
        return "".join(text.split()).upper() if "vat" in field else "".join(text.split())
    if field in NAMES:
        return _name(text)
    return text


def judge(field: str, expected: object, extracted: object) -> Outcome:
    """One value against its label. A label of None means the document shows no such value:
    then only no value is correct."""
    given = extracted is not None and str(extracted).strip() != ""
    if expected is None:
        return Outcome.WRONG if given else Outcome.CORRECT
    if not given:
        return Outcome.MISSING
    same = canonical(field, expected) == canonical(field, extracted)
    return Outcome.CORRECT if same else Outcome.WRONG


@dataclass(frozen=True)
class RowScore:
    expected_rows: int
    extracted_rows: int
    correct_cells: int
    exact_rows: int  # paired rows whose every cell is correct

    @property
    def cells(self) -> int:
        """The denominator: max(expected, extracted) rows times the columns."""
        return max(self.expected_rows, self.extracted_rows) * len(COLUMNS)

    @property
    def rows(self) -> int:
        return max(self.expected_rows, self.extracted_rows)

    @property
    def count_exact(self) -> bool:
        return self.expected_rows == self.extracted_rows


def _cells_correct(expected: Mapping[str, object], extracted: Mapping[str, object]) -> int:
    return sum(
        judge(column, expected.get(column), extracted.get(column)) is Outcome.CORRECT
        for column in COLUMNS
    )


def score_rows(
    expected: Sequence[Mapping[str, object]], extracted: Sequence[Mapping[str, object]]
) -> RowScore:
    """Rows paired in order to share the most correct cells, then counted."""
    n, m = len(expected), len(extracted)
    cells = [[_cells_correct(e, x) for x in extracted] for e in expected]
    # best[i][j]: the most correct cells pairing expected[i:] with extracted[j:] in order.
    best = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            paired = cells[i][j] + best[i + 1][j + 1] if cells[i][j] else 0
            best[i][j] = max(paired, best[i + 1][j], best[i][j + 1])
    exact, i, j = 0, 0, 0
    while i < n and j < m:
        if cells[i][j] and best[i][j] == cells[i][j] + best[i + 1][j + 1]:
            exact += cells[i][j] == len(COLUMNS)
            i, j = i + 1, j + 1
        elif best[i][j] == best[i + 1][j]:
            i += 1
        else:
            j += 1
    return RowScore(n, m, best[0][0] if n and m else 0, exact)
