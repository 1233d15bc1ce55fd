"""Long documents asked in page windows: which pages each window holds, and how the windows'
answers become one (rows merged in document order, the overlap's repeated rows dropped)."""

from __future__ import annotations

import json
from typing import Any

from extraction.claude.answers import MAX_DOCUMENT_ROWS, is_invalid
from extraction.fields import FieldSpec

WINDOW_PAGES = 8
# One page seen by two windows, so a row that runs over a window's edge is whole in one of them.
OVERLAP_PAGES = 1


def page_windows(count: int) -> list[tuple[int, int]]:
    """The (first, last) 1-based pages of each window over `count` pages."""
    windows = []
    first = 1
    while True:
        last = min(first + WINDOW_PAGES - 1, count)
        windows.append((first, last))
        if last >= count:
            return windows
        first = last - OVERLAP_PAGES + 1


def _row_key(value: dict[str, Any], proof: dict[str, Any]) -> str:
    quote = " ".join((proof.get("quote") or "").split()).casefold()
    return json.dumps([value, quote, proof.get("page")], sort_keys=True, default=str)


def _merged_table(cells: list[dict[str, Any]]) -> dict[str, Any]:
    values: list[dict[str, Any]] = []
    proofs: list[dict[str, Any]] = []
    seen: set[str] = set()
    for cell in cells:
        for value, proof in zip(cell["value"], cell["rows"], strict=True):
            key = _row_key(value, proof)
            if key in seen or len(values) >= MAX_DOCUMENT_ROWS:
                continue
            seen.add(key)
            values.append(value)
            proofs.append(proof)
    return {
        "value": values,
        "rows": proofs,
        "quote": None,
        "page": proofs[0]["page"] if proofs else None,
    }


def merge_windows(
    answers: list[dict[str, dict[str, Any]]], fields: list[FieldSpec]
) -> dict[str, dict[str, Any]]:
    """One answer from the windows' answers: a table's valid rows of every window in order, a
    scalar from the first window that has a valid value (else the first window's cell)."""
    merged: dict[str, dict[str, Any]] = {}
    for spec in fields:
        name = spec["name"]
        cells = [answer[name] for answer in answers]
        valid = [cell for cell in cells if not is_invalid(cell)]
        if spec["type"] == "table" and valid:
            merged[name] = _merged_table(valid)
        else:
            merged[name] = next((cell for cell in valid if cell["value"] is not None), cells[0])
    return merged
