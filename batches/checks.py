"""Checks over a finished batch's current values (a reviewed value wins, as in exports):

- duplicates: documents with the same supplier and number, or the same total and date, as an
  earlier document of the batch or of one of the user's earlier batches;
- missing values: each field of each document present, missing, or the document failed (a heat
  map of fields by documents);
- outliers: a total far from the batch's usual totals in its currency, a date far from the
  batch's other dates (both only with at least `OUTLIER_MIN_DOCUMENTS` values, by the median
  and the median absolute deviation, so one wild value cannot hide itself), or a date in the
  future;
- the currency mix: documents per currency, when there is more than one.

Which field is the supplier, the number, the total, the date and the currency is read from its
name in the vocabulary the engines and the arithmetic checks share (`concept_field`).

`batch_checks_refresh` stores them on `BatchProcess.checks`, with the batch's `InvoiceKey` rows
that later batches look their duplicates up in. It runs when a batch finishes (in the finishing
transaction), when a review changes a value and when an older run is kept.
"""

from __future__ import annotations

import logging
import re
import statistics
import unicodedata
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, TypeVar

from django.db import transaction
from django.utils import timezone

from batches.exports import cell_value
from batches.models import BatchProcess, InvoiceKey
from batches.selectors import batch_documents
from documents.models import Document
from extraction.checks import concept_field, number
from extraction.fields import FieldSpec, fields_from_prompt

logger = logging.getLogger(__name__)

# The meaning of each role, as a phrase of the vocabulary (`concept_field`).
ROLES = {
    "supplier": "supplier",
    "number": "invoice number",
    "total": "total",
    "date": "date",
    "currency": "currency",
}
DUPLICATE_BY = {"supplier_number": "supplier and number", "total_date": "total and date"}
OUTLIER_MIN_DOCUMENTS = 5
# A value is an outlier when its distance from the median is over 3.5 robust standard
# deviations (Iglewicz and Hoaglin's modified z-score).
OUTLIER_SCORE = Decimal("3.5")
_MAD_TO_SIGMA = Decimal("1.4826")
_MEAN_AD_TO_SIGMA = Decimal("1.2533")
_KEY_PLACES = Decimal("0.0001")
_KEY_MAX = Decimal("1e16")
_NOT_ALNUM = re.compile(r"[\W_]+")

PRESENT, MISSING, FAILED = "present", "missing", "failed"


@dataclass(frozen=True)
class _Invoice:
    document: Document
    supplier: str
    number: str
    total: Decimal | None
    issued: date | None
    currency: str

    @property
    def ref(self) -> dict[str, str]:
        return {"id": str(self.document.pk), "filename": self.document.original_filename}

    def duplicate_keys(self) -> dict[str, tuple[Any, Any]]:
        """Its duplicate keys, by kind, for the kinds whose values it has."""
        keys: dict[str, tuple[Any, Any]] = {}
        if self.supplier and self.number:
            keys["supplier_number"] = (self.supplier, self.number)
        if self.total is not None and self.issued is not None:
            keys["total_date"] = (self.total, self.issued)
        return keys


def normalised(text: Any) -> str:
    """A supplier or an invoice number as duplicates compare them: case, accents, spaces and
    punctuation left out ("ACME Supplies, Ltd." is "acmesuppliesltd", "INV-001" "inv001")."""
    if not isinstance(text, str | int) or isinstance(text, bool):
        return ""
    folded = unicodedata.normalize("NFKD", str(text).casefold())
    return _NOT_ALNUM.sub("", "".join(char for char in folded if not unicodedata.combining(char)))


def batch_checks_refresh(*, batch_id: uuid.UUID) -> dict[str, Any] | None:
    """Compute the batch's checks over its documents' current values and store them, with its
    documents' invoice keys (not for a trial: no later batch should find its documents). Under
    the batch's row lock, so two refreshes (two reviews at once) store the later values.
    None when the batch is gone."""
    with transaction.atomic():
        batch = (
            BatchProcess.objects.select_for_update(of=("self",), no_key=True)
            .filter(pk=batch_id)
            .first()
        )
        if batch is None:
            return None
        fields: list[FieldSpec] = batch.fields or fields_from_prompt(batch.extraction_prompt)
        roles = {role: concept_field(fields, concept) for role, concept in ROLES.items()}
        documents = list(
            batch_documents(batch=batch)
            .filter(status__in=[Document.Status.COMPLETED, Document.Status.FAILED])
            .only("id", "original_filename", "status", "result", "reviews", "created_at")
        )
        invoices = [
            _invoice(document, roles)
            for document in documents
            if document.status == Document.Status.COMPLETED
        ]
        checks = {
            "computed_at": timezone.now().isoformat(),
            "roles": roles,
            "duplicates": _duplicates(batch, invoices),
            "missing": _missing(fields, documents),
            "outliers": _outliers(invoices),
            "currency_mix": _currency_mix(invoices),
        }
        BatchProcess.objects.filter(pk=batch.pk).update(checks=checks)
        InvoiceKey.objects.filter(batch=batch).delete()
        if not batch.is_trial:
            InvoiceKey.objects.bulk_create(
                InvoiceKey(
                    user_id=batch.user_id,
                    batch=batch,
                    document=invoice.document,
                    supplier_norm=invoice.supplier,
                    number_norm=invoice.number,
                    total=invoice.total,
                    date=invoice.issued,
                )
                for invoice in invoices
                if invoice.duplicate_keys()
            )
    logger.info(
        "batch %s checks: %d duplicate(s), %d outlier(s)",
        batch_id,
        len(checks["duplicates"]),
        len(checks["outliers"]),
    )
    return checks


