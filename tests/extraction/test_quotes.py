"""Finding a quote in a document's text: white space and case do not matter, and the match is
given back as offsets in the original text (so that a value can be given its page)."""

from __future__ import annotations

import pytest

from extraction.contract import PAGE_BREAK
from extraction.quotes import QuoteChecker


@pytest.mark.parametrize(
    "text",
    [
        "Supplier Ltd\n  Total:\t\t1,234.50 \n EUR\n",
        "Société Générale\n  Total:\t\t1,234.50 \n EUR\n",  # not ASCII
    ],
)
def test_a_quote_is_found_across_other_white_space_and_case_with_its_original_offsets(text):
    checker = QuoteChecker(text)

    first, last = checker.span("TOTAL: 1,234.50 eur")

    assert text[first : last + 1] == "Total:\t\t1,234.50 \n EUR"
    assert checker.locate("total 1,234.50") is None


def test_a_quote_after_a_page_break_is_on_the_second_page():
    text = f"Invoice INV-7\n{PAGE_BREAK}\n  Total   due: 99.00\n"

    assert QuoteChecker(text).pages("total DUE: 99.00", None) == [2]
    assert QuoteChecker(text).pages("invoice inv-7", None) == [1]
