"""The offline engine: label/value matching with typed normalisation, on text and on real PDFs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from extraction.contract import ErrorKind, ExtractionError, ExtractionRequest
from extraction.fields import fields_from_prompt, parse_fields
from extraction.local.engine import LocalEngine
from extraction.normalise import DateOrder, parse_amount, parse_date
from extraction.statuses import settle
from tests.support.placed_pdfs import make_pdf, pdf_text, rows

REPO = Path(__file__).resolve().parents[2]

# A field the engine did not find, as a user sees it once its status is settled.
MISSING = {
    **dict.fromkeys(("value", "quote", "page", "review")),
    **{"status": "missing", "source": "text", "verified": False},
}


def settled(request: ExtractionRequest) -> dict[str, Any]:
    """The engine's result as users see it: every value's status (and `verified`, derived from
    it) settled, as the pipeline settles every engine's result."""
    result = LocalEngine().extract(request).result
    specs = request.fields or fields_from_prompt(request.prompt)
    return settle(result, specs, request.text, layout=request.layout)


def extract(
    text: str, fields: str = "", *, prompt: str = "", filename: str = "invoice.txt"
) -> dict[str, Any]:
    request = ExtractionRequest(
        text=text,
        prompt=prompt,
        fields=parse_fields(fields),
        filename=filename,
        content_type="text/plain",
    )
    return settled(request)


def values(text: str, fields: str) -> dict[str, Any]:
    return {name: item["value"] for name, item in extract(text, fields)["fields"].items()}


# Known values, written out in several layouts below.
NUMBER, ISO_DATE, TOTAL = "INV-2024-001", "2024-03-12", "1234.50"
FIELDS = "invoice number\ndate:date\ntotal:number\nsupplier\ncustomer"

COLON_LAYOUT = """\
ACME Supplies Ltd
12 Harbour Road, Bristol

Invoice number: INV-2024-001
Date: 03/12/2024
Bill to: Globex Corporation
Supplier: ACME Supplies Ltd

Description          Qty   Unit price   Total
Blue widgets         2     $100.00      $200.00
Red widgets          3     $344.83      $1,034.50

Subtotal: $1,234.50
Total: $1,234.50
"""

NEXT_LINE_LAYOUT = """\
INVOICE

Invoice No.
INV-2024-001
Invoice Date
March 12, 2024
Vendor
ACME Supplies Ltd
Customer
Globex Corporation
Amount Due
USD 1,234.50
"""

TABLE_LAYOUT = (
    "ACME Supplies Ltd\n"
    "Invoice #\tDate\tSupplier\tClient\tGrand Total\n"
    "INV-2024-001\t2024-03-12\tACME Supplies Ltd\tGlobex Corporation\t$1,234.50\n"
    "Thank you for your business.\n"
)

GAP_LAYOUT = """\
ACME Supplies Ltd                         INVOICE
Invoice No. INV-2024-001
Date 12 March 2024
Sold to       Globex Corporation
Seller        ACME Supplies Ltd
Total due     $1,234.50
"""


@pytest.mark.parametrize(
    "text",
    [COLON_LAYOUT, NEXT_LINE_LAYOUT, TABLE_LAYOUT, GAP_LAYOUT],
    ids=["colon", "next", "table", "gap"],
)
def test_it_reads_the_same_invoice_in_every_layout(text: str) -> None:
    fields = extract(text, FIELDS)["fields"]

    assert fields["invoice number"]["value"] == NUMBER
    assert fields["date"]["value"] == ISO_DATE
    assert fields["total"]["value"] == TOTAL
    assert fields["total"]["currency"] == "USD"
    assert fields["supplier"]["value"] == "ACME Supplies Ltd"
    assert fields["customer"]["value"] == "Globex Corporation"
    for item in fields.values():
        assert item["verified"] is True
        assert item["page"] == 1
        assert item["quote"] in text


