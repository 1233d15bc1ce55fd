"""The batch page's one results table: every document of a batch with its values, filtered
("needs review", "failed", a text search), sorted by any column and totalled per numeric field.

Filters that the database can answer (status, "needs review") run in SQL; a text search or a sort
by a field's value reads the results, because a person's reviewed value wins over the machine's
and only Python sees both (a batch is at most a few thousand documents).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

from django.db.models import QuerySet

from batches.exports import cell_status, cell_value
from batches.models import BatchProcess
from batches.selectors import batch_documents, documents_needing_review
from documents.models import Document
from extraction.fields import FieldSpec, fields_from_prompt

SHOW_CHOICES = (("", "All documents"), ("review", "Needs review"), ("failed", "Failed"))
# Columns sortable besides the fields: the file's name and the document's status.
FIXED_SORTS = ("file", "status")
MAX_QUERY_LENGTH = 200


@dataclass(frozen=True)
class Column:
    """One field of the batch as a column: numbers are right-aligned and totalled, a table
    field shows its row count."""

    name: str
    type: str

    @property
    def numeric(self) -> bool:
        return self.type in ("number", "table")


@dataclass(frozen=True)
class ResultsQuery:
    """What the person asked of the table: `show` one of SHOW_CHOICES' keys, `q` a text to
    find in a filename or a value, `sort` a column (`file`, `status` or a field name), with a
    leading "-" for descending. Anything else in the query string is ignored, never an error."""

    show: str = ""
    q: str = ""
    sort: str = ""

    @classmethod
    def from_params(cls, params: Mapping[str, str], columns: list[Column]) -> ResultsQuery:
        show = params.get("show", "")
        sort = params.get("sort", "")
        known = {*FIXED_SORTS, *(column.name for column in columns)}
        return cls(
            show=show if show in dict(SHOW_CHOICES) else "",
            q=" ".join(params.get("q", "").split())[:MAX_QUERY_LENGTH],
            sort=sort if sort.removeprefix("-") in known else "",
        )

    @property
    def filtered(self) -> bool:
        return bool(self.show or self.q)

    def params(self, **changes: str) -> str:
        """The query string of this view of the table, with `changes`; "" when it is the plain
        table (so links stay short)."""
        values = {"show": self.show, "q": self.q, "sort": self.sort, **changes}
        return urlencode({key: value for key, value in values.items() if value})

    def at_page(self, page: int) -> str:
        """The query string of this view at page `page`, with its "?"; "" for the plain
        first page."""
        params = self.params(page=str(page) if page > 1 else "")
        return f"?{params}" if params else ""

    def sort_link(self, column: str) -> str:
        """The query string that sorts by `column`: ascending first, then descending."""
        return self.params(sort=f"-{column}" if self.sort == column else column)

    def sorted_by(self, column: str) -> str:
        """The column's `aria-sort`: ascending, descending or none."""
        if self.sort == column:
            return "ascending"
        if self.sort == f"-{column}":
            return "descending"
        return "none"


def results_columns(*, batch: BatchProcess) -> list[Column]:
    """The batch's fields as columns: its field list, else those inferred from its prompt."""
    fields: list[FieldSpec] = batch.fields or fields_from_prompt(batch.extraction_prompt)
    return [Column(spec["name"], spec.get("type") or "string") for spec in fields]


def results_documents(
    *, batch: BatchProcess, query: ResultsQuery, columns: list[Column]
) -> QuerySet[Document] | list[Document]:
    """The batch's documents as the table shows them: filtered and sorted by `query`, in upload
    order otherwise."""
    documents = batch_documents(batch=batch)
    if query.show == "failed":
        documents = documents.filter(status=Document.Status.FAILED)
    elif query.show == "review":
        documents = documents_needing_review(batch=batch).order_by("created_at", "id")
    field = query.sort.removeprefix("-")
    descending = query.sort.startswith("-")
    if field == "file":
        documents = documents.order_by(
            "-original_filename" if descending else "original_filename", "created_at", "id"
        )
    elif field == "status":
        documents = documents.order_by("-status" if descending else "status", "created_at", "id")
    if not query.q and field in ("", *FIXED_SORTS):
        return documents
    rows: list[Document] = list(documents.defer("text", "einvoice_xml"))
    if query.q:
        needle = query.q.casefold()
        rows = [document for document in rows if needle in _searchable(document)]
    if field not in ("", *FIXED_SORTS):
        kind = next(column.type for column in columns if column.name == field)
        keyed = [(_sort_key(_value(document, field), kind), document) for document in rows]
        present = sorted(
            (item for item in keyed if item[0] is not None),
            key=lambda item: item[0],  # type: ignore[arg-type, return-value]
            reverse=descending,
        )
        # Documents without the value go last either way: they are what a person looks at next.
        rows = [document for _, document in present] + [
            document for key, document in keyed if key is None
        ]
    return rows


def results_totals(*, documents: Iterable[Document], columns: list[Column]) -> dict[str, list[str]]:
    """Each number field's total over `documents`, one figure per currency ("1,204.50 EUR"),
    of the values a person would export (a reviewed value instead of the machine's)."""
    numbers = [column.name for column in columns if column.type == "number"]
    sums: dict[str, dict[str, Decimal]] = {name: defaultdict(Decimal) for name in numbers}
    places: dict[str, int] = defaultdict(int)
    for document in documents:
        fields = _fields(document)
        for name in numbers:
            entry = fields.get(name)
            amount = _decimal(cell_value(entry))
            if amount is None:
                continue
            currency = entry.get("currency") if isinstance(entry, dict) else None
            sums[name][currency if isinstance(currency, str) else ""] += amount
            places[name] = max(places[name], -int(amount.as_tuple().exponent))
    return {
        name: [
            f"{amount:,.{min(places[name], 6)}f}" + (f" {currency}" if currency else "")
            for currency, amount in sorted(sums[name].items())
        ]
        for name in numbers
        if sums[name]
    }


def _fields(document: Document) -> dict[str, Any]:
    result = document.reviewed_result
    fields = result.get("fields") if isinstance(result, dict) else None
    return fields if isinstance(fields, dict) else {}


def _value(document: Document, name: str) -> Any:
    return cell_value(_fields(document).get(name))


def _searchable(document: Document) -> str:
    """The text a search looks in: the filename and every value shown (reviewed ones
    included), folded for a case-insensitive match."""
    parts = [document.original_filename]
    for entry in _fields(document).values():
        parts.append(_text(cell_value(entry)))
        if cell_status(entry) == "reviewed" and isinstance(entry, dict):
            parts.append(_text(entry.get("value")))
    return "\n".join(parts).casefold()


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "\n".join(_text(item) for item in value)
    if isinstance(value, dict):
        return "\n".join(_text(item) for item in value.values())
    return "" if value is None else str(value)


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None or isinstance(value, list | dict):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def _sort_key(value: Any, kind: str) -> Decimal | str | None:
    """A value's place in a sort: numbers by amount (a table by its row count), the rest as
    folded text; None for no value."""
    if value is None or value == "" or value == []:
        return None
    if kind == "table":
        return Decimal(len(value)) if isinstance(value, list) else None
    if kind == "number":
        return _decimal(value)
    return _text(value).casefold()
