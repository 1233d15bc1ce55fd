"""The offline engine on till receipts, whose number, date and time share one line
("Beleg-Nr. RE-2025-0123 08.08.2025 08:40"), and on identifiers a sentence mentions."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from extraction.local.engine import LocalEngine
from samples.invoices import LANGUAGES, Layout, invoice
from tests.batches.test_local_engine import values
from tests.support.placed_pdfs import layout_request, make_pdf


@pytest.mark.parametrize("boxes", [True, False], ids=["word boxes", "text only"])
@pytest.mark.parametrize("language", list(LANGUAGES))
def test_a_receipts_number_stops_where_its_date_begins(language: str, boxes: bool) -> None:
    generated = invoice(31, language=language, layout=Layout.RECEIPT)
    request = layout_request(generated.pdf, "invoice number\ndate:date")
    if not boxes:
        request = replace(request, layout=())

    fields: dict[str, Any] = LocalEngine().extract(request).result["fields"]

    assert fields["invoice number"]["value"] == generated.labels.invoice_number
    assert fields["date"]["value"] == generated.labels.date


@pytest.mark.parametrize(
    ("line", "number", "date"),
    [
        ("Receipt no. SI-00011 30 July 2025 15:23", "SI-00011", "2025-07-30"),
        ("Bonnr. INV20225207 25/08/2022 08:41", "INV20225207", "2022-08-25"),
        ("N° ticket FA-003233 25 avril 2025 15:59", "FA-003233", "2025-04-25"),
        ("Scontrino n. 7759/2025 16-10-2025 15:48", "7759/2025", "2025-10-16"),
        ("Nº ticket F2610 16/11/2024 12:31", "F2610", "2024-11-16"),
        ("Receipt no. INV02046January 8, 2023 16:09", "INV02046", "2023-01-08"),
    ],
)
def test_a_receipt_line_gives_its_number_without_the_date(
    line: str, number: str, date: str
) -> None:
    text = f"Corner Shop Ltd\n1 High Street\n{line}\nCoffee 1 x 2.50 2.50\nTotal 2.50\n"

    found = values(text, "invoice number\ndate:date")

    assert found["invoice number"] == number
    assert found["date"] == date


def test_an_identifier_in_a_sentence_is_not_the_invoice_number() -> None:
    text = "ACME Ltd\nCredit note for invoice INV07779\nTotal -12.00\n"

    assert values(text, "invoice number")["invoice number"] is None


def test_a_number_glued_to_a_month_missing_its_first_letter_stops_at_the_month() -> None:
    # OCR lost the "J" of "January" and the gap before it.
    text = "Corner Shop Ltd\nReceipt no. INV02046anuary 8, 2023 16:09\nTotal 2.50\n"

    assert values(text, "invoice number") == {"invoice number": "INV02046"}


def test_a_bar_read_from_a_table_rule_is_not_part_of_the_number_under_its_label() -> None:
    page = [
        (72, 740, "Factuurnummer"),
        (220, 740, "Datum"),
        (72, 724, "|F004640"),
        (220, 724, "15/07/2022 |"),
    ]
    request = layout_request(make_pdf([page]), "invoice number\ndate:date")

    fields = LocalEngine().extract(request).result["fields"]

    assert fields["invoice number"]["value"] == "F004640"
    assert fields["date"]["value"] == "2022-07-15"


def test_a_number_run_into_the_date_and_time_after_it_stops_where_the_date_begins() -> None:
    text = (
        "Naccari & Montalti S.p.A.\nP.IVA IT30907800327\nRicevuta\n"
        "Scontrino n. FT 8939/202405/09/2024 08:54\nTotale EUR 12,50\n"
    )

    assert values(text, "invoice number\ndate:date") == {
        "invoice number": "FT 8939/2024",
        "date": "2024-09-05",
    }


def test_a_receipts_date_is_read_when_ocr_split_its_time() -> None:
    text = "Parker PLC\nRECEIPT\nTrans # SI-00011  30 July 2025 15: 23\nAMOUNT DUE  GBP 26.50\n"

    assert values(text, "date:date") == {"date": "2025-07-30"}


def test_a_symbol_read_in_place_of_a_per_cent_sign_is_no_currency() -> None:
    text = "Bloch Technik GmbH\nKASSENBON\nRückgeld  9,15\nUmsatzsteuer 7 $  5,29\n"

    assert values(text, "currency") == {"currency": None}
