"""Dates and amounts as the six languages of the offline engine write them."""

from __future__ import annotations

import pytest

from extraction.normalise import parse_amount, parse_date


@pytest.mark.parametrize(
    ("written", "iso"),
    [
        ("12. März 2024", "2024-03-12"),
        ("3. Okt. 2024", "2024-10-03"),
        ("12 maart 2024", "2024-03-12"),
        ("1 mei 2024", "2024-05-01"),
        ("14 februari 2024", "2024-02-14"),
        ("1er mars 2024", "2024-03-01"),
        ("5 janv. 2024", "2024-01-05"),
        ("3 août 2024", "2024-08-03"),
        ("12 de marzo de 2024", "2024-03-12"),
        ("1º de abril de 2024", "2024-04-01"),
        ("9 dic 2024", "2024-12-09"),
        ("3 giugno 2024", "2024-06-03"),
        ("12-ott-2024", "2024-10-12"),
        ("7 settembre 2024", "2024-09-07"),
        ("July 3, 2024", "2024-07-03"),
    ],
)
def test_dates_with_month_names_in_six_languages_become_iso(written: str, iso: str) -> None:
    assert parse_date(f"Datum: {written}") == iso


@pytest.mark.parametrize(
    ("written", "value"),
    [
        ("1.234,56", "1234.56"),
        ("1 234,56", "1234.56"),
        ("1\u00a0234,56", "1234.56"),
        ("1\u202f234,56", "1234.56"),
        ("1,234.56", "1234.56"),
        ("-8,79", "-8.79"),
        ("(8.79)", "-8.79"),
        ("8,79-", "-8.79"),
        ("EUR -8,79", "-8.79"),
        ("1'234.56", "1234.56"),
        ("1\u202f234.56", "1234.56"),
        ("₹1,23,456.78", "123456.78"),
        ("Rs. 12,34,567.00", "1234567.00"),
        ("INR 1,00,000", "100000"),
    ],
)
def test_amounts_in_every_common_locale_format(written: str, value: str) -> None:
    amount = parse_amount(written)

    assert amount is not None
    assert amount.value == value


def test_a_total_row_gives_its_last_amount_not_the_quantity_before_it() -> None:
    # Quantity, net, tax and gross in one row: 278.61 + 40.39 = 319.00.
    amount = parse_amount("1 278.61 40.39 319.00")

    assert amount is not None
    assert amount.value == "319.00"


def test_a_word_between_amounts_ends_the_row() -> None:
    amount = parse_amount("1.234,50 € inkl. 197,11 € MwSt.")

    assert amount is not None
    assert (amount.value, amount.currency) == ("1234.50", "EUR")


def test_an_amount_in_a_parenthesis_is_an_aside() -> None:
    amount = parse_amount("$319.00 (incl. VAT $40.39)")

    assert amount is not None
    assert amount.value == "319.00"


def test_an_amount_with_decimals_wins_over_a_count_beside_it() -> None:
    amount = parse_amount("3 items 319.00")

    assert amount is not None
    assert amount.value == "319.00"


def test_a_range_is_not_a_trailing_minus() -> None:
    amount = parse_amount("100.00-200.00")

    assert amount is not None
    assert amount.value == "100.00"
