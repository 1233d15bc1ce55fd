"""The development set: labelled invoices in six languages, every layout, born-digital, scanned and
as e-invoices, written on demand (never committed) with a labels.json that holds the truth.

    python -m samples.devset --out var/devset --count 120 --seed 1

Invoice n of a set is drawn from the set's seed and n: its locale cycles through `LOCALES`, its
layout through every `Layout`; one in eight is a credit note, one in ten runs over several pages.
Each invoice is written born-digital, then once more as a twin: a scan (image-only PDF, PNG,
JPEG, TIFF in turn; a multi-page one as PDF or TIFF) or an e-invoice (Factur-X PDF, CII XML,
UBL XML in turn), whichever kind has fewer so far, until the set holds `count` files. Receipts
and totals-row invoices are always scanned: tills do not send e-invoices, and a tax column's
per-line rounding would not match the XML's tax breakdown. So about half the set is
born-digital, a quarter scans and a quarter e-invoices, and every twin carries exactly the
labels of its born-digital original.

labels.json: {"seed", "count", "fields": [...], "documents": [{"file", "kind" (born-digital,
scan, einvoice), "format", "language", "layout", "document_type", "pages", "twin_of", "fields":
{name: value or null}, "line_items": [{"description", "quantity", "unit price", "amount"}]}]}.
Dates are ISO 8601, amounts strings to the cent (negative on credit notes), currencies ISO 4217.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from samples.drawing import draw
from samples.einvoices import EInvoiceFormat, einvoice
from samples.invoices import InvoiceLabels, Layout
from samples.layouts import render
from samples.locales import LOCALES
from samples.scans import ScanFormat, scan

KINDS = ("born-digital", "scan", "einvoice")
# The labels' fields: the five the quality benchmark scores first, then the others.
FIELDS = (
    *("invoice number", "date", "total", "currency", "supplier"),
    *("due date", "net", "tax", "buyer", "supplier vat id", "buyer vat id"),
)
_NO_EINVOICE = (Layout.RECEIPT, Layout.TOTALS_ROW)


@dataclass(frozen=True)
class DevDocument:
    file: str  # path inside the set: "<kind>/<language>-<layout>-<n>[-<format>].<ext>"
    data: bytes
    entry: dict[str, Any]  # its labels.json entry


def truth(labels: InvoiceLabels) -> tuple[dict[str, str | None], list[dict[str, str]]]:
    """The labels as labels.json states them: fields by name, and the line items."""

    def money(value: Decimal) -> str:
        return f"{value:.2f}"

    fields = {
        "invoice number": labels.invoice_number,
        "date": labels.date,
        "total": money(labels.total),
        "currency": labels.currency,
        "supplier": labels.supplier,
        "due date": labels.due_date or None,
        "net": money(labels.subtotal),
        "tax": money(labels.tax),
        "buyer": labels.customer or None,
        "supplier vat id": labels.supplier_vat or None,
        "buyer vat id": labels.customer_vat or None,
    }
    items = [
        {
            "description": " ".join(item.description.split("\n")),
            "quantity": format(item.quantity.normalize(), "f"),
            "unit price": money(item.unit_price),
            "amount": money(item.amount),
        }
        for item in labels.line_items
    ]
    return fields, items


def documents(count: int, seed: int = 0) -> Iterator[DevDocument]:
    """The set's first `count` files, in order; the same arguments give the same bytes."""
    made, n = 0, 0
    twins_made = {"scan": 0, "einvoice": 0}
    while made < count:
        for document in _invoice(seed, n, twins_made)[: count - made]:
            yield document
            made += 1
        n += 1


def _invoice(seed: int, n: int, twins_made: dict[str, int]) -> list[DevDocument]:
    """Invoice `n` of the set: its born-digital PDF and its twin (counted in `twins_made`)."""
    rng = random.Random(seed * 1_000_003 + n)
    locales, layouts = list(LOCALES), list(Layout)
    locale = locales[n % len(locales)]
    layout = layouts[n // len(locales) % len(layouts)]
    credit_note = rng.random() < 0.125
    lines = rng.randint(32, 90) if rng.random() < 0.1 else None
    labels, style = draw(
        rng.randrange(2**32), locale=locale, layout=layout, lines=lines, credit_note=credit_note
    )
    pdf, pages = render(labels, style)
    fields, items = truth(labels)
    stem = f"{locale}-{layout}-{n:04d}"
    original = f"born-digital/{stem}.pdf"
    common = {
        "language": locale,
        "layout": str(layout),
        "document_type": labels.document_type,
        "pages": pages,
    }

    def document(file: str, data: bytes, kind: str, form: str) -> DevDocument:
        twin = None if kind == "born-digital" else original
        entry = {"file": file, "kind": kind, "format": form, **common, "twin_of": twin}
        return DevDocument(file, data, {**entry, "fields": fields, "line_items": items})

    made = [document(original, pdf, "born-digital", "pdf")]
    if layout not in _NO_EINVOICE and twins_made["einvoice"] <= twins_made["scan"]:
        form = list(EInvoiceFormat)[twins_made["einvoice"] % len(EInvoiceFormat)]
        name = f"einvoice/{stem}-{form}.{form.extension}"
        made.append(document(name, einvoice(pdf, labels, form), "einvoice", form))
        twins_made["einvoice"] += 1
    else:
        choices = list(ScanFormat) if pages == 1 else [f for f in ScanFormat if f.multi_page]
        image = choices[twins_made["scan"] % len(choices)]
        name = f"scan/{stem}.{image.extension}"
        made.append(document(name, scan(pdf, rng, image), "scan", image))
        twins_made["scan"] += 1
    return made


def write(out: Path, count: int, seed: int) -> list[dict[str, Any]]:
    """Write the set's files and labels.json under `out`; the labels' entries."""
    entries = []
    for document in documents(count, seed):
        path = out / document.file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(document.data)
        entries.append(document.entry)
    labels = {"seed": seed, "count": count, "fields": list(FIELDS), "documents": entries}
    (out / "labels.json").write_text(json.dumps(labels, indent=1, ensure_ascii=False) + "\n")
    return entries


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m samples.devset",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, required=True, help="folder to write the set into")
    parser.add_argument("--count", type=int, default=120, help="files to write (default 120)")
    parser.add_argument("--seed", type=int, default=1, help="the set's seed (default 1)")
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count must be at least 1")
    entries = write(args.out, args.count, args.seed)
    kinds = {kind: sum(entry["kind"] == kind for entry in entries) for kind in KINDS}
    summary = ", ".join(f"{n} {kind}" for kind, n in kinds.items())
    print(f"wrote {len(entries)} documents ({summary}) and labels.json to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
