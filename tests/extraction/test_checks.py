"""The arithmetic proof of a result (`extraction.checks.reconcile`)."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

from extraction.checks import reconcile
from extraction.fields import ColumnSpec, FieldSpec


def _number(name: str) -> FieldSpec:
    return FieldSpec(name=name, type="number", description="")


def _table(name: str, *columns: str) -> FieldSpec:
    return FieldSpec(
        name=name,
        type="table",
        description="",
        columns=[ColumnSpec(name=column, type="number", description="") for column in columns],
    )


def _scalar(value: Any, status: str = "found") -> dict[str, Any]:
    return {
        "value": value,
        "quote": str(value),
        "page": 1,
        "status": status,
        "source": "text",
        "verified": status in ("found", "checked"),
        "review": None,
    }


def _rows(rows: list[dict[str, Any]], statuses: list[str] | None = None) -> dict[str, Any]:
    statuses = statuses or ["found"] * len(rows)
    return {
        "value": rows,
        "rows": [{"quote": "…", "page": 1, "pages": [1], "status": s} for s in statuses],
        "quote": None,
        "page": 1,
        "status": "found",
        "source": "text",
        "verified": True,
        "review": None,
    }


FIELDS = [
    _table("line items", "description", "quantity", "unit price", "amount"),
    _number("net"),
    _number("tax"),
    _number("total"),
]


def _invoice(**changes: Any) -> dict[str, dict[str, Any]]:
    rows = [
        {"description": "Widget", "quantity": 2, "unit price": "4.50", "amount": "9.00"},
        {"description": "Gadget", "quantity": "3", "unit price": "10.00", "amount": "30.00"},
        {"description": "Cable", "quantity": 1, "unit price": "81.00", "amount": "81.00"},
    ]
    cells = {
        "line items": _rows(rows),
        "net": _scalar("120.00"),
        "tax": _scalar("22.80"),
        "total": _scalar("142.80"),
    }
    for key, value in changes.items():
        cells[key] = value
    return cells


def _statuses(cells: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        name: (cell["status"], [row["status"] for row in cell["rows"]])
        if "rows" in cell
        else cell["status"]
        for name, cell in cells.items()
    }


def test_a_reconciled_invoice_checks_every_value() -> None:
    cells = _invoice()
    checks = reconcile(FIELDS, cells)
    assert checks == {"status": "reconciled", "failures": []}
    assert _statuses(cells) == {
        "line items": ("checked", ["checked"] * 3),
        "net": "checked",
        "tax": "checked",
        "total": "checked",
    }


def test_one_wrong_row_fails_that_row_and_the_sum() -> None:
    cells = _invoice()
    cells["line items"]["value"][0]["amount"] = "9.50"
    checks = reconcile(FIELDS, cells)
    assert checks["status"] == "failed"
    row, total = checks["failures"]
    assert row == {
        "check": "row",
        "message": "row 1: 2 x 4.50 = 9.00, not 9.50",
        "expected": "9.00",
        "actual": "9.50",
        "difference": "0.50",
        "fields": ["line items[1]"],
    }
    assert total["check"] == "rows_total"
    assert total["message"] == "line items sum to 120.50, net is 120.00 (0.50 apart)"
    # Nothing the failing checks touched is upgraded; net + tax = total still holds.
    assert _statuses(cells) == {
        "line items": ("found", ["found"] * 3),
        "net": "found",
        "tax": "checked",
        "total": "checked",
    }


def test_a_missing_row_shows_in_the_sum() -> None:
    cells = _invoice()
    del cells["line items"]["value"][2]
    del cells["line items"]["rows"][2]
    checks = reconcile(FIELDS, cells)
    [failure] = checks["failures"]
    assert failure["message"] == "line items sum to 39.00, net is 120.00 (81.00 apart)"
    assert (failure["expected"], failure["actual"], failure["difference"]) == (
        "120.00",
        "39.00",
        "-81.00",
    )
    assert failure["fields"] == ["line items[1]", "line items[2]", "net"]
    assert cells["line items"]["status"] == "found"


def test_net_plus_tax_not_total() -> None:
    cells = _invoice(total=_scalar("143.80"))
    checks = reconcile(FIELDS, cells)
    [failure] = checks["failures"]
    assert failure["check"] == "net_tax_total"
    assert failure["message"] == "net 120.00 + tax 22.80 = 142.80, total is 143.80 (1.00 apart)"
    assert failure["fields"] == ["net", "tax", "total"]
    assert _statuses(cells)["tax"] == "found"
    # The net failed one check (though the rows sum to it): not upgraded; the rows are.
    assert _statuses(cells)["net"] == "found"
    assert _statuses(cells)["line items"] == ("checked", ["checked"] * 3)


def test_discounts_as_amount_or_percent_and_none_visible() -> None:
    fields = [_table("items", "qty", "price", "discount", "amount"), _number("subtotal")]
    rows = [
        {"qty": 2, "price": "10.00", "discount": "5.00", "amount": "15.00"},
        {"qty": 1, "price": "50.00", "discount": "10", "amount": "45.00"},  # 10 %
        {"qty": 1, "price": "8.00", "discount": None, "amount": "8.00"},
    ]
    cells = {"items": _rows(rows), "subtotal": _scalar("68.00")}
    assert reconcile(fields, cells)["status"] == "reconciled"
    assert cells["items"]["status"] == "checked"
    # Below q x p without a visible discount is a failure.
    rows[2]["amount"] = "7.00"
    cells = {"items": _rows(rows), "subtotal": _scalar("67.00")}
    [failure] = reconcile(fields, cells)["failures"]
    assert failure["message"] == "row 3: 1 x 8.00 = 8.00, not 7.00"


def test_rounding_within_a_cent() -> None:
    fields = [_table("items", "quantity", "unit price", "amount"), _number("total")]
    rows = [{"quantity": 3, "unit price": "0.333", "amount": "1.00"}]
    cells = {"items": _rows(rows), "total": _scalar("1.00")}
    assert reconcile(fields, cells)["status"] == "reconciled"
    rows[0]["amount"] = "1.01"  # 0.011 off: beyond a cent
    cells = {"items": _rows(rows), "total": _scalar("1.01")}
    [failure] = reconcile(fields, cells)["failures"]
    assert failure["difference"] == "0.011"


def test_german_names() -> None:
    fields = [
        _table("Positionen", "Bezeichnung", "Menge", "Einzelpreis", "Betrag"),
        _number("Nettobetrag"),
        _number("MwSt"),
        _number("Gesamtbetrag"),
    ]
    rows = [{"Bezeichnung": "Schrauben", "Menge": 4, "Einzelpreis": "2.50", "Betrag": "10.00"}]
    cells = {
        "Positionen": _rows(rows),
        "Nettobetrag": _scalar(10),
        "MwSt": _scalar("1.90"),
        "Gesamtbetrag": _scalar("11.90"),
    }
    assert reconcile(fields, cells)["status"] == "reconciled"
    assert _statuses(cells)["Gesamtbetrag"] == "checked"
    cells["Positionen"]["value"][0]["Betrag"] = "11.00"
    cells["Positionen"]["rows"][0]["status"] = "found"
    assert (
        reconcile(fields, cells)["failures"][0]["message"] == "row 1: 4 x 2.50 = 10.00, not 11.00"
    )


def test_nothing_checkable() -> None:
    fields = [FieldSpec(name="invoice number", type="string", description=""), _number("total")]
    cells = {"invoice number": _scalar("A-1"), "total": _scalar("10.00")}
    before = copy.deepcopy(cells)
    assert reconcile(fields, cells) == {"status": "not_checked", "failures": []}
    assert cells == before
    # A check whose value is missing or invalid does not run.
    cells = _invoice(tax={"value": None, "status": "invalid", "raw": "x", "reason": "no"})
    checks = reconcile([_number("net"), _number("tax"), _number("total")], cells)
    assert checks["status"] == "not_checked"


def test_unverified_values_are_never_upgraded() -> None:
    cells = _invoice(tax=_scalar("22.80", "unverified"))
    cells["line items"]["rows"][1]["status"] = "unverified"
    assert reconcile(FIELDS, cells)["status"] == "reconciled"
    assert _statuses(cells) == {
        "line items": ("unverified", ["checked", "unverified", "checked"]),
        "net": "checked",
        "tax": "unverified",
        "total": "checked",
    }


def test_ints_strings_floats_and_decimals() -> None:
    fields = [_table("items", "quantity", "unit price", "amount"), _number("total")]
    rows = [
        {"quantity": 2, "unit price": 0.1, "amount": Decimal("0.20")},
        {"quantity": Decimal(1), "unit price": "0.70", "amount": 0.7},
    ]
    cells = {"items": _rows(rows), "total": _scalar(Decimal("0.9"))}
    assert reconcile(fields, cells)["status"] == "reconciled"
    cells = {"items": _rows(rows), "total": _scalar("not a number")}
    assert reconcile(fields, cells)["status"] == "reconciled"  # rows only; the sum cannot run
    assert cells["total"]["status"] == "found"


def test_totals_named_in_other_languages() -> None:
    for net, tax, total in (
        ("Total HT", "TVA", "Total TTC"),
        ("Subtotaal", "BTW", "Totaal"),
        ("Base imponible", "IVA", "Total factura"),
        ("Imponibile", "Imposta", "Totale"),
    ):
        fields = [_number(net), _number(tax), _number(total)]
        cells = {net: _scalar("100.00"), tax: _scalar(20), total: _scalar("121")}
        [failure] = reconcile(fields, cells)["failures"]
        assert failure["fields"] == [net, tax, total]
        assert failure["difference"] == "1.00"


def test_rows_under_a_total_whose_tax_was_not_asked_prove_nothing_and_rows_over_it_fail() -> None:
    fields = [_table("items", "quantity", "unit price", "amount"), _number("total")]
    rows = [{"quantity": "2", "unit price": "50.00", "amount": "100.00"}]

    # 100.00 of items, 119.00 in total: the gap may well be VAT, which nobody asked for.
    taxed = reconcile(fields, {"items": _rows(rows), "total": _scalar("119.00")})
    over = reconcile(fields, {"items": _rows(rows), "total": _scalar("90.00")})

    assert taxed["status"] == "reconciled"  # the row's own check still ran and passed
    assert [failure["check"] for failure in over["failures"]] == ["rows_total"]