def _invoice(document: Document, roles: dict[str, str | None]) -> _Invoice:
    result = document.reviewed_result
    cells = result.get("fields") if isinstance(result, dict) else None
    cells = cells if isinstance(cells, dict) else {}

    def value(role: str) -> Any:
        name = roles[role]
        return cell_value(cells.get(name)) if name else None

    total = number(value("total"))
    if total is not None:
        total = total.quantize(_KEY_PLACES) if abs(total) < _KEY_MAX else None
    currency = value("currency")
    if not isinstance(currency, str) and roles["total"]:
        # An amount's currency is kept beside it ("1,234.50 EUR").
        cell = cells.get(roles["total"])
        currency = cell.get("currency") if isinstance(cell, dict) else None
    return _Invoice(
        document=document,
        # As long as InvoiceKey keeps them, so this batch and later ones compare the same keys.
        supplier=normalised(value("supplier"))[: InvoiceKey.SUPPLIER_MAX_LENGTH],
        number=normalised(value("number"))[: InvoiceKey.NUMBER_MAX_LENGTH],
        total=total,
        issued=_date(value("date")),
        currency=currency.strip().upper() if isinstance(currency, str) else "",
    )


def _date(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value.strip()[:10])
    except ValueError:
        return None


def _duplicates(batch: BatchProcess, invoices: list[_Invoice]) -> list[dict[str, Any]]:
    """Each document that repeats an earlier invoice, with the earliest one it repeats: in the
    user's earlier batches first, else earlier in this batch (in upload order)."""
    earlier = _earlier_invoices(batch, invoices)
    first: dict[tuple[str, tuple[Any, Any]], dict[str, str]] = {}
    duplicates: list[dict[str, Any]] = []
    for invoice in invoices:
        originals: dict[str, dict[str, Any]] = {}
        for kind, key in invoice.duplicate_keys().items():
            original = earlier.get((kind, key)) or first.setdefault((kind, key), invoice.ref)
            if original["id"] == str(invoice.document.pk):
                continue
            entry = originals.setdefault(original["id"], {"of": original, "by": []})
            entry["by"].append(kind)
        duplicates.extend(
            {"document": invoice.ref, "duplicate_of": entry["of"], "by": entry["by"]}
            for entry in originals.values()
        )
    return duplicates


def _earlier_invoices(
    batch: BatchProcess, invoices: list[_Invoice]
) -> dict[tuple[str, tuple[Any, Any]], dict[str, str]]:
    """The earliest invoice of the user's earlier batches for each duplicate key of
    `invoices`, as a reference to show: two indexed lookups, by number and by date."""
    keyed = [(invoice, invoice.duplicate_keys()) for invoice in invoices]
    numbers = {invoice.number for invoice, keys in keyed if "supplier_number" in keys}
    dated = [invoice for invoice, keys in keyed if "total_date" in keys]
    earlier = InvoiceKey.objects.filter(
        user_id=batch.user_id, batch__created_at__lt=batch.created_at
    ).order_by("batch__created_at", "document__created_at", "document_id")
    rows = [
        *earlier.filter(number_norm__in=numbers).exclude(supplier_norm="").values(*_KEY_COLUMNS),
        *earlier.filter(
            date__in={invoice.issued for invoice in dated},
            total__in={invoice.total for invoice in dated},
        ).values(*_KEY_COLUMNS),
    ]
    found: dict[tuple[str, tuple[Any, Any]], dict[str, str]] = {}
    for row in rows:
        ref = {
            "id": str(row["document_id"]),
            "filename": row["document__original_filename"],
            "batch_id": str(row["batch_id"]),
            "batch_name": row["batch__name"],
        }
        if row["supplier_norm"] and row["number_norm"]:
            found.setdefault(("supplier_number", (row["supplier_norm"], row["number_norm"])), ref)
        if row["total"] is not None and row["date"] is not None:
            found.setdefault(("total_date", (row["total"], row["date"])), ref)
    return found


_KEY_COLUMNS = (
    "supplier_norm",
    "number_norm",
    "total",
    "date",
    "document_id",
    "document__original_filename",
    "batch_id",
    "batch__name",
)


