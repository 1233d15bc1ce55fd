"""One status per value (DESIGN.md "Results"): the single step after every engine and the
e-invoice fill that says how sure Sheaf is of each value.

An engine gives each cell its value, quote, page and source (or status "invalid" with `raw` and
`reason` when its answer did not validate); `settle` decides found / unverified / missing by
looking for the quote on the value's own page, so a value taken from the wrong page is not
"found". It then fills `verified` (kept one release: status in found, checked) and `review`, and
runs the arithmetic checks (`extraction.checks.reconcile`), which upgrade found to checked.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from extraction.checks import reconcile
from extraction.contract import PAGE_BREAK, PageLayout, ValueStatus, page_of
from extraction.fields import FieldSpec
from extraction.quotes import QuoteChecker

_GOOD = (ValueStatus.FOUND, ValueStatus.CHECKED)


class _Pages:
    """The document's text, checked page by page (built once per result)."""

    def __init__(self, text: str, layout: Sequence[PageLayout]) -> None:
        self.text = text
        self.whole = QuoteChecker(text)
        pages = text.split(PAGE_BREAK)
        self.pages = [QuoteChecker(page) for page in pages] if len(pages) > 1 else [self.whole]
        self.ocr_pages = {page.number for page in layout if page.ocr_confidence is not None}

    def locate(self, quote: str | None, page: int | None) -> tuple[bool, int | None]:
        """Whether the quote stands on `page` (anywhere, when no page was given), and the page."""
        if page is not None:
            if not 1 <= page <= len(self.pages):
                return False, page
            return self.pages[page - 1].locate(quote) is not None, page
        at = self.whole.locate(quote)
        if at is None:
            return False, None
        return True, page_of(self.text, at) if PAGE_BREAK in self.text else 1

    def on_pages(self, quote: str | None, numbers: list[int]) -> bool:
        """Whether the quote stands on one of these pages, or runs across them (a table row
        over a page break)."""
        if any(self.locate(quote, number)[0] for number in numbers):
            return True
        if len(numbers) < 2 or not all(1 <= number <= len(self.pages) for number in numbers):
            return False
        spanned = range(min(numbers), max(numbers) + 1)
        joined = PAGE_BREAK.join(self.pages[number - 1].text for number in spanned)
        return QuoteChecker(joined).locate(quote) is not None

    def locate_lines(self, quote: str | None, pages: Sequence[int]) -> bool:
        """Whether every line of a row's quote stands on one of the row's pages: a row that runs
        over a page break quotes its lines from both, with the footer and the repeated header
        between them."""
        lines = [line for line in (quote or "").splitlines() if line.strip()]
        return bool(lines) and all(any(self.locate(line, p)[0] for p in pages) for line in lines)

    def source(self, given: str | None, page: int | None) -> str:
        if given == "xml":
            return "xml"
        return "ocr" if page is not None and page in self.ocr_pages else (given or "text")


def settle(
    result: dict[str, Any],
    fields: list[FieldSpec],
    text: str,
    *,
    layout: Sequence[PageLayout] = (),
) -> dict[str, Any]:
    """`result` with every field asked for in the shape of DESIGN.md "Results", a status on each
    value (and table row), and the document's `checks`.

    `text` is the document's text, pages separated by form feeds; `layout` the reader's pages,
    whose `ocr_confidence` tells which pages OCR read. Settling twice gives the same result, and
    keeps a review already made.
    """
    pages = _Pages(text, layout)
    given = result.get("fields") or {}
    cells: dict[str, dict[str, Any]] = {}
    for spec in fields:
        cell = dict(given.get(spec["name"]) or {})
        if spec.get("type") == "table":
            cells[spec["name"]] = _table(cell, pages)
        else:
            cells[spec["name"]] = _scalar(cell, pages)
    checks = reconcile(fields, cells)
    for spec in fields:
        cell = cells[spec["name"]]
        if spec.get("type") == "table" and cell["status"] != ValueStatus.INVALID:
            cell["status"] = table_status(cell["rows"])  # reconcile may have upgraded rows
        cell["verified"] = cell["status"] in _GOOD
    return {**result, "fields": cells, "checks": checks}