def test_a_label_on_its_own_line_quotes_the_value_line() -> None:
    fields = extract(NEXT_LINE_LAYOUT, FIELDS)["fields"]

    assert fields["invoice number"]["quote"] == "INV-2024-001"
    assert fields["total"]["quote"] == "USD 1,234.50"


def test_the_quote_is_the_whole_source_line_stripped_and_verbatim() -> None:
    text = "   Total due     $1,234.50   \nOther line\n"

    item = extract(text, "total:number")["fields"]["total"]

    assert item["quote"] == "Total due     $1,234.50"


def test_the_document_total_wins_over_a_line_item_total() -> None:
    text = "Description    Qty    Total\nConsulting    1    $500.00\n\nAmount due:  $1,234.50\n"

    assert values(text, "total:number") == {"total": "1234.50"}


def test_it_reads_european_number_formats() -> None:
    text = """\
Rechnung
Rechnungsnummer: RE-2024-0042
Datum: 12.03.2024
Zwischensumme: 1.037,39 €
MwSt 19 %: 197,11 €
Gesamtbetrag: 1.234,50 €
Total (EUR): 1 234,50
"""
    fields = extract(text, "invoice number\ndate:date\ntotal:number\ngesamtbetrag:number")["fields"]

    assert fields["invoice number"]["value"] == "RE-2024-0042"
    assert fields["date"]["value"] == ISO_DATE
    assert fields["total"] == {
        "value": "1234.50",
        "currency": "EUR",
        "quote": "Total (EUR): 1 234,50",
        "page": 1,
        "status": "found",
        "source": "text",
        "verified": True,
        "review": None,
    }
    assert fields["gesamtbetrag"]["value"] == "1234.50"
    assert fields["gesamtbetrag"]["currency"] == "EUR"


def test_it_reads_a_french_invoice_with_accents_and_non_breaking_spaces() -> None:
    text = (
        "FACTURE N° F-2024-118\n"
        "Date : 12/03/2024\n"
        "Date d'échéance : 11/04/2024\n"
        "Client : Dupont SARL\n"
        "Total HT : 1\u00a0000,00 €\n"
        "TVA (20 %) : 200,00 €\n"
        "Total TTC : 1\u00a0200,00 €\n"
    )

    assert values(
        text,
        "invoice number\ndate:date\ndue date:date\ncustomer\nsubtotal:number\n"
        "tax:number\ntotal:number",
    ) == {
        "invoice number": "F-2024-118",
        "date": ISO_DATE,
        "due date": "2024-04-11",
        "customer": "Dupont SARL",
        "subtotal": "1000.00",
        "tax": "200.00",
        "total": "1200.00",
    }


def test_a_value_on_page_two_reports_page_two() -> None:
    text = (
        "ACME Supplies Ltd\nInvoice number: INV-2024-001\nDate: 12/03/2024\n"
        "Item 1  $200.00\n\fContinued from page 1\nItem 2  $1,034.50\n"
        "Total: $1,234.50\n"
    )

    fields = extract(text, "invoice number\ntotal:number")["fields"]

    assert fields["invoice number"]["page"] == 1
    assert fields["total"] == {
        "value": "1234.50",
        "currency": "USD",
        "quote": "Total: $1,234.50",
        "page": 2,
        "status": "found",
        "source": "text",
        "verified": True,
        "review": None,
    }


def test_it_reads_csv_rows_rendered_as_header_value_cells() -> None:
    # How the CSV/XLSX reader renders rows: one line per row, "header: value" cells.
    text = (
        "invoice_id: INV-2024-001 | issue_date: 2024-03-12 | vendor: ACME Supplies Ltd | "
        "amount_due: 1234.50 | currency: EUR | paid: yes\n"
        "invoice_id: INV-2024-002 | issue_date: 2024-04-02 | vendor: Initech | "
        "amount_due: 99.00 | currency: EUR | paid: no\n"
    )

    assert values(text, "invoice number\ndate:date\nsupplier\ntotal:number\npaid:boolean") == {
        "invoice number": NUMBER,
        "date": ISO_DATE,
        "supplier": "ACME Supplies Ltd",
        "total": TOTAL,
        "paid": True,
    }


