"""settle: one status per value, from where its quote stands (on its own page or not at all)."""

from __future__ import annotations

from typing import Any

from extraction.contract import PageLayout, Word
from extraction.fields import FieldSpec
from extraction.statuses import settle

TEXT = "Invoice INV-7\nDate 2024-03-01\n\fTotal 99.00 EUR\nThank you"
FIELDS = [
    FieldSpec(name="invoice number", type="string", description=""),
    FieldSpec(name="date", type="date", description=""),
    FieldSpec(name="total", type="number", description=""),
]
LINES = FieldSpec(
    name="line items",
    type="table",
    description="",
    columns=[
        {"name": "description", "type": "string", "description": ""},
        {"name": "amount", "type": "number", "description": ""},
    ],
)


def cell(value: Any, quote: str | None, page: int | None, **more: Any) -> dict[str, Any]:
    return {"value": value, "quote": quote, "page": page, "source": "text", **more}


def settled(fields: dict[str, Any], specs: list[FieldSpec] = FIELDS, **kw: Any) -> dict[str, Any]:
    return settle({"engine": "local", "model": None, "fields": fields}, specs, TEXT, **kw)


def test_a_value_quoted_on_its_page_is_found_and_verified():
    result = settled({"invoice number": cell("INV-7", "Invoice INV-7", 1)})
    number = result["fields"]["invoice number"]
    assert (number["status"], number["verified"], number["page"]) == ("found", True, 1)
    assert number["review"] is None
    assert result["checks"] == {"status": "not_checked", "failures": []}


def test_a_quote_that_stands_on_another_page_is_unverified():
    number = settled({"total": cell(99, "Total 99.00 EUR", 1)})["fields"]["total"]
    assert (number["status"], number["verified"]) == ("unverified", False)


def test_a_quote_not_in_the_text_is_unverified_and_a_field_without_value_is_missing():
    fields = settled({"date": cell("2024-03-02", "Date 2024-03-02", 1)})["fields"]
    assert fields["date"]["status"] == "unverified"
    assert fields["invoice number"] == {
        "value": None,
        "quote": None,
        "page": None,
        "status": "missing",
        "source": "text",
        "verified": False,
        "review": None,
    }


def test_a_quote_without_a_page_is_found_anywhere_and_given_its_page():
    total = settled({"total": cell(99, "total 99.00  eur", None)})["fields"]["total"]
    assert (total["status"], total["page"]) == ("found", 2)


def test_an_invalid_answer_is_kept_with_its_raw_text_and_reason():
    bad = {"value": None, "status": "invalid", "raw": "August 3 , 2014", "reason": "not a date"}
    date = settled({"date": bad})["fields"]["date"]
    assert (date["status"], date["value"], date["verified"]) == ("invalid", None, False)
    assert (date["raw"], date["reason"]) == ("August 3 , 2014", "not a date")


def test_a_value_read_from_an_ocr_page_says_ocr_and_xml_stays_xml():
    layout = (
        PageLayout(number=1, width=600, height=800, words=(Word("Invoice", 0, 0, 1, 1),)),
        PageLayout(number=2, width=600, height=800, words=(), ocr_confidence=81.5),
    )
    fields = settled(
        {
            "invoice number": cell("INV-7", "Invoice INV-7", 1),
            "total": cell(99, "Total 99.00 EUR", 2),
            "date": cell("2024-03-01", "<cbc:IssueDate>", None, source="xml"),
        },
        layout=layout,
    )["fields"]
    assert [fields[name]["source"] for name in ("invoice number", "total", "date")] == [
        "text",
        "ocr",
        "xml",
    ]
    assert fields["date"]["status"] == "found"


def test_table_rows_get_their_own_status_and_the_table_the_weakest():
    rows = [
        {"description": "Total", "amount": 99},
        {"description": "Gift", "amount": 1},
    ]
    table = {
        "value": rows,
        "rows": [
            {"quote": "Total 99.00 EUR", "page": 2, "pages": [1, 2]},
            {"quote": "Gift 1.00", "page": 2, "pages": [2]},
        ],
        "source": "text",
    }
    settled_table = settled({"line items": table}, [LINES])["fields"]["line items"]
    assert [row["status"] for row in settled_table["rows"]] == ["found", "unverified"]
    assert (settled_table["status"], settled_table["page"], settled_table["quote"]) == (
        "unverified",
        1,
        None,
    )
    assert settled_table["value"] == rows
    found = settled({"line items": {**table, "value": rows[:1]}}, [LINES])["fields"]
    assert found["line items"]["status"] == "found"
    assert found["line items"]["rows"][0]["pages"] == [1, 2]
    empty = settled({}, [LINES])["fields"]["line items"]
    assert (empty["status"], empty["value"], empty["rows"]) == ("missing", [], [])


def test_a_row_whose_quote_runs_over_a_page_break_is_found_on_its_pages():
    rows = [{"description": "Thanks", "amount": 1}, {"description": "Thanks", "amount": 2}]
    table = {
        "value": rows,
        "rows": [
            {"quote": "Date 2024-03-01 Total 99.00", "page": 1, "pages": [1, 2]},
            {"quote": "Date 2024-03-01 Total 99.00", "page": 1, "pages": [1]},
        ],
        "source": "text",
    }
    settled_rows = settled({"line items": table}, [LINES])["fields"]["line items"]["rows"]
    assert [(row["status"], row["pages"]) for row in settled_rows] == [
        ("found", [1, 2]),
        ("unverified", [1]),  # said to stand on page 1 alone, where half of it is
    ]


def test_settling_twice_keeps_the_statuses_and_a_review():
    review = {"value": "INV-8", "by": "alice", "at": "2026-12-01T10:00:00Z"}
    once = settled({"invoice number": cell("INV-7", "Invoice INV-7", 1, review=review)})
    twice = settle(once, FIELDS, TEXT)
    assert twice == once
    assert twice["fields"]["invoice number"]["review"] == review


def test_a_row_over_a_page_break_is_found_when_each_of_its_lines_is_on_one_of_its_pages():
    rows = [{"description": "Date 2024-03-01 Thank you", "amount": 99}] * 2
    table = {
        "value": rows,
        "rows": [
            {"quote": "Date 2024-03-01\nThank you", "page": 1, "pages": [1, 2]},
            {"quote": "Date 2024-03-01\nThank you", "page": 1, "pages": [1]},
        ],
        "source": "text",
    }

    settled_rows = settled({"line items": table}, [LINES])["fields"]["line items"]["rows"]

    assert [row["status"] for row in settled_rows] == ["found", "unverified"]