def _scalar(cell: dict[str, Any], pages: _Pages) -> dict[str, Any]:
    page = cell.get("page")
    out: dict[str, Any] = {
        "value": cell.get("value"),
        "quote": cell.get("quote"),
        "page": page,
        "status": ValueStatus.MISSING.value,
        "source": pages.source(cell.get("source"), page),
        "verified": False,
        "review": cell.get("review"),
    }
    for kept in ("currency",):  # what an engine adds beside the value (an amount's currency)
        if kept in cell:
            out[kept] = cell[kept]
    if cell.get("status") == ValueStatus.INVALID:
        out.update(value=None, status=ValueStatus.INVALID.value)
        out["raw"], out["reason"] = cell.get("raw"), cell.get("reason")
        return out
    if out["value"] is None:
        return out
    if out["source"] == "xml":
        # Read from the document's own structured data, exact whether or not a page prints it.
        out["status"] = ValueStatus.FOUND.value
        return out
    located, page = pages.locate(out["quote"], page)
    out["page"] = page
    out["source"] = pages.source(cell.get("source"), page)
    out["status"] = (ValueStatus.FOUND if located else ValueStatus.UNVERIFIED).value
    if cell.get("status") == ValueStatus.CHECKED and located:
        out["status"] = ValueStatus.CHECKED.value  # a re-settle keeps what reconcile proved
    return out


def _table(cell: dict[str, Any], pages: _Pages) -> dict[str, Any]:
    values = cell.get("value")
    values = values if isinstance(values, list) else []
    given_rows = cell.get("rows") or []
    rows: list[dict[str, Any]] = []
    for index in range(len(values)):
        row = dict(given_rows[index]) if index < len(given_rows) else {}
        row_pages = [p for p in row.get("pages") or [row.get("page")] if p is not None]
        located = cell.get("source") == "xml" or (
            pages.on_pages(row.get("quote"), row_pages)
            or (len(row_pages) > 1 and pages.locate_lines(row.get("quote"), row_pages))
            if row_pages
            else pages.locate(row.get("quote"), None)[0]
        )
        if not row_pages and located and cell.get("source") != "xml":
            row_pages = [pages.locate(row.get("quote"), None)[1]]
        rows.append(
            {
                "quote": row.get("quote"),
                "page": row_pages[0] if row_pages else None,
                "pages": row_pages,
                "status": (
                    ValueStatus.CHECKED
                    if located and row.get("status") == ValueStatus.CHECKED
                    else ValueStatus.FOUND
                    if located
                    else ValueStatus.UNVERIFIED
                ).value,
            }
        )
    first: int | None = rows[0]["page"] if rows else None
    out: dict[str, Any] = {
        "value": values,
        "rows": rows,
        "quote": None,
        "page": first,
        "status": table_status(rows),
        "source": pages.source(cell.get("source"), first),
        "verified": False,
        "review": cell.get("review"),
    }
    if cell.get("status") == ValueStatus.INVALID:
        out.update(value=None, rows=[], status=ValueStatus.INVALID.value)
        out["raw"], out["reason"] = cell.get("raw"), cell.get("reason")
    return out


def table_status(rows: list[dict[str, Any]]) -> str:
    """A table's status from its rows' (DESIGN.md "Results"): reconcile calls it again after it
    upgrades rows."""
    statuses = [row["status"] for row in rows]
    if not statuses:
        return ValueStatus.MISSING.value
    if ValueStatus.UNVERIFIED in statuses:
        return ValueStatus.UNVERIFIED.value
    if all(status == ValueStatus.CHECKED for status in statuses):
        return ValueStatus.CHECKED.value
    return ValueStatus.FOUND.value