def test_it_reads_a_header_row_followed_by_pipe_separated_values() -> None:
    text = "Invoice No | Invoice Date | Total Amount\nINV-2024-001 | 12.03.2024 | EUR 1.234,50\n"

    fields = extract(text, "invoice number\ndate:date\ntotal:number")["fields"]

    assert {name: item["value"] for name, item in fields.items()} == {
        "invoice number": NUMBER,
        "date": ISO_DATE,
        "total": TOTAL,
    }
    assert fields["total"]["currency"] == "EUR"
    assert fields["total"]["quote"] == "INV-2024-001 | 12.03.2024 | EUR 1.234,50"


def test_it_splits_several_labels_on_one_single_spaced_line() -> None:
    text = "Invoice No: INV-2024-001 Due Date: 15/04/2024 Date: 12/03/2024\n"

    assert values(text, "invoice number\ndate:date\ndue date:date") == {
        "invoice number": NUMBER,
        "date": ISO_DATE,
        "due date": "2024-04-15",
    }


@pytest.mark.parametrize(
    ("field", "line", "expected"),
    [
        ("invoice number", "Invoice No: INV-7", "INV-7"),
        ("invoice number", "Inv # INV-7", "INV-7"),
        ("invoice number", "Invoice ID: INV-7", "INV-7"),
        ("invoice number", "Bill Number: INV-7", "INV-7"),
        ("invoice_number", "InvoiceNumber: INV-7", "INV-7"),
        ("invoice number", "Credit memo #  INV 07028", "INV 07028"),
        ("invoice number", "Re.-Nr.: RE-2025-3306", "RE-2025-3306"),
        ("invoice number", "Bon R006300  18.3.2025 14:19", "R006300"),
        ("invoice number", "Nº rectificativa: A005815", "A005815"),
        ("invoice number", "Número de abono: FAC-2024-4927", "FAC-2024-4927"),
        ("invoice number", "Creditnotanummer: F007173", "F007173"),
        ("date", "Émise le: 29/04/2025", "29/04/2025"),
        ("date", "Issue date: 12/03/2024", "12/03/2024"),
        ("date", "Dated 12/03/2024", "12/03/2024"),
        ("total", "Amount due: 10.00", "10.00"),
        ("total", "Grand Total: 10.00", "10.00"),
        ("total", "Balance due: 10.00", "10.00"),
        ("total", "Total amount: 10.00", "10.00"),
        ("supplier", "Vendor: ACME", "ACME"),
        ("supplier", "From: ACME", "ACME"),
        ("supplier", "Company: ACME", "ACME"),
        ("vat id", "Tax ID: GB123456789", "GB123456789"),
        ("vat id", "VAT Reg No. GB123456789", "GB123456789"),
        ("vat id", "VAT number: GB123456789", "GB123456789"),
        ("due date", "Payment due: 15/04/2024", "15/04/2024"),
        ("customer", "Bill to: Globex", "Globex"),
        ("customer", "Client: Globex", "Globex"),
        ("customer", "Aan: Globex B.V.", "Globex B.V."),
    ],
)
def test_it_matches_common_synonyms_of_a_label(field: str, line: str, expected: str) -> None:
    text = f"Header line\n{line}\nFooter line\n"

    assert values(text, field) == {field: expected}


def test_a_misspelt_label_still_matches_fuzzily() -> None:
    text = "Invocie numbr: INV-2024-001\n"

    assert values(text, "invoice number") == {"invoice number": NUMBER}


def test_a_label_holding_the_name_and_more_words_is_the_last_resort() -> None:
    text = "Shipping: $5.00\nEstimated tax: $3.60\nTax ID: 12-3456789\n"

    assert values(text, "tax:number") == {"tax": "3.60"}


