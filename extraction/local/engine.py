"""The offline engine: label/value matching over the document's lines and word boxes, with typed
normalisation.

Deterministic and free of network, models and randomness, so the product works on a fresh machine
and the same document always gives the same result. How a value is found:

1. The document is indexed once: the lines of its text, or, on pages the request has word boxes
   for, rows of cells read from them (`extraction.local.layout`, which also pairs a label with the
   value under it and a table's header with its first row). Each line is kept with its page, and
   the label/value pairs it holds are filed under a canonical label (case folded, "#", "No." and
   "number" folded together, filler words left out, words sorted): ``Label: value``;
   ``Label<tab or 2+ spaces>value``; a known label followed by a cell in a row of several; a
   label before a row of numbers (a totals row, whose last amount is its value); the cells of
   rendered table rows (``header: value | header: value``); a label alone on its line with the
   value on the next; a header row (cells split by tabs, ``|`` or 2+ spaces) followed by a value
   row (split by its values' shapes where single spaces separate them), which counts for little
   when the table lists goods (several rows, or columns like "Qty" and "Unit price"); ``[x]
   Label`` checkboxes. Cells are also indexed by their first word, for
   ``Invoice No. 001``. Labels are known in English, German, French, Dutch, Spanish and Italian.
2. Each field takes the labelled value that fits it best (`extraction.local.matching`): its own
   name, the synonyms of the concept it names, its description, then near labels.
3. Some concepts are more than a label:
   - a party (supplier, customer) is a name, never a sentence or an address; with no label, the
     supplier is the issuing party found by `extraction.local.parties` (letterhead, legal form,
     the name beside the VAT number), and never the buyer;
   - a currency field answers an ISO 4217 code: the one a "Currency" label names, else the
     total's, else the document's dominant currency (`extraction.local.money`);
   - a number field's value is a plain decimal; its currency, when the amount, its label or its
     line shows one, or when a money field's document shows only one, goes beside it;
   - a VAT number, a due date and the document's date may be found without a label of their
     own (`extraction.local.unlabelled`): a VAT number's shape after a VAT word, a sentence
     saying payment is due, a receipt's lone date.

A field without a match is null: values are only ever read from the document, and their quote
is the line (or row of words) they stand on. Each value's status (and ``verified``, derived from
it) is decided after the engine, by `extraction.statuses.settle`, as for every engine.
"""

from __future__ import annotations

import re
from decimal import Decimal
from functools import cached_property
from typing import Any

from extraction.contract import (
    Engine,
    ErrorKind,
    ExtractionError,
    ExtractionRequest,
    ExtractionResult,
    ValueStatus,
)
from extraction.fields import FieldSpec, fields_from_prompt
from extraction.local.layout import document_index
from extraction.local.lines import LINE_ITEMS, label_key
from extraction.local.matching import (
    Wanted,
    choose,
    exact_candidates,
    wanted_by,
)
from extraction.local.money import Currencies, document_currencies
from extraction.local.parties import find_supplier, folded, party_name
from extraction.local.tables import column_key, read_table, typed
from extraction.local.unlabelled import unlabelled
from extraction.normalise import (
    DateOrder,
    currency_named,
    date_order_of,
    parse_amount,
    parse_boolean,
    parse_date,
    parse_list,
)

_MISSING: dict[str, Any] = {"value": None, "quote": None, "page": None, "source": "text"}
# Number fields that are sums of money, so the document's currency applies to them.
_MONEY_CONCEPTS = frozenset({"total", "subtotal", "tax"})
_MONEY_WORDS = frozenset(
    {"total", "amount", "subtotal", "tax", "vat", "price", "cost", "balance", "fee", "net"}
    | {"gross", "sum", "due", "paid", "discount", "shipping", "freight", "deposit", "charge"}
)


# Words of invoices in the languages that write the day before the month.
_DAY_FIRST_WORDS = re.compile(
    r"\b(?:Rechnung|Rechnungsdatum|Datum|Betrag|MwSt|USt|Facture|Montant|TVA|Factuur|Bedrag"
    r"|BTW|Factura|Fecha|Importe|IVA|Fattura|Importo|Totale|Scadenza)\b",
    re.IGNORECASE,
)


# Cents that OCR set apart from their amount, a stray mark beside the gap: "2657 -03", "139. 20".
_BROKEN_CENTS = re.compile(
    r"(?<=\d)(?:\s*(?P<mark>[.,\-·:;])\s+|\s+(?P<mark2>[.,\-·:;])\s*)(?P<cents>\d{2})"
    r"(?=\s*[^\d\s.,]*\s*$)"  # at the end, but for a currency
)
_CENTS = re.compile(r"\d[.,]\d{2}\)?-?$")
_MINUS = ("-", "\u2212", "(")
_CENTS_AFTER_COMMA = re.compile(r"\d,\d{2}(?!\d)")
_CENTS_AFTER_POINT = re.compile(r"\d\.\d{2}(?!\d)")


