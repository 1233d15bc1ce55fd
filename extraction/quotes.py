"""Checking that a quoted value really stands in the document (whitespace- and case-insensitive)."""

from __future__ import annotations

import re
from typing import Any

from extraction.contract import PAGE_BREAK, page_of

_SPACE = re.compile(r"\s+")


def _folded(text: str) -> tuple[str, list[int]]:
    """Text with runs of white space made one space and case folded, and for each character of
    the result its offset in the original (so a match can be given a page)."""
    out: list[str] = []
    offsets: list[int] = []
    pending_space = False
    for index, char in enumerate(text):
        if char.isspace():
            pending_space = bool(out)
            continue
        if pending_space:
            out.append(" ")
            offsets.append(index)
            pending_space = False
        folded = char.casefold()
        out.append(folded)
        offsets.extend([index] * len(folded))
    return "".join(out), offsets


class QuoteChecker:
    """Finds quotes in one document's text; build once per document, check many quotes."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._folded, self._offsets = _folded(text)

    def locate(self, quote: str | None) -> int | None:
        """Offset of the quote in the original text, or None when it is not there."""
        if not quote or not quote.strip():
            return None
        needle = _SPACE.sub(" ", quote.strip()).casefold()
        at = self._folded.find(needle)
        return None if at < 0 else self._offsets[at]

    def check(self, fields: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Mark each field verified when its quote is found; fill the page from where it was."""
        checked = {}
        for name, cell in fields.items():
            at = self.locate(cell.get("quote")) if cell.get("value") is not None else None
            cell = {**cell, "verified": at is not None}
            if at is not None and PAGE_BREAK in self.text:
                cell["page"] = page_of(self.text, at)
            checked[name] = cell
        return checked
