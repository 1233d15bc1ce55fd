"""Arithmetic proof of a result: each table row's ``quantity x unit price = amount``, the rows'
sum against the subtotal or total, and ``net + tax = total``.

`reconcile` is called once per result, after every value has its status (found, unverified, …);
it upgrades the values that take part in at least one check and fail none from ``found`` to
``checked`` and answers the document's ``checks`` object.

Roles come from names, in the six languages of the offline engine's vocabulary: a scalar field is
the total, the net (subtotal) or the tax when its name is one of that concept's labels
(`extraction.local.vocabulary.GROUPS`); a table's columns are the quantity, unit price, amount and
discount by `QUANTITY_COLUMNS` and its neighbours. A check runs only when every value it needs is
present (not null, a number); unverified values take part but are never upgraded.

- ``row``: ``amount = quantity x unit price - discount`` within one cent. Where the table has a
  discount column and the row's discount is present, the discount is read as an amount, or as a
  percentage when ``quantity x unit price x (1 - discount / 100)`` is what matches; without a
  discount (no column, or the row's is empty) an amount below ``quantity x unit price`` fails.
- ``rows_total``: the first table with an amount column sums to the net within one cent per row;
  to the total when no net and no tax field is asked, where rows summing to less than the total
  prove nothing (the gap may be its tax) and are not checked. A missing or extra row shows here.
- ``net_tax_total``: ``net + tax = total`` within one cent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, TypedDict

from extraction.contract import ValueStatus
from extraction.fields import FieldSpec
from extraction.local.lines import KNOWN_KEYS, label_key
from extraction.local.vocabulary import (
    DISCOUNT_COLUMNS,
    LINE_AMOUNT_COLUMNS,
    QUANTITY_COLUMNS,
    UNIT_PRICE_COLUMNS,
)

CENT = Decimal("0.01")
_HUNDRED = Decimal(100)


class CheckFailure(TypedDict):
    check: str  # "row", "rows_total", "net_tax_total"
    message: str  # "row 3: 2 x 4.50 = 9.00, not 9.50"
    expected: str  # decimal strings, so JSON keeps the cents
    actual: str
    difference: str
    fields: list[str]  # the fields (and "field[row]" cells) it involves


class Checks(TypedDict):
    # "reconciled": every check that could run passed; "failed": one did not; "not_checked": no
    # check could run (the fields asked for do not allow one).
    status: str
    failures: list[CheckFailure]


def _keys(phrases: Iterable[str]) -> frozenset[str]:
    return frozenset(label_key(phrase) for phrase in phrases)


_QUANTITY = _keys(QUANTITY_COLUMNS)
_UNIT_PRICE = _keys(UNIT_PRICE_COLUMNS)
_LINE_AMOUNT = _keys(LINE_AMOUNT_COLUMNS)
_DISCOUNT = _keys(DISCOUNT_COLUMNS)
# The vocabulary's groups of the document's totals, by the phrase that names each.
_TOTAL, _NET, _TAX = (KNOWN_KEYS[label_key(name)] for name in ("total", "subtotal", "tax"))

# A value's place in the result: ("field", None) for a scalar, ("field", row index) for a row.
Ref = tuple[str, int | None]


def number(value: Any) -> Decimal | None:
    """A value as a Decimal, or None when it is absent or not a finite number."""
    if value is None or isinstance(value, bool):
        return None
    try:
        result = Decimal(str(value).strip()) if isinstance(value, str | float) else Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        return None
    return result if result.is_finite() else None


def _show(value: Decimal) -> str:
    """Amounts with at least their cents: 9 -> "9.00", 4.125 -> "4.125"."""
    return str(value.quantize(CENT)) if value.as_tuple().exponent > -2 else str(value)  # type: ignore[operator]


def _show_count(value: Decimal) -> str:
    """Counts as written, without trailing zeros: 2, 1.5."""
    return f"{value.normalize():f}"


@dataclass
class _Run:
    cells: dict[str, dict[str, Any]]
    ran: int = 0
    failures: list[CheckFailure] = field(default_factory=list)
    passed: set[Ref] = field(default_factory=set)
    failed: set[Ref] = field(default_factory=set)

    def check(
        self,
        name: str,
        refs: list[Ref],
        expected: Decimal,
        actual: Decimal,
        tolerance: Decimal,
        message: Callable[[], str],
    ) -> None:
        self.ran += 1
        difference = actual - expected
        if abs(difference) <= tolerance:
            self.passed.update(refs)
            return
        self.failed.update(refs)
        self.failures.append(
            CheckFailure(
                check=name,
                message=message(),
                expected=_show(expected),
                actual=_show(actual),
                difference=_show(difference),
                fields=[_label(ref) for ref in refs],
            )
        )


def _label(ref: Ref) -> str:
    name, row = ref
    return name if row is None else f"{name}[{row + 1}]"


def _status(cell: dict[str, Any] | None) -> str | None:
    return None if cell is None else cell.get("status")


def _usable(cell: dict[str, Any] | None) -> bool:
    return _status(cell) not in (ValueStatus.MISSING, ValueStatus.INVALID)


def _scalar(fields: list[FieldSpec], cells: dict[str, dict[str, Any]], group: int) -> str | None:
    """The first scalar field asked for whose name is a label of `group`."""
    for spec in fields:
        if spec["type"] != "table" and KNOWN_KEYS.get(label_key(spec["name"])) == group:
            return spec["name"]
    return None


def concept_field(fields: list[FieldSpec], concept: str) -> str | None:
    """The first scalar field asked for that means `concept`, a phrase of the vocabulary that
    names it ("invoice number", "date", "total", "supplier", "currency"): "Rechnungsnummer" or
    "invoice no" is the invoice number as much as "invoice number" is."""
    return _scalar(fields, {}, KNOWN_KEYS[label_key(concept)])


def _column(spec: FieldSpec, keys: frozenset[str]) -> str | None:
    for column in spec.get("columns", []):
        if label_key(column["name"]) in keys:
            return column["name"]
    return None


def _check_rows(run: _Run, spec: FieldSpec) -> str | None:
    """The row checks of one table; answers its amount column."""
    name = spec["name"]
    amount_column = _column(spec, _LINE_AMOUNT)
    quantity_column = _column(spec, _QUANTITY)
    price_column = _column(spec, _UNIT_PRICE)
    discount_column = _column(spec, _DISCOUNT)
    cell = run.cells.get(name)
    if amount_column is None or not _usable(cell) or not isinstance(cell, dict):
        return amount_column
    rows = cell.get("value") or []
    statuses = cell.get("rows") or []
    for index, row in enumerate(rows):
        if not isinstance(row, dict) or (index < len(statuses) and not _usable(statuses[index])):
            continue
        quantity = number(row.get(quantity_column)) if quantity_column else None
        price = number(row.get(price_column)) if price_column else None
        amount = number(row.get(amount_column))
        if quantity is None or price is None or amount is None:
            continue
        gross = quantity * price
        discount = number(row.get(discount_column)) if discount_column else None
        expected = gross
        shown = f"{_show_count(quantity)} x {_show(price)}"
        if discount is not None:
            expected = gross - discount
            shown += f" - {_show(discount)}"
            as_percent = gross * (1 - discount / _HUNDRED)
            if abs(amount - as_percent) < abs(amount - expected):
                expected = as_percent
                shown = f"{_show_count(quantity)} x {_show(price)} - {_show_count(discount)}%"

        def message(
            shown: str = shown,
            expected: Decimal = expected,
            amount: Decimal = amount,
            index: int = index,
        ) -> str:
            return f"row {index + 1}: {shown} = {_show(expected)}, not {_show(amount)}"

        run.check("row", [(name, index)], expected, amount, CENT, message)
    return amount_column


def _check_rows_total(
    run: _Run,
    spec: FieldSpec,
    amount_column: str,
    against: str,
    context: str,
    *,
    may_add: bool = False,
) -> None:
    """`may_add`: the target is a total whose tax (or shipping) nobody asked for, so rows
    summing to less than it prove nothing either way; rows summing to more still fail."""
    name = spec["name"]
    cell, target = run.cells.get(name), run.cells.get(against)
    if not (_usable(cell) and _usable(target)) or cell is None or target is None:
        return
    rows = cell.get("value") or []
    statuses = cell.get("rows") or []
    amounts = [number(row.get(amount_column)) if isinstance(row, dict) else None for row in rows]
    expected = number(target.get("value"))
    if not amounts or expected is None or any(amount is None for amount in amounts):
        return
    if any(not _usable(status) for status in statuses):
        return
    total = sum((amount for amount in amounts if amount is not None), Decimal(0))
    refs: list[Ref] = [(name, index) for index in range(len(rows))]
    if may_add and total < expected - CENT * len(rows):
        return

    def message() -> str:
        apart = abs(total - expected)
        return (
            f"{name} sum to {_show(total)}, {context} is {_show(expected)} ({_show(apart)} apart)"
        )

    run.check("rows_total", [*refs, (against, None)], expected, total, CENT * len(rows), message)


def _check_net_tax_total(run: _Run, net: str, tax: str, total: str) -> None:
    values = [run.cells.get(name) for name in (net, tax, total)]
    if not all(_usable(cell) and cell is not None for cell in values):
        return
    numbers = [number(cell.get("value")) for cell in values if cell is not None]
    net_value, tax_value, total_value = numbers
    if net_value is None or tax_value is None or total_value is None:
        return
    expected = net_value + tax_value

    def message() -> str:
        return (
            f"{net} {_show(net_value)} + {tax} {_show(tax_value)} = {_show(expected)}, "
            f"{total} is {_show(total_value)} ({_show(abs(total_value - expected))} apart)"
        )

    run.check(
        "net_tax_total",
        [(net, None), (tax, None), (total, None)],
        expected,
        total_value,
        CENT,
        message,
    )


def _upgrade(run: _Run, fields: list[FieldSpec]) -> None:
    for ref in run.passed - run.failed:
        name, row = ref
        cell = run.cells.get(name)
        if cell is None:
            continue
        rows = cell.get("rows") or []
        target = cell if row is None else rows[row] if row < len(rows) else {}
        if target.get("status") == ValueStatus.FOUND:
            target["status"] = ValueStatus.CHECKED.value
            if row is None and "verified" in target:
                target["verified"] = True
    for spec in fields:
        cell = run.cells.get(spec["name"])
        if (
            spec["type"] == "table"
            and cell is not None
            and "rows" in cell
            and _status(cell) != ValueStatus.INVALID
        ):
            cell["status"] = table_status(cell["rows"])


def table_status(rows: list[dict[str, Any]]) -> str:
    """A table cell's status from its rows' (DESIGN.md "Results")."""
    statuses = [row.get("status") for row in rows]
    if not statuses:
        return ValueStatus.MISSING.value
    if ValueStatus.UNVERIFIED in statuses:
        return ValueStatus.UNVERIFIED.value
    if all(status == ValueStatus.CHECKED for status in statuses):
        return ValueStatus.CHECKED.value
    return ValueStatus.FOUND.value


def reconcile(fields: list[FieldSpec], cells: dict[str, dict[str, Any]]) -> Checks:
    """Run the checks the fields allow over `cells` (the result's "fields"), upgrade the statuses
    of the values that pass, and say what failed."""
    run = _Run(cells)
    net, tax, total = (_scalar(fields, cells, group) for group in (_NET, _TAX, _TOTAL))
    summed = False
    for spec in fields:
        if spec["type"] != "table":
            continue
        amount_column = _check_rows(run, spec)
        if amount_column is None or summed:
            continue
        summed = True
        if net is not None:
            _check_rows_total(run, spec, amount_column, net, net)
        elif tax is None and total is not None:
            _check_rows_total(run, spec, amount_column, total, total, may_add=True)
    if net is not None and tax is not None and total is not None:
        _check_net_tax_total(run, net, tax, total)
    _upgrade(run, fields)
    if run.failures:
        status = "failed"
    elif run.ran:
        status = "reconciled"
    else:
        status = "not_checked"
    return Checks(status=status, failures=run.failures)
