"""Arithmetic proof of a result: each table row's ``quantity x unit price = amount``, the rows'
sum against the subtotal or total, and ``net + tax = total``.

`reconcile` is called once per result, after every value has its status (found, unverified, …);
it upgrades the values that take part in at least one check and fail none from ``found`` to
``checked`` and answers the document's ``checks`` object.
"""

from __future__ import annotations

from typing import Any, TypedDict

from extraction.fields import FieldSpec


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


def reconcile(fields: list[FieldSpec], cells: dict[str, dict[str, Any]]) -> Checks:
    """Run the checks the fields allow over `cells` (the result's "fields"), upgrade the statuses
    of the values that pass, and say what failed."""
    return Checks(status="not_checked", failures=[])
