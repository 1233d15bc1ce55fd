"""Drawing a development-set invoice from a seed: its labels (the truth) and its style (how it is
written). `samples.layouts` draws the PDF, `samples.scans` and `samples.einvoices` its twins.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from samples.invoices import InvoiceLabels, Layout, LineItem
from samples.layouts import line_tax
from samples.locales import LOCALES
from samples.parties import draw_party
from samples.writing import Style

CENT = Decimal("0.01")
_FOREIGN = ("EUR", "USD", "GBP", "CHF")
_QUANTITIES = tuple(Decimal(q) for q in (1, 1, 1, 2, 2, 3, 4, 5, 10, 12, 20, 25))
_FRACTIONS = tuple(Decimal(q) for q in ("0.5", "1.5", "2.25", "7.5", "0.75", "12.5"))


def _price(rng: random.Random, receipt: bool) -> Decimal:
    """A unit price in cents: mostly tens, sometimes hundreds or thousands."""
    if receipt:
        return Decimal(rng.randrange(49, 4_999)).scaleb(-2)
    top = rng.choice((10_000, 30_000, 50_000, 150_000))
    return Decimal(rng.randrange(150, top)).scaleb(-2)


def _items(
    rng: random.Random, goods: tuple[str, ...], count: int, *, receipt: bool, sign: int
) -> tuple[LineItem, ...]:
    items = []
    for _ in range(count):
        if receipt:
            quantity = Decimal(rng.choice((1, 1, 1, 2, 3)))
        else:
            quantity = rng.choice(_FRACTIONS) if rng.random() < 0.15 else rng.choice(_QUANTITIES)
        price = _price(rng, receipt) * sign
        amount = (quantity * price).quantize(CENT, rounding=ROUND_HALF_UP)
        description = rng.choice(goods)
        if count >= 20 and not receipt and rng.random() < 0.3:
            # An article number on a second line: on a long table some such row falls across a
            # page break, and is still one row.
            description += f"\n#{rng.randrange(10_000, 99_999)}-{rng.choice('ABCDEFGH')}"
        items.append(LineItem(description, quantity, price, amount))
    return tuple(items)


def draw(
    seed: int,
    *,
    locale: str,
    layout: Layout,
    lines: int | None = None,
    credit_note: bool = False,
    serial: int | None = None,
) -> tuple[InvoiceLabels, Style]:
    """One invoice of `locale` in `layout` drawn from `seed`: its labels and its style. `lines`
    items (1 to 6 when not given; about 30 fill a page); `credit_note` makes every amount
    negative and names the invoice it corrects; a receipt is never a credit note."""
    rng = random.Random(seed)
    place = LOCALES[locale]
    receipt = layout is Layout.RECEIPT
    credit_note = credit_note and not receipt
    currency = place.currency
    if rng.random() < 0.12:  # some invoices are billed in another currency
        currency = rng.choice([code for code in _FOREIGN if code != place.currency])
    rate = rng.choice(place.rates)
    issued = date(2022, 1, 1) + timedelta(days=rng.randrange(4 * 365))
    supplier = draw_party(rng, place)
    customer = draw_party(rng, place, buyer=True)
    count = lines if lines is not None else rng.randint(2, 12) if receipt else rng.randint(1, 6)
    items = _items(rng, place.goods, count, receipt=receipt, sign=-1 if credit_note else 1)
    lines_sum = sum((item.amount for item in items), Decimal("0.00"))
    if receipt:  # till prices include tax; the receipt states the tax share of the total
        total = lines_sum
        tax = (total * rate / (100 + rate)).quantize(CENT, rounding=ROUND_HALF_UP)
        subtotal = total - tax
    else:
        subtotal = lines_sum
        if layout is Layout.TOTALS_ROW:  # a tax column: the tax is the sum of the lines' taxes
            tax = sum((line_tax(item, rate) for item in items), Decimal("0.00"))
        else:
            tax = (subtotal * rate / 100).quantize(CENT, rounding=ROUND_HALF_UP)
        total = subtotal + tax
    pattern = rng.choice(place.numbering)
    serial = serial if serial is not None else rng.randrange(10, 9_999)
    labels = InvoiceLabels(
        language=locale,
        layout=layout,
        invoice_number=pattern.format(year=issued.year, serial=serial),
        date=issued.isoformat(),
        due_date="" if receipt else (issued + timedelta(days=rng.choice((14, 30, 60)))).isoformat(),
        supplier=supplier.name,
        supplier_address=supplier.address,
        customer="" if receipt else customer.name,
        currency=currency,
        line_items=items,
        subtotal=subtotal,
        tax_rate=rate,
        tax=tax,
        total=total,
        customer_address="" if receipt else customer.address,
        supplier_vat=supplier.vat_id,
        customer_vat="" if receipt else customer.vat_id,
        document_type="credit_note" if credit_note else "invoice",
        reference=pattern.format(year=issued.year, serial=max(1, serial - rng.randint(1, 9)))
        if credit_note
        else "",
        prices_include_tax=receipt,
    )
    return labels, Style.draw(rng, place, currency)
