"""Filling a request's fields from an e-invoice's business terms before any engine runs, and
merging what the engine then found for the rest.

A value from the XML is exact, so it is taken as the XML states it (dates ISO, amounts signed by
the document type, with their currency) and marked ``"source": "xml"``. Its quote is the line of
the document's text where the value is printed, found by its printed forms (a date in the six
languages' styles, an amount with any grouping and decimal mark), preferring a line that also
carries one of the term's labels; where the page does not show it, or the document is the XML
itself, the quote is the element's text and the page is null.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from typing import Any

from extraction.contract import ExtractionRequest, ValueStatus, page_of
from extraction.einvoice.standards import BT, KINDS, EInvoice, Kind, Value
from extraction.einvoice.terms import LINES, Target, label_key, labels_of, target_of
from extraction.fields import FieldSpec, fields_from_prompt
from extraction.local.tables import column_concept

# The content type of an uploaded e-invoice: its "text" is a rendering of the XML, not a page.
XML_CONTENT_TYPE = "application/xml"


@dataclass(frozen=True)
class XmlFirst:
    """The fields an e-invoice filled, and the request that asks the engine for the rest."""

    fields: list[FieldSpec]  # every field, in the batch's order
    cells: dict[str, dict[str, Any]]  # the fields the XML filled
    rest: ExtractionRequest  # the same request with only the fields the XML lacks

    def result(self, engine_result: dict[str, Any] | None, *, engine: str) -> dict[str, Any]:
        """The document's result: the XML's cells, the engine's for the rest (`engine_result`,
        None when the engine was not called), each field in the batch's order."""
        found = (engine_result or {}).get("fields", {})
        fields = {}
        for spec in self.fields:
            name = spec["name"]
            fields[name] = self.cells.get(name) or found.get(name) or dict(MISSING)
        if engine_result is None:
            return {"engine": engine, "model": None, "fields": fields}
        return {**engine_result, "fields": fields}


MISSING: dict[str, Any] = {
    "value": None,
    "quote": None,
    "page": None,
    "verified": False,
    "source": "text",
}


def prefill(request: ExtractionRequest, invoice: EInvoice) -> XmlFirst:
    """Fill every field of `request` that names a business term the invoice carries."""
    fields = request.fields or fields_from_prompt(request.prompt)
    quoting = _Quoting(request.text if request.content_type != XML_CONTENT_TYPE else "")
    cells: dict[str, dict[str, Any]] = {}
    for spec in fields:
        target = target_of(spec)
        if target is None:
            continue
        if spec.get("type") == "table":
            cell = _table(spec, invoice, quoting)
        else:
            cell = _cell(target, invoice, quoting)
        if cell is not None:
            cells[spec["name"]] = cell
    rest = [spec for spec in fields if spec["name"] not in cells]
    return XmlFirst(fields=fields, cells=cells, rest=replace(request, fields=rest))


def _table(spec: FieldSpec, invoice: EInvoice, quoting: _Quoting) -> dict[str, Any] | None:
    """The invoice lines as a table field's rows, each column the line's term its name means
    (description, quantity, net unit price, line amount); a row's quote is the page's line
    that prints its description, else null."""
    if not invoice.lines:
        return None
    value: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    for line in invoice.lines:
        terms = {
            "description": line.description,
            "quantity": line.quantity,
            "unit price": line.unit_price,
            "amount": line.amount,
        }
        cells: dict[str, Any] = {}
        for column in spec.get("columns", []):
            term = terms.get(column_concept(column) or "")
            cells[column["name"]] = None if term is None else term.value
        value.append(cells)
        quote, page = None, None
        if line.description is not None and quoting.text.strip():
            found = quoting.best_line(_text_pattern(line.description.text), ())
            if found is not None:
                quote, page = found
        pages = [] if page is None else [page]
        rows.append({"quote": quote, "page": page, "pages": pages, "status": ValueStatus.FOUND})
    return {
        **MISSING,
        "value": value,
        "rows": rows,
        "page": rows[0]["page"],
        "status": ValueStatus.FOUND,
        "verified": True,
        "source": "xml",
        "review": None,
    }


def _cell(target: Target, invoice: EInvoice, quoting: _Quoting) -> dict[str, Any] | None:
    if target == LINES:
        names = [line.description.value for line in invoice.lines if line.description]
        if not names:
            return None
        return {**MISSING, "value": names, "verified": True, "source": "xml"}
    term = invoice.terms.get(target)
    if term is None:
        return None
    kind = KINDS[target]
    cell: dict[str, Any] = {"value": term.value}
    if kind is Kind.AMOUNT and term.currency:
        cell["currency"] = term.currency
    if target is BT.TYPE_CODE:
        # Asked for in words; the UNTDID code ("381") is the quote, and pages do not print it.
        cell["value"] = "credit note" if invoice.credit_note else "invoice"
        quote, page = term.text, None
    else:
        quote, page = quoting.find(target, kind, term)
    # Read from the document's own structured data, not guessed: verified whether or not the
    # page prints it (the quote is then the XML element's text).
    cell.update(quote=quote, page=page, verified=True, source="xml")
    return cell


# ---- quoting the page -------------------------------------------------------------------------