def test_an_exact_label_wins_over_a_synonym_and_a_synonym_over_a_near_label() -> None:
    text = "Amount due: 50.00\nTotal: 60.00\nSubtotal: 40.00\n"

    assert values(text, "total:number\nsubtotal:number") == {"total": "60.00", "subtotal": "40.00"}


def test_a_longer_label_that_means_something_else_is_not_taken() -> None:
    text = "Customer No. 4711\nDue date: 15/04/2024\nVAT: 20.00\nVAT ID: GB123456789\n"

    assert values(text, "customer\ndate:date\nvat:number\nvat id") == {
        "customer": None,
        "date": None,
        "vat": "20.00",
        "vat id": "GB123456789",
    }


def test_a_typed_field_skips_values_of_the_wrong_shape() -> None:
    text = "Date: see the delivery note\nInvoice date: 12.03.2024\nTotal: see attached\n"

    fields = extract(text, "date:date\ntotal:number")["fields"]

    assert fields["date"]["value"] == ISO_DATE
    assert fields["date"]["quote"] == "Invoice date: 12.03.2024"
    assert fields["total"] == MISSING


@pytest.mark.parametrize(
    "written",
    [
        "2024-03-12",
        "2024/03/12",
        "12/03/2024",
        "12-03-2024",
        "12.03.2024",
        "12.03.24",
        "March 12, 2024",
        "Mar 12, 2024",
        "Mar. 12th, 2024",
        "12 March 2024",
        "12 Mar 2024",
        "12-Mar-2024",
        "12th of March 2024",
        "12. März 2024",
    ],
)
def test_dates_in_each_supported_format_become_iso(written: str) -> None:
    assert values(f"Invoice date: {written}\n", "date:date") == {"date": ISO_DATE}


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("Invoice date: 03/12/2024\nDue date: 04/15/2024\n", "2024-03-12"),
        ("Invoice date: 03/12/2024\nDue date: 15/04/2024\n", "2024-12-03"),
        ("Invoice date: 03/12/2024\n", "2024-12-03"),
        # A document in US dollars reads month-first unless one of its dates says otherwise.
        ("Invoice date: 03/12/2024\nTotal: $120.00\n", "2024-03-12"),
        ("Invoice date: 03/12/2024\nTotal: 120,00 €\n", "2024-12-03"),
        ("Invoice date: 03/12/2024\nDue date: 15/04/2024\nTotal: $120.00\n", "2024-12-03"),
    ],
    ids=["month-first", "day-first", "no-evidence", "dollars", "euros", "dollars-day-first"],
)
def test_ambiguous_slash_dates_follow_the_documents_evidence(text: str, iso: str) -> None:
    assert values(text, "date:date") == {"date": iso}


def test_an_impossible_date_is_not_a_date() -> None:
    assert parse_date("31/02/2024") is None
    assert parse_date("13/13/2024") is None
    assert parse_date("12/03/2024", DateOrder.MONTH_FIRST) == "2024-12-03"


@pytest.mark.parametrize(
    ("written", "value", "currency"),
    [
        ("$1,234.50", "1234.50", "USD"),
        ("1,234.50 USD", "1234.50", "USD"),
        ("US$ 1,234.50", "1234.50", "USD"),
        ("€1.234,50", "1234.50", "EUR"),
        ("1.234,50 EUR", "1234.50", "EUR"),
        ("1 234,50 €", "1234.50", "EUR"),
        ("£1,234.50", "1234.50", "GBP"),
        ("¥123,450", "123450", "JPY"),
        ("CHF 1'234.50", "1234.50", "CHF"),
        ("($1,234.50)", "-1234.50", "USD"),
        ("(1.234,50) EUR", "-1234.50", "EUR"),
        ("-$1,234.50", "-1234.50", "USD"),
        ("1234.50", "1234.50", None),
        ("1,234,567.89", "1234567.89", None),
        ("1.234.567,89", "1234567.89", None),
        ("0,50", "0.50", None),
    ],
)
def test_amounts_become_decimal_strings_with_their_currency(
    written: str, value: str, currency: str | None
) -> None:
    item = extract(f"Total: {written}\n", "total:number")["fields"]["total"]

    assert item["value"] == value
    assert Decimal(item["value"]) == Decimal(value)
    assert item.get("currency") == currency
    assert ("currency" in item) is (currency is not None)


