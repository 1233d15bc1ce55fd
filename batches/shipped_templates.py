"""The field templates every user can start a batch from. They live in code, not in rows: they
cannot be deleted, a new release can improve them, and a fresh database has them."""

from __future__ import annotations

import uuid

from batches.models import FieldTemplate
from extraction.fields import parse_fields

# Fixed ids, so a link such as ?template=<id> keeps working from one release to the next.
_NAMESPACE = uuid.UUID("8f5e2b8e-6c1d-4d0a-9a43-2f7d9c1e5b10")


def _shipped(name: str, prompt: str, fields: str) -> FieldTemplate:
    return FieldTemplate(
        id=uuid.uuid5(_NAMESPACE, name),
        user=None,
        name=name,
        prompt=prompt,
        fields=parse_fields(fields),
    )


SHIPPED_TEMPLATES: tuple[FieldTemplate, ...] = (
    _shipped(
        "Invoice",
        "The invoice's number, dates, supplier, customer, totals and line items.",
        """invoice number!
issue date!:date
due date:date
supplier! -- the seller's name
customer -- the buyer's name
currency -- ISO 4217 code, e.g. EUR
net total:number
tax total:number
total!:number -- the amount due, tax included
line items: table(description; quantity:number; unit price:number; amount:number) -- one row per invoice line""",  # noqa: E501
    ),
    _shipped(
        "Receipt",
        "The receipt's merchant, date, total, tax, payment method and items bought.",
        """merchant!
date!:date
total!:number
tax:number
currency -- ISO 4217 code, e.g. EUR
payment method -- cash, card, …
items: table(description; quantity:number; amount:number) -- one row per item bought""",
    ),
    _shipped(
        "Bank statement",
        "The statement's account, period, balances and every transaction.",
        """bank
account holder
account number -- the IBAN, or the account number
period start:date
period end:date
opening balance:number
closing balance!:number
currency -- ISO 4217 code, e.g. EUR
transactions: table(date:date; description; amount:number -- negative for money out; balance:number) -- one row per transaction""",  # noqa: E501
    ),
)
