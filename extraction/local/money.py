"""The currency a document is written in: what a currency field answers when no label names it,
and what an amount written without a symbol is in."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from extraction.local.lines import DocumentIndex
from extraction.normalise import DOLLARS, currencies_in


@dataclass(frozen=True, slots=True)
class Currencies:
    """The currencies a document shows, most shown first, each with the first line showing it."""

    counted: tuple[tuple[str, int], ...]  # (ISO 4217 code, how often it is written)
    first_line: dict[str, int]

    @property
    def dominant(self) -> str | None:
        return self.counted[0][0] if self.counted else None

    @property
    def only(self) -> str | None:
        """The currency when the document shows exactly one."""
        return self.counted[0][0] if len(self.counted) == 1 else None


def _beside_an_amount(line: str, symbol: str) -> bool:
    """Whether a currency symbol stands right before a number or right after an amount with
    cents, as prices are written ("$279.84", "€ 7045,27", "18,92 €")."""
    mark = re.escape(symbol)
    before, after = rf"{mark}[ \u00a0]?[-\u2212]?\d", rf"\d[.,]\d{{2}}[ \u00a0]?{mark}"
    return re.search(f"{before}|{after}", line) is not None


def document_currencies(index: DocumentIndex) -> Currencies:
    """Count every symbol and ISO code on the document's lines.

    A bare "$" counts for the one other dollar the document names by its code ("CAD", "AUD"),
    else for the US dollar. Ties go to the currency shown first.
    """
    counts: Counter[str] = Counter()
    first: dict[str, int] = {}
    for number, line in enumerate(index.lines):
        for written, code in currencies_in(line):
            if not written.isalpha() and not _beside_an_amount(line, written):
                continue  # "Umsatzsteuer 7 $": OCR's reading of a per cent sign, not dollars
            key = "$" if written == "$" else code
            counts[key] += 1
            first.setdefault(key, number)
    if "$" in counts:
        named = sorted(code for code in counts if code in DOLLARS and code != "USD")
        dollar = named[0] if len(named) == 1 else "USD"
        counts[dollar] += counts.pop("$")
        first[dollar] = min(first.get(dollar, first["$"]), first.pop("$"))
    counted = sorted(counts.items(), key=lambda item: (-item[1], first[item[0]]))
    return Currencies(tuple(counted), first)