def test_a_currency_in_the_label_applies_to_the_amount() -> None:
    item = extract("Total (EUR): 1.234,50\n", "total:number")["fields"]["total"]

    assert (item["value"], item["currency"]) == ("1234.50", "EUR")


def test_amounts_skip_dates_percentages_and_identifiers() -> None:
    assert parse_amount("INV-2024-001") is None
    assert parse_amount("12/03/2024") is None
    amount = parse_amount("20% VAT on 12/03/2024: 200.00")
    assert amount is not None
    assert amount.value == "200.00"


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("yes", True),
        ("Yes", True),
        ("no", False),
        ("TRUE", True),
        ("false", False),
        ("x", True),
        ("X", True),
        ("checked", True),
        ("unchecked", False),
        ("[x]", True),
        ("[ ]", False),
    ],
)
def test_booleans_are_read_from_common_spellings(written: str, expected: bool) -> None:
    assert values(f"Paid: {written}\n", "paid:boolean") == {"paid": expected}


def test_a_checkbox_before_its_label_is_a_boolean() -> None:
    text = "[x] Paid\n[ ] Disputed\n"

    assert values(text, "paid:boolean\ndisputed:boolean") == {"paid": True, "disputed": False}


def test_a_boolean_field_with_an_unreadable_answer_is_null() -> None:
    assert values("Paid: perhaps\n", "paid:boolean") == {"paid": None}


def test_lists_split_on_commas_and_semicolons() -> None:
    text = "Tags: urgent, office; supplies ,\n"

    assert values(text, "tags:list") == {"tags": ["urgent", "office", "supplies"]}


def test_a_string_field_keeps_the_trimmed_value_as_written() -> None:
    assert values("Reference:   PO 4471 / B  \n", "reference") == {"reference": "PO 4471 / B"}


def test_a_field_not_in_the_document_is_null_and_unverified() -> None:
    fields = extract(COLON_LAYOUT, "purchase order number\niban\ndue date:date")["fields"]

    assert fields == {
        "purchase order number": MISSING,
        "iban": MISSING,
        "due date": MISSING,
    }


def test_fields_are_inferred_from_the_prompt_when_none_are_given() -> None:
    result = extract(GAP_LAYOUT, prompt="Extract the invoice number, date and total.")

    assert list(result["fields"]) == ["invoice number", "date", "total"]
    # Inferred fields take their type from the name, so values come back normalised.
    assert result["fields"]["invoice number"]["value"] == NUMBER
    assert result["fields"]["date"]["value"] == "2024-03-12"
    assert result["fields"]["total"]["value"] == "1234.50"
    assert result["fields"]["total"]["currency"] == "USD"


def test_the_result_has_the_exact_shape() -> None:
    request = ExtractionRequest(
        text="Invoice number: INV-2024-001\nTotal: $1,234.50\n",
        prompt="",
        fields=parse_fields("invoice number\ntotal:number\nnotes"),
        filename="invoice.txt",
        content_type="text/plain",
    )

    outcome = LocalEngine().extract(request)

    assert LocalEngine.name == "local"
    assert outcome.cost_usd == Decimal("0")
    assert outcome.result == {
        "engine": "local",
        "model": None,
        "fields": {
            "invoice number": {
                "value": "INV-2024-001",
                "quote": "Invoice number: INV-2024-001",
                "page": 1,
                "source": "text",
            },
            "total": {
                "value": "1234.50",
                "currency": "USD",
                "quote": "Total: $1,234.50",
                "page": 1,
                "source": "text",
            },
            "notes": {"value": None, "quote": None, "page": None, "source": "text"},
        },
    }
    json.dumps(outcome.result)  # stored in a JSON field as it is