def _missing(fields: list[FieldSpec], documents: list[Document]) -> dict[str, Any]:
    """The heat map: for each document (completed or failed, in upload order), each field
    present, missing or failed (the document failed), and the count of missing per field."""
    names = [spec["name"] for spec in fields]
    rows = []
    counts = dict.fromkeys(names, 0)
    for document in documents:
        if document.status == Document.Status.FAILED:
            states = [FAILED] * len(names)
        else:
            result = document.reviewed_result
            cells = result.get("fields") if isinstance(result, dict) else None
            cells = cells if isinstance(cells, dict) else {}
            states = [
                MISSING if cell_value(cells.get(name)) in (None, "", []) else PRESENT
                for name in names
            ]
        for name, state in zip(names, states, strict=True):
            counts[name] += state == MISSING
        rows.append(
            {"id": str(document.pk), "filename": document.original_filename, "values": states}
        )
    return {"fields": names, "counts": counts, "documents": rows}


def _outliers(invoices: list[_Invoice]) -> list[dict[str, Any]]:
    outliers = []
    by_currency: dict[str, list[_Invoice]] = {}
    for invoice in invoices:
        if invoice.total is not None:
            by_currency.setdefault(invoice.currency, []).append(invoice)
    for currency, group in by_currency.items():
        for invoice, total, usual in _far(group, lambda invoice: invoice.total):
            amount = f"{total.normalize():f}"
            in_currency = f" {currency}" if currency else ""
            outliers.append(
                _outlier(
                    invoice,
                    "total",
                    amount,
                    f"total {amount}{in_currency} is far from the batch's usual "
                    f"{usual.quantize(Decimal('0.01')):,}{in_currency}",
                )
            )
    today = timezone.localdate()
    far = {
        invoice.document.pk: date.fromordinal(int(usual))
        for invoice, _, usual in _far(invoices, _ordinal)
    }
    for invoice in invoices:
        if invoice.issued is None:
            continue
        if invoice.issued > today:
            message = f"date {invoice.issued} is in the future"
        elif invoice.document.pk in far:
            message = (
                f"date {invoice.issued} is far from the batch's other dates "
                f"(around {far[invoice.document.pk]})"
            )
        else:
            continue
        outliers.append(_outlier(invoice, "date", invoice.issued.isoformat(), message))
    return outliers


def _ordinal(invoice: _Invoice) -> Decimal | None:
    return Decimal(invoice.issued.toordinal()) if invoice.issued else None


T = TypeVar("T")


def _far(
    items: Sequence[T], value_of: Callable[[T], Decimal | None]
) -> Iterable[tuple[T, Decimal, Decimal]]:
    """The items whose value is far from the median of the items' values (a robust z-score
    over OUTLIER_SCORE), each with its value and that median; none below
    OUTLIER_MIN_DOCUMENTS values."""
    valued = [(item, value) for item in items if (value := value_of(item)) is not None]
    values = [value for _, value in valued]
    if len(values) < OUTLIER_MIN_DOCUMENTS:
        return
    median = statistics.median(values)
    deviations = [abs(value - median) for value in values]
    # Most values equal (a MAD of 0): the mean deviation still measures the spread.
    scale = statistics.median(deviations) * _MAD_TO_SIGMA or (
        sum(deviations, Decimal(0)) / len(deviations) * _MEAN_AD_TO_SIGMA
    )
    if not scale:
        return
    for item, value in valued:
        if abs(value - median) / scale > OUTLIER_SCORE:
            yield item, value, median


def _outlier(invoice: _Invoice, field: str, value: str, message: str) -> dict[str, Any]:
    return {"document": invoice.ref, "field": field, "value": value, "message": message}


def _currency_mix(invoices: list[_Invoice]) -> dict[str, int]:
    counts = Counter(invoice.currency for invoice in invoices if invoice.currency)
    return dict(counts.most_common()) if len(counts) > 1 else {}


def document_check_reasons(*, batch: BatchProcess, document_id: uuid.UUID) -> list[str]:
    """Why the batch's checks flag one of its documents for review, in words: "possible
    duplicate of invoice-3.pdf in batch “March” (same supplier and number)", "outlier: total
    9,800 EUR is far from the batch's usual 120.00 EUR"."""
    checks = batch.checks or {}
    reasons = []
    for duplicate in checks.get("duplicates", []):
        if duplicate["document"]["id"] != str(document_id):
            continue
        original = duplicate["duplicate_of"]
        where = f" in batch “{original['batch_name']}”" if original.get("batch_name") else ""
        same = "; ".join(f"same {DUPLICATE_BY[kind]}" for kind in duplicate["by"])
        reasons.append(f"possible duplicate of {original['filename']}{where} ({same})")
    reasons.extend(
        f"outlier: {outlier['message']}"
        for outlier in checks.get("outliers", [])
        if outlier["document"]["id"] == str(document_id)
    )
    return reasons