def _spec(name: str, type_: str = "string") -> FieldSpec:
    return FieldSpec(name=name, type=type_, description="")


class _Document:
    """One document being extracted: its index, and what several fields consult."""

    def __init__(self, request: ExtractionRequest) -> None:
        self.index, self.layout = document_index(request.text, request.layout)
        self.pages = request.layout
        self.ocr_pages = {page.number for page in request.layout if page.ocr_confidence is not None}

    @cached_property
    def decimal_mark(self) -> str:
        """The mark most of the document's amounts write their cents after."""
        commas = len(_CENTS_AFTER_COMMA.findall(self.index.text))
        return "," if commas > len(_CENTS_AFTER_POINT.findall(self.index.text)) else "."

    def mended(self, value: str, line: int) -> str:
        """An amount OCR broke at its decimal mark ("2657 -03", "139. 20") written whole, on
        the pages OCR read; any other value as it is."""
        if self.index.page(line) not in self.ocr_pages:
            return value
        broken = _BROKEN_CENTS.search(value)
        if broken is None:
            return value
        written = broken["mark"] or broken["mark2"]
        mark = written if written in (".", ",") else self.decimal_mark
        return f"{value[: broken.start()]}{mark}{broken['cents']}{value[broken.end() :]}"

    @cached_property
    def currencies(self) -> Currencies:
        return document_currencies(self.index)

    @cached_property
    def date_order(self) -> DateOrder:
        """How "03/12/2024" reads: as the document's unambiguous dates say, else month-first in
        a document in US dollars written in English, else day-first (an Italian invoice in US
        dollars still writes the day first)."""
        default = DateOrder.DAY_FIRST
        if self.currencies.dominant == "USD" and not _DAY_FIRST_WORDS.search(self.index.text):
            default = DateOrder.MONTH_FIRST
        return date_order_of(self.index.text, default)

    @cached_property
    def buyers(self) -> list[tuple[int, str]]:
        """(line, value) of every value labelled as the buyer's or the delivery address's."""
        return [
            (candidate.line, candidate.value)
            for name in ("customer", "ship to")
            for candidate in exact_candidates(self.index, wanted_by(_spec(name)))
            if candidate.kind != LINE_ITEMS
        ]

    @cached_property
    def bills(self) -> bool:
        """Whether the document bills something: it has a total or an invoice number."""
        return any(
            choose(self.index, wanted_by(spec)) is not None
            for spec in (_spec("total", "number"), _spec("invoice number"))
        )

    @cached_property
    def vat_lines(self) -> list[int]:
        return [c.line for c in exact_candidates(self.index, wanted_by(_spec("vat id")))]

    def cell(self, line: int, value: Any, shown: str, label: str = "") -> dict[str, Any]:
        """A value found on `line`, quoted: the line itself, or for a row of word boxes what of
        the row the page's text holds (see Layout.quote); `shown` is the value as written.
        Whether the quote stands on its page is for `extraction.statuses.settle` to say."""
        source = self.index.source[line]
        quote = source.quote
        if source.from_layout:
            quote = self.layout.quote(line, label, shown)
        return {"value": value, "quote": quote, "page": source.page, "source": "text"}


def _table(document: _Document, spec: FieldSpec) -> dict[str, Any]:
    """A table field: the rows of the document's line-item table, each cell typed by its
    column; [] when the document shows no table (see `extraction.local.tables`)."""
    columns = spec.get("columns", [])
    value: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    for item in read_table(document.layout, document.pages):
        cells = {}
        for column in columns:
            texts = item.cells.get(column_key(column))
            text = None
            if texts:
                # Cells under columns the vocabulary does not know (VAT, gross) fall to the
                # nearest known one: a number is its own column's first cell.
                string = (column.get("type") or "string") == "string"
                text = " ".join(texts) if string else texts[0]
            cells[column["name"]] = typed(text, column.get("type") or "string", document.date_order)
        quote = "\n".join(item.quotes)
        found = document.layout.holds(item.pages[0], item.quotes[0])
        value.append(cells)
        rows.append(
            {
                "quote": quote,
                "page": item.pages[0],
                "pages": item.pages,
                "status": ValueStatus.FOUND if found else ValueStatus.UNVERIFIED,
            }
        )
    status = ValueStatus.MISSING
    if rows:
        unverified = any(row["status"] == ValueStatus.UNVERIFIED for row in rows)
        status = ValueStatus.UNVERIFIED if unverified else ValueStatus.FOUND
    return {
        "value": value,
        "rows": rows,
        "quote": None,
        "page": rows[0]["page"] if rows else None,
        "status": status,
        "source": "text",
        "review": None,
    }