def test_the_same_input_gives_the_same_output() -> None:
    texts = [COLON_LAYOUT, NEXT_LINE_LAYOUT, TABLE_LAYOUT, GAP_LAYOUT]
    first = [extract(text, FIELDS) for text in texts]
    second = [extract(text, FIELDS) for text in texts]

    assert first == second


def test_the_output_does_not_depend_on_the_process_hash_seed() -> None:
    script = (
        "import json, sys\n"
        "from extraction.fields import parse_fields\n"
        "from extraction.contract import ExtractionRequest\n"
        "from extraction.local.engine import LocalEngine\n"
        "from tests.batches.test_local_engine import COLON_LAYOUT, GAP_LAYOUT, FIELDS\n"
        # The engine itself, here: the pipeline runs it in a sandbox child with its own seed.
        "fields = parse_fields(FIELDS)\n"
        "def extract(text):\n"
        "    request = ExtractionRequest(text, '', fields, 'a.txt', 'text/plain')\n"
        "    return LocalEngine().extract(request).result\n"
        "print(json.dumps([extract(t) for t in (COLON_LAYOUT, GAP_LAYOUT)]))\n"
    )
    outputs = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "DJANGO_SETTINGS_MODULE": ""}
        done = subprocess.run(  # noqa: S603 -- our own interpreter on a fixed script
            [sys.executable, "-c", script],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        outputs.add(done.stdout)

    assert len(outputs) == 1


@pytest.mark.parametrize("text", ["", "   \n\f\t  \n"])
def test_a_document_without_text_fails_permanently_with_no_text_layer(text: str) -> None:
    with pytest.raises(ExtractionError) as caught:
        extract(text, "total", filename="scan.pdf")

    assert caught.value.code == "no_text_layer"
    assert caught.value.kind is ErrorKind.PERMANENT
    assert "scan.pdf" in caught.value.message
    assert "no text layer" in caught.value.message


def test_a_400000_character_text_with_10_fields_finds_the_values_past_the_noise() -> None:
    invoice = (
        "Invoice No. INV-2024-001\nDate 12/03/2024\nBill to: Globex Corporation\n"
        "Description    Qty    Total\nWidget    2    $100.00\nTotal due   $1,234.50\n"
    )
    prose = "\n".join(
        f"Section {n}: the parties agree that clause {n} applies to deliveries made under it."
        for n in range(2000)
    )
    text = (prose + "\n" + invoice * 2000)[:400_000]
    fields = (
        "invoice number\ndate:date\ntotal:number\nsupplier\ncustomer\nvat id\n"
        "due date:date\nsubtotal:number\ntax:number\npo number"
    )

    result = extract(text, fields)

    assert len(text) == 400_000
    assert result["fields"]["total"]["value"] == TOTAL
    assert result["fields"]["vat id"] == MISSING


def test_it_reads_a_us_invoice_pdf() -> None:
    data = make_pdf(
        [
            rows(
                "Northwind Traders Inc.",
                "INVOICE",
                ("Invoice No.", "NW-88231"),
                ("Invoice Date", "March 12, 2024"),
                ("Due Date", "April 11, 2024"),
                ("Bill To", "Contoso Ltd."),
                ("Subtotal", "$1,150.00"),
                ("Sales Tax", "$84.50"),
                ("Total Due", "$1,234.50"),
            )
        ]
    )

    result = extract(
        pdf_text(data),
        "invoice number\ndate:date\ndue date:date\ncustomer\nsubtotal:number\ntax:number\n"
        "total:number",
        filename="northwind.pdf",
    )

    assert {name: item["value"] for name, item in result["fields"].items()} == {
        "invoice number": "NW-88231",
        "date": ISO_DATE,
        "due date": "2024-04-11",
        "customer": "Contoso Ltd.",
        "subtotal": "1150.00",
        "tax": "84.50",
        "total": TOTAL,
    }
    assert result["fields"]["total"]["currency"] == "USD"
    assert result["fields"]["total"]["quote"] == "Total Due $1,234.50"


def test_it_reads_a_european_invoice_pdf() -> None:
    data = make_pdf(
        [
            rows(
                "Muster Handel GmbH",
                ("Rechnungsnummer:", "RE-2024-0042"),
                ("Rechnungsdatum:", "12.03.2024"),
                ("USt-IdNr.:", "DE123456789"),
                ("Gesamtbetrag:", "1.234,50 €"),
            )
        ]
    )

    result = extract(
        pdf_text(data), "invoice number\ndate:date\nvat id\ntotal:number", filename="re.pdf"
    )

    assert {name: item["value"] for name, item in result["fields"].items()} == {
        "invoice number": "RE-2024-0042",
        "date": ISO_DATE,
        "vat id": "DE123456789",
        "total": TOTAL,
    }
    assert result["fields"]["total"]["currency"] == "EUR"


def test_it_reads_a_two_page_invoice_pdf_with_the_total_on_page_two() -> None:
    data = make_pdf(
        [
            rows(
                "Globex Services plc",
                ("Invoice number:", "GS/2024/117"),
                ("Date:", "12 Mar 2024"),
                ("VAT Reg No:", "GB 123 4567 89"),
                ("Consulting, February", "£1,000.00"),
            ),
            rows(
                "Page 2 of 2",
                ("Travel expenses", "£234.50"),
                ("Amount payable", "£1,234.50"),
            ),
        ]
    )
    text = pdf_text(data)

    fields = extract(text, "invoice number\ndate:date\nvat id\ntotal:number", filename="gs.pdf")[
        "fields"
    ]

    assert fields["invoice number"]["value"] == "GS/2024/117"
    assert fields["date"]["value"] == ISO_DATE
    assert fields["vat id"]["value"] == "GB 123 4567 89"
    assert fields["total"] == {
        "value": "1234.50",
        "currency": "GBP",
        "quote": "Amount payable £1,234.50",
        "page": 2,
        "status": "found",
        "source": "text",
        "verified": True,
        "review": None,
    }
    assert fields["total"]["quote"] in text.split("\f")[1]


def test_a_field_description_is_used_as_a_label() -> None:
    text = "Customer reference: ABC-77\n"

    assert values(text, "ref -- customer reference") == {"ref": "ABC-77"}


def test_the_design_example_prompt_finds_every_field_with_types_inferred_from_the_names() -> None:
    text = (
        "Invoice number: INV-7\nIssue date: 12 March 2024\n"
        "Supplier VAT ID: DE123456789\nTotal: 101.01 EUR\n"
    )
    request = ExtractionRequest(
        text=text,
        prompt="invoice number, issue date, total with currency, supplier VAT id",
        fields=[],
        filename="a.txt",
        content_type="text/plain",
    )

    fields = LocalEngine().extract(request).result["fields"]

    assert fields["invoice number"]["value"] == "INV-7"
    assert fields["issue date"]["value"] == "2024-03-12"
    assert (fields["total with currency"]["value"], fields["total with currency"]["currency"]) == (
        "101.01",
        "EUR",
    )
    assert fields["supplier VAT id"]["value"] == "DE123456789"


def test_a_title_over_a_page_number_is_not_an_invoice_number() -> None:
    assert values("INVOICE\nPage 1 of 2\nTotal 10.00\n", "invoice number") == {
        "invoice number": None
    }


def test_a_currency_printed_in_its_own_column_belongs_to_the_totals_row() -> None:
    text = "Total    3    278.61    40.39    319.00    EUR\n"

    item = extract(text, "total:number")["fields"]["total"]

    assert (item["value"], item["currency"]) == ("319.00", "EUR")


def test_a_line_of_separators_under_a_label_is_no_value_and_no_crash() -> None:
    assert values("Invoice No\n|\nTotal: 10.00\n", "invoice number\ntotal:number") == {
        "invoice number": None,
        "total": "10.00",
    }
