"""Checking that a quoted value really stands in the document (whitespace- and case-insensitive)."""

from __future__ import annotations

import bisect
import re
from typing import Any

from extraction.contract import PAGE_BREAK, page_of

_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"\S+")


def _folded(text: str) -> tuple[str, list[int]]:
    """Text with runs of white space made one space and case folded, and for each character of
    the result its offset in the original (so a match can be given a page)."""
    if text.isascii():
        return _folded_ascii(text)
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


def _folded_ascii(text: str) -> tuple[str, list[int]]:
    """`_folded` a word at a time, for text whose case folding keeps every character one
    character (ASCII): the same result, built by C loops instead of one Python step a
    character, which mattered for a long document checked on every completion."""
    words: list[str] = []
    offsets: list[int] = []
    for match in _WORD.finditer(text):
        start, end = match.span()
        if words:
            offsets.append(start)  # the single space stands where the word after it starts
        words.append(match.group())
        offsets.extend(range(start, end))
    return " ".join(words).lower(), offsets


class QuoteChecker:
    """Finds quotes in one document's text; build once per document, check many quotes."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._folded, self._offsets = _folded(text)
        self._page_starts = [0] + [at + 1 for at, char in enumerate(text) if char == PAGE_BREAK]

    def span(self, quote: str | None, start: int = 0) -> tuple[int, int] | None:
        """Offsets of the first and the last character of the quote's first occurrence at or
        after `start` in the original text, or None when it is not there."""
        if not quote or not quote.strip():
            return None
        needle = _SPACE.sub(" ", quote.strip()).casefold()
        at = self._folded.find(needle, bisect.bisect_left(self._offsets, start))
        if at < 0:
            return None
        return self._offsets[at], self._offsets[at + len(needle) - 1]

    def locate(self, quote: str | None) -> int | None:
        """Offset of the quote in the original text, or None when it is not there."""
        found = self.span(quote)
        return None if found is None else found[0]

    def pages(self, quote: str | None, page: int | None) -> list[int] | None:
        """The pages the quote stands on (two or more when it runs over a page break): where
        it is on `page` (a reader's or a model's word for where it is), else where it first is;
        None when it is not in the text."""
        found = None
        if page is not None and 1 <= page <= len(self._page_starts):
            found = self.span(quote, self._page_starts[page - 1])
            if found is not None and page_of(self.text, found[0]) != page:
                found = None
        found = found or self.span(quote)
        if found is None:
            return None
        first, last = page_of(self.text, found[0]), page_of(self.text, found[1])
        assert first is not None and last is not None  # offsets found are never negative
        return list(range(first, last + 1))

    def placed(self, fields: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """The fields with each value's page, and each table row's `pages`, where its quote
        stands in the text. A quote not found keeps the page it was given: whether a value
        is found is `extraction.statuses.settle`'s to say."""
        out = {}
        for name, cell in fields.items():
            cell = dict(cell)
            if cell.get("value") is not None and cell.get("quote"):
                pages = self.pages(cell["quote"], cell.get("page"))
                if pages:
                    cell["page"] = pages[0]
            if isinstance(cell.get("rows"), list):
                cell["rows"] = [self._placed_row(row) for row in cell["rows"]]
                if cell["rows"]:
                    cell["page"] = cell["rows"][0]["page"]
            out[name] = cell
        return out

    def _placed_row(self, row: dict[str, Any]) -> dict[str, Any]:
        pages = self.pages(row.get("quote"), row.get("page"))
        return {**row, "page": pages[0], "pages": pages} if pages else dict(row)