def _field_result(document: _Document, wanted: Wanted) -> dict[str, Any]:
    field_type = wanted.spec.get("type") or "string"
    if field_type == "table":
        return _table(document, wanted.spec)
    if wanted.concept == "currency" and field_type == "string":
        return _currency(document, wanted)
    if wanted.concept in ("supplier", "customer") and field_type == "string":
        return _party(document, wanted)
    chosen = choose(document.index, wanted) or unlabelled(document.index, wanted)
    if chosen is None or (chosen.kind == LINE_ITEMS and wanted.concept in _MONEY_CONCEPTS):
        # A column of a table of goods holds each line's amount, never the document's sum.
        return dict(_MISSING)
    value: Any
    currency = None
    if field_type == "number":
        quote = document.index.source[chosen.line].quote
        written = document.mended(chosen.value, chosen.line)
        amount = parse_amount(written, context=f"{chosen.label} {quote}")
        if amount is None or _lost_its_sign(written):
            return dict(_MISSING)
        value, currency = amount.value, amount.currency
        if currency is None and _is_money(wanted):
            currency = document.currencies.only
    elif field_type == "date":
        value = parse_date(chosen.value, document.date_order)
    elif field_type == "boolean":
        value = parse_boolean(chosen.value)
    elif field_type == "list":
        value = parse_list(chosen.value)
    else:
        value = chosen.value
    if value is None:
        return dict(_MISSING)
    result = document.cell(chosen.line, value, chosen.value, chosen.label)
    if currency:
        result = {"value": value, "currency": currency, **result}
    return result


def _lost_its_sign(row: str) -> bool:
    """A totals row whose last amount alone is not negative ("32  -144,20  -30,28  174,48"): a
    credit note's total whose minus OCR lost, so which sign it has is unknown."""
    amounts = [cell for cell in row.split() if _CENTS.search(cell)]
    if len(amounts) < 3:
        return False
    *before, last = amounts
    return all(cell.startswith(_MINUS) for cell in before) and not last.startswith(_MINUS)


def _is_money(wanted: Wanted) -> bool:
    if wanted.concept is not None:
        return wanted.concept in _MONEY_CONCEPTS
    return bool(_MONEY_WORDS & set(label_key(wanted.spec["name"]).split()))


def _party(document: _Document, wanted: Wanted) -> dict[str, Any]:
    """A party's name under its label; for the supplier, else the issuing party of the page."""
    supplier = wanted.concept == "supplier"
    buyers = {folded(name) for _, value in document.buyers if (name := party_name(value))}

    def clean(value: str) -> str | None:
        name = party_name(value, labelled=True)
        if name is None or (supplier and folded(name) in buyers):
            return None
        return name

    chosen = choose(document.index, wanted, clean)
    if chosen is not None:
        return document.cell(chosen.line, chosen.value, chosen.value, chosen.label)
    if supplier:
        found = find_supplier(
            document.index,
            document.layout,
            buyers=document.buyers,
            vat_lines=document.vat_lines,
            billing=document.bills,
        )
        if found is not None:
            name, line = found
            return document.cell(line, name, name)
    return dict(_MISSING)


def _currency(document: _Document, wanted: Wanted) -> dict[str, Any]:
    """An ISO 4217 code: the one a currency label names, else the total's, else the document's
    dominant currency."""
    chosen = choose(document.index, wanted, currency_named)
    if chosen is not None:
        return document.cell(chosen.line, chosen.value, chosen.value, chosen.label)
    total = choose(document.index, wanted_by(_spec("total", "number")))
    if total is not None:
        quote = document.index.source[total.line].quote
        amount = parse_amount(total.value, context=f"{total.label} {quote}")
        if amount is not None and amount.currency:
            return document.cell(total.line, amount.currency, total.value, total.label)
    code = document.currencies.dominant
    if code is None:
        return dict(_MISSING)
    line = document.currencies.first_line[code]
    return document.cell(line, code, document.index.source[line].quote)


class LocalEngine(Engine):
    """Offline, deterministic extraction by label/value matching; costs nothing. Its matching is
    CPU work (a text full of near-miss labels can cost many seconds), so it is `sandboxed`."""

    name = "local"
    title = "offline engine"
    sandboxed = True

    def extract(self, request: ExtractionRequest) -> ExtractionResult:
        if not request.text.strip():
            raise ExtractionError(
                "no_text_layer",
                f"{request.filename} has no text to extract from (no text layer)",
                kind=ErrorKind.PERMANENT,
            )
        specs = request.fields or fields_from_prompt(request.prompt)
        document = _Document(request)
        fields = {spec["name"]: _field_result(document, wanted_by(spec)) for spec in specs}
        return ExtractionResult(
            result={"engine": self.name, "model": None, "fields": fields},
            cost_usd=Decimal("0"),
        )