_MONTHS = (
    ("january", "januar", "janvier", "januari", "enero", "gennaio", "jänner"),
    ("february", "februar", "février", "fevrier", "februari", "febrero", "febbraio"),
    ("march", "märz", "maerz", "mars", "maart", "marzo"),
    ("april", "avril", "abril", "aprile"),
    ("may", "mai", "mei", "mayo", "maggio"),
    ("june", "juni", "juin", "junio", "giugno"),
    ("july", "juli", "juillet", "julio", "luglio"),
    ("august", "août", "aout", "augustus", "agosto"),
    ("september", "septembre", "septiembre", "settembre", "sept"),
    ("october", "oktober", "octobre", "octubre", "ottobre"),
    ("november", "novembre", "noviembre"),
    ("december", "dezember", "décembre", "decembre", "diciembre", "dicembre"),
)
_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥", "INR": "₹", "PLN": "zł"}
_SPACE = r"[\s\u00a0\u202f]"
# A thousands separator or none (the Swiss write an apostrophe, straight or curly).
_GROUP = r"[,.'\u2019\s\u00a0\u202f]?"


def _month_names(month: int) -> str:
    names = set(_MONTHS[month - 1])
    names |= {name[:3] for name in names}  # "Mar", "Okt", "déc"
    return "|".join(sorted(map(re.escape, names), key=len, reverse=True))


def _date_pattern(iso: str) -> re.Pattern[str]:
    day = date.fromisoformat(iso)
    d, m, y = f"0?{day.day}", f"0?{day.month}", str(day.year)
    years = f"(?:{y}|{y[2:]})"
    months = _month_names(day.month)
    forms = [
        rf"(?<![\d.]){d}[./-]{m}[./-]{years}(?!\d)",
        rf"(?<![\d.]){m}[./-]{d}[./-]{years}(?!\d)",
        rf"(?<![\d.]){y}[./-]{m}[./-]{d}(?!\d)",
        rf"(?<!\d){d}(?:st|nd|rd|th|er|\.)?{_SPACE}*(?:de{_SPACE}+|of{_SPACE}+)?"
        rf"(?:{months})\.?,?{_SPACE}*(?:de{_SPACE}+|del{_SPACE}+)?{y}(?!\d)",
        rf"(?<!\w)(?:{months})\.?{_SPACE}*{d}(?:st|nd|rd|th)?,?{_SPACE}*{y}(?!\d)",
    ]
    return re.compile("|".join(forms), re.IGNORECASE)


def _amount_pattern(value: str) -> re.Pattern[str]:
    number = abs(Decimal(value))
    whole, _, cents = f"{number:f}".partition(".")
    groups: list[str] = []
    while len(whole) > 3:
        whole, group = whole[:-3], whole[-3:]
        groups.insert(0, group)
    digits = _GROUP.join([whole, *groups])
    fraction = rf"[.,]{cents}" if cents else ""
    if len(cents) > 2 and not cents[2:].strip("0"):
        fraction = rf"[.,]{cents[:2]}0*"  # a unit price of 12.5000 printed as 12.50
    return re.compile(rf"(?<![\d.,]){digits}{fraction}(?![\d]|[.,]\d)")


def _text_pattern(text: str) -> re.Pattern[str]:
    words = [re.escape(word) for word in text.split()]
    before = r"(?<!\w)" if text[:1].isalnum() else ""
    after = r"(?!\w)" if text[-1:].isalnum() else ""
    return re.compile(before + rf"{_SPACE}+".join(words) + after, re.IGNORECASE)


class _Quoting:
    """Finds a value's printed form in one document's text (empty: nothing is printed)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def find(self, target: Target, kind: Kind, term: Value) -> tuple[str, int | None]:
        """The line that prints the value and its page, else the element's text and no page."""
        if self.text.strip():
            found = self.best_line(self._pattern(target, kind, term), labels_of(target))
            if found is not None:
                return found
        return term.text, None

    @staticmethod
    def _pattern(target: Target, kind: Kind, term: Value) -> re.Pattern[str]:
        if kind is Kind.DATE:
            return _date_pattern(term.value)
        if kind is Kind.AMOUNT:
            return _amount_pattern(term.value)
        if target is BT.CURRENCY and term.value in _SYMBOLS:
            # Pages print "€ 12,50" more often than "EUR".
            code = _text_pattern(term.text).pattern
            return re.compile(f"{code}|{re.escape(_SYMBOLS[term.value])}", re.IGNORECASE)
        return _text_pattern(term.text)

    def best_line(
        self, pattern: re.Pattern[str], labels: tuple[str, ...]
    ) -> tuple[str, int | None] | None:
        first: tuple[str, int] | None = None
        for match in pattern.finditer(self.text):
            start = max(
                self.text.rfind("\n", 0, match.start()), self.text.rfind("\f", 0, match.start())
            )
            end = len(self.text)
            for stop in ("\n", "\f"):
                at = self.text.find(stop, match.end())
                if at >= 0:
                    end = min(end, at)
            line = self.text[start + 1 : end].strip()
            if first is None:
                first = (line, match.start())
            key = f" {label_key(line)} "
            if any(f" {label} " in key for label in labels):
                return line, self._page(match.start())
        if first is None:
            return None
        return first[0], self._page(first[1])

    def _page(self, offset: int) -> int | None:
        return page_of(self.text, offset)
