"""The quality benchmark's scoring rules: what counts as the same value, and how rows are paired."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bench.scoring import Outcome, judge, score_rows


@pytest.mark.parametrize(
    ("field", "expected", "extracted"),
    [
        ("date", "2024-03-12", "2024-03-12"),
        ("total", "1234.50", "1234.5"),
        ("total", "-8.79", Decimal("-8.790")),
        ("currency", "EUR", "eur"),
        ("invoice number", "INV 2024 0012", "INV-2024-0012".replace("-", " ")),
        ("invoice number", "INV 2024 0012", "INV20240012"),
        ("supplier", "ACME Supplies, Ltd.", "acme supplies ltd"),
        ("supplier", "Schön & Söhne AG", "SCHÖN SÖHNE AG"),
        ("buyer vat id", "FR86 012904047", "fr86012904047"),
    ],
)
def test_values_that_match_after_the_fields_normalisation_are_correct(
    field: str, expected: str, extracted: object
) -> None:
    assert judge(field, expected, extracted) is Outcome.CORRECT


@pytest.mark.parametrize(
    ("field", "expected", "extracted"),
    [
        ("date", "2024-03-12", "12.03.2024"),  # not ISO: the engine must normalise
        ("date", "2024-03-12", "2024-12-03"),
        ("total", "319.00", "1"),  # the quantity column of a totals row
        ("total", "319.00", "319.00 EUR"),  # a number field must not carry its currency
        ("total", "-8.79", "8.79"),
        ("currency", "EUR", "€"),  # ISO 4217, not the symbol
        ("invoice number", "INV-2024-0012", "inv-2024-0012"),  # only spaces are ignored
        ("supplier", "ACME Supplies Ltd", "encapsulated their company data in the image below:"),
    ],
)
def test_anything_else_given_is_wrong(field: str, expected: str, extracted: str) -> None:
    assert judge(field, expected, extracted) is Outcome.WRONG


def test_no_value_is_missing_and_a_value_where_the_document_has_none_is_wrong() -> None:
    assert judge("total", "319.00", None) is Outcome.MISSING
    assert judge("supplier", "ACME", "  ") is Outcome.MISSING
    assert judge("buyer", None, None) is Outcome.CORRECT
    assert judge("buyer", None, "Someone") is Outcome.WRONG


ROWS = [
    {"description": "Paper", "quantity": "2", "unit price": "5.00", "amount": "10.00"},
    {"description": "Toner", "quantity": "1", "unit price": "40.00", "amount": "40.00"},
    {"description": "Chair", "quantity": "3", "unit price": "100.00", "amount": "300.00"},
]


def test_rows_read_exactly_score_every_cell() -> None:
    score = score_rows(ROWS, [dict(row) for row in ROWS])

    assert (score.correct_cells, score.cells, score.exact_rows, score.count_exact) == (
        12,
        12,
        3,
        True,
    )


def test_a_missing_row_in_the_middle_does_not_shift_the_rows_after_it() -> None:
    score = score_rows(ROWS, [ROWS[0], ROWS[2]])

    assert (score.correct_cells, score.cells, score.exact_rows) == (8, 12, 2)
    assert not score.count_exact


def test_an_invented_row_counts_against_the_cells_like_a_missing_one() -> None:
    invented = {"description": "Subtotal", "quantity": "", "unit price": "", "amount": "350.00"}

    score = score_rows(ROWS, [*ROWS, invented])

    assert (score.correct_cells, score.cells, score.exact_rows) == (12, 16, 3)


def test_a_wrong_cell_costs_that_cell_and_the_row_s_exactness() -> None:
    wrong = [ROWS[0], {**ROWS[1], "quantity": "40.00"}, ROWS[2]]  # the price read as quantity

    score = score_rows(ROWS, wrong)

    assert (score.correct_cells, score.exact_rows) == (11, 2)


def test_no_rows_extracted_scores_nothing() -> None:
    score = score_rows(ROWS, [])

    assert (score.correct_cells, score.cells, score.extracted_rows) == (0, 12, 0)
