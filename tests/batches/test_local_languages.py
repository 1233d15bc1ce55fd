"""The offline engine on invoices in English, German, French, Dutch, Spanish and Italian: generated
ones in every layout, with and without word boxes, and small hand-written ones."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from extraction.local.engine import LocalEngine
from samples.invoices import CLASSIC_LAYOUTS, LANGUAGES, Layout, invoice
from tests.batches.test_local_engine import settled, values
from tests.support.placed_pdfs import layout_request, make_pdf

FIELDS = (
    "invoice number\ndate:date\ndue date:date\ncustomer\nsupplier\nsubtotal:number\n"
    "tax:number\ntotal:number\ncurrency"
)


@pytest.mark.parametrize("boxes", [True, False], ids=["word boxes", "text only"])
# The dev set's harder layouts are measured by the quality benchmark, not pinned here.
@pytest.mark.parametrize("layout", CLASSIC_LAYOUTS)
@pytest.mark.parametrize("language", list(LANGUAGES))
def test_a_generated_invoice_gives_every_labelled_value(
    language: str, layout: Layout, boxes: bool
) -> None:
    generated = invoice(23, language=language, layout=layout)
    labels = generated.labels
    request = layout_request(generated.pdf, FIELDS)
    if not boxes:
        request = replace(request, layout=())

    fields: dict[str, Any] = settled(request)["fields"]

    assert {name: cell["value"] for name, cell in fields.items()} == {
        "invoice number": labels.invoice_number,
        "date": labels.date,
        "due date": labels.due_date,
        "customer": labels.customer,
        "supplier": labels.supplier,
        "subtotal": str(labels.subtotal),
        "tax": str(labels.tax),
        "total": str(labels.total),
        "currency": labels.currency,
    }
    assert Decimal(fields["total"]["value"]) == labels.total
    for name in ("subtotal", "tax", "total"):
        assert fields[name]["currency"] == labels.currency
    assert all(cell["verified"] and cell["page"] == 1 for cell in fields.values())


DUTCH = """\
Bakkerij De Vries B.V.
Kerkstraat 12
1017 GC Amsterdam
KvK: 12345678
BTW-nummer: NL123456789B01
FACTUUR
Factuurnummer: 2024-0042
Factuurdatum: 12 maart 2024
Vervaldatum: 11 april 2024
Klant: Jansen & Zonen
Omschrijving Aantal Prijs Bedrag
Broden 10 € 2,50 € 25,00
Subtotaal € 25,00
BTW 9% € 2,25
Totaal € 27,25
"""

SPANISH = """\
Distribuciones García S.L.
CIF: B12345678
Calle Mayor 10, 28013 Madrid
FACTURA
Nº Factura: F-2024/118
Fecha: 12 de marzo de 2024
Fecha de vencimiento: 11 de abril de 2024
Cliente: Hotel Sol y Mar S.A.
Concepto Cantidad Precio Importe
Aceite de oliva 10 100,00 1.000,00
Base imponible 1.000,00 €
IVA (21%) 210,00 €
Total factura 1.210,00 €
"""

ITALIAN = """\
Rossi Forniture S.r.l.
Via Roma 1, 20121 Milano
P.IVA 01234567890
FATTURA N. 118/2024
Data: 12/03/2024
Scadenza: 11/04/2024
Spett.le
Bianchi S.p.A.
Via Garibaldi 5
10121 Torino
Descrizione Quantità Prezzo Importo
Carta A4 10 100,00 1.000,00
Imponibile 1.000,00
IVA 22% 220,00
Totale documento € 1.220,00
"""

GERMAN = """\
Muster Handel GmbH · Hauptstraße 5 · 10115 Berlin
Grünwald Logistik GmbH
Herrn Max Mustermann
Industriestraße 12
50667 Köln
Rechnung
Rechnungsnummer: RE-2024-0815
Rechnungsdatum: 12. März 2024
Kundennummer: 10023
Leistungszeitraum: 01.02.2024 - 29.02.2024
Pos. Bezeichnung Menge Einzelpreis Gesamt
1 Beratung 10 120,00 € 1.200,00 €
2 Reisekosten 1 150,00 € 150,00 €
Nettobetrag 1.350,00 €
zzgl. 19 % USt. 256,50 €
Rechnungsbetrag 1.606,50 €
Zahlbar bis 26.03.2024 ohne Abzug.
Muster Handel GmbH | Amtsgericht Berlin HRB 12345 | USt-IdNr.: DE123456789
IBAN: DE89 3704 0044 0532 0130 00 | BIC: COBADEFFXXX
"""

FRENCH = """\
Café Noël SARL
8 rue de la Paix, 75002 Paris
SIRET 123 456 789 00012 - TVA FR12345678901
Facture N° F2024-118
Date de facture : 12 mars 2024
Date d'échéance : 11 avril 2024
Facturé à :
Dupont SAS
12 avenue Victor Hugo
69002 Lyon
Désignation Qté Prix unitaire Montant
Café en grains 100 10,00 1 000,00
Total HT 1 000,00 €
TVA 20 % 200,00 €
Total TTC 1 200,00 €
Net à payer 1 200,00 €
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            DUTCH,
            {
                "invoice number": "2024-0042",
                "date": "2024-03-12",
                "due date": "2024-04-11",
                "customer": "Jansen & Zonen",
                "supplier": "Bakkerij De Vries B.V.",
                "subtotal": "25.00",
                "tax": "2.25",
                "total": "27.25",
                "currency": "EUR",
                "vat id": "NL123456789B01",
            },
        ),
        (
            SPANISH,
            {
                "invoice number": "F-2024/118",
                "date": "2024-03-12",
                "due date": "2024-04-11",
                "customer": "Hotel Sol y Mar S.A.",
                "supplier": "Distribuciones García S.L.",
                "subtotal": "1000.00",
                "tax": "210.00",
                "total": "1210.00",
                "currency": "EUR",
                "vat id": "B12345678",
            },
        ),
        (
            ITALIAN,
            {
                "invoice number": "118/2024",
                "date": "2024-03-12",
                "due date": "2024-04-11",
                "customer": "Bianchi S.p.A.",
                "supplier": "Rossi Forniture S.r.l.",
                "subtotal": "1000.00",
                "tax": "220.00",
                "total": "1220.00",
                "currency": "EUR",
                "vat id": "01234567890",
            },
        ),
        (
            GERMAN,
            {
                "invoice number": "RE-2024-0815",
                "date": "2024-03-12",
                "due date": "2024-03-26",
                "customer": None,  # the address window has no label
                "supplier": "Muster Handel GmbH",
                "subtotal": "1350.00",
                "tax": "256.50",
                "total": "1606.50",
                "currency": "EUR",
                "vat id": "DE123456789",
            },
        ),
        (
            FRENCH,
            {
                "invoice number": "F2024-118",
                "date": "2024-03-12",
                "due date": "2024-04-11",
                "customer": "Dupont SAS",
                "supplier": "Café Noël SARL",
                "subtotal": "1000.00",
                "tax": "200.00",
                "total": "1200.00",
                "currency": "EUR",
                "vat id": "FR12345678901",
            },
        ),
    ],
    ids=["nl", "es", "it", "de", "fr"],
)
def test_a_hand_written_invoice_in_each_language(text: str, expected: dict[str, Any]) -> None:
    fields = FIELDS + "\nvat id"

    assert values(text, fields) == expected


@pytest.mark.parametrize(
    ("line", "due"),
    [
        ("Zahlbar innerhalb von 14 Tagen ohne Abzug bis zum 28.03.2024.", "2024-03-28"),
        ("Please pay by 28 March 2024.", "2024-03-28"),
        ("À régler avant le 28/03/2024.", "2024-03-28"),
        ("Gelieve te betalen voor 28 maart 2024.", "2024-03-28"),
        ("Fecha de vencimiento 28/03/2024", "2024-03-28"),
        ("Pagamento entro il 28/03/2024", "2024-03-28"),
    ],
)
def test_a_due_date_written_in_a_sentence_is_read(line: str, due: str) -> None:
    text = f"Invoice 2024-117\nDate: 14.03.2024\nTotal 4.569,60 €\n{line}\n"

    assert values(text, "due date:date") == {"due date": due}


def test_a_sentence_with_two_dates_gives_no_due_date() -> None:
    text = "Invoice 2024-117\nDelivered 10.03.2024, payable within 14 days of 14.03.2024\n"

    assert values(text, "due date:date") == {"due date": None}


def test_a_hyphenated_label_in_a_footer_is_read() -> None:
    text = "Rechnung 17\nGesamtbetrag 10,00 €\nUSt-IdNr. DE298765432 · Steuer-Nr. 143/123/45678\n"

    assert values(text, "vat id") == {"vat id": "DE298765432"}


GERMAN_RECEIPT = """\
REWE Markt GmbH
Domstr. 20
50668 Köln
UID Nr.: DE812706034
BANANE 1,29 B
MILCH 1,19 B
SUMME EUR 2,48
Geg. BAR EUR 5,00
Rückgeld BAR EUR 2,52
Datum: 12.03.2024 Uhrzeit: 14:33:12
"""

BRITISH_RECEIPT = """\
TESCO
Express
Store 2341
MILK 1.20
BREAD 0.95
TOTAL 2.15
CARD 2.15
12/03/24 14:22
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            GERMAN_RECEIPT,
            {
                "supplier": "REWE Markt GmbH",
                "date": "2024-03-12",
                "total": "2.48",
                "currency": "EUR",
            },
        ),
        # No currency is written anywhere: none is invented.
        (
            BRITISH_RECEIPT,
            {"supplier": "TESCO", "date": "2024-03-12", "total": "2.15", "currency": None},
        ),
    ],
    ids=["de", "en"],
)
def test_a_receipt(text: str, expected: dict[str, Any]) -> None:
    assert values(text, "supplier\ndate:date\ntotal:number\ncurrency") == expected


def test_an_unlabelled_date_on_the_first_page_is_the_documents_date() -> None:
    text = "Muster Handel GmbH\nBerlin, 12. März 2024\nRechnung Nr. 4711\nGesamtbetrag 10,00 €\n"

    assert values(text, "date:date") == {"date": "2024-03-12"}


def test_a_date_labelled_as_another_date_is_not_the_documents_date() -> None:
    text = "Rechnung Nr. 4711\nLieferdatum: 10.03.2024\nZahlbar bis 24.03.2024\n"

    assert values(text, "date:date\ndelivery date:date") == {
        "date": None,
        "delivery date": "2024-03-10",
    }


def test_a_title_over_a_date_is_not_an_invoice_number() -> None:
    assert values("INVOICE\n12 March 2024\nTotal 10.00\n", "invoice number") == {
        "invoice number": None
    }


@pytest.mark.parametrize("label", ["Totals", "Totaux", "Totales", "Totali", "Totalen", "Summen"])
def test_a_totals_row_in_each_language_gives_its_last_amount(label: str) -> None:
    text = (
        "Description  Qty  Net  VAT  Gross\n"
        "Office chair  2  100,00  20,00  120,00\n"
        "Desk lamp  1  50,00  10,00  60,00\n"
        f"{label}  3  150,00  30,00  180,00\n"
    )

    assert values(text, "total:number") == {"total": "180.00"}


def test_a_column_of_a_table_of_goods_is_never_the_documents_total() -> None:
    # The totals row was lost (a torn scan): each line's "Montant TTC" is no total.
    columns = (72, 230, 270, 330, 410, 470)
    rows = [
        ("Libellé", "Qté", "PU", "Montant HT", "TVA", "Montant TTC"),
        ("Chaise de bureau", "5", "63,48", "317,40", "31,74", "349,14"),
        ("Lampe de bureau", "2", "773,49", "1 546,98", "154,70", "1 701,68"),
        ("Câble réseau", "3", "12,00", "36,00", "3,60", "39,60"),
    ]
    page = [(72, 740, "FACTURE"), (72, 720, "Facture N°: F2023-9803")]
    page += [
        (x, 690 - 16 * number, text)
        for number, row in enumerate(rows)
        for x, text in zip(columns, row, strict=True)
    ]

    found = LocalEngine().extract(layout_request(make_pdf([page]), "total:number")).result

    assert found["fields"]["total"]["value"] is None


def test_an_italian_invoice_in_us_dollars_writes_the_day_first() -> None:
    text = "FATTURA\nN. fattura: 4232/2022\nData fattura: 02/07/2022\nTotale: USD 4.446,79\n"

    assert values(text, "date:date") == {"date": "2022-07-02"}


def test_an_english_invoice_in_us_dollars_writes_the_month_first() -> None:
    text = "INVOICE\nInvoice No: 4232\nDate: 02/07/2022\nTotal: $4,446.79\n"

    assert values(text, "date:date") == {"date": "2022-02-07"}


def test_a_credit_notes_totals_row_whose_last_amount_lost_its_minus_gives_no_total() -> None:
    text = (
        "CREDITNOTA\nOmschrijving  Aantal  Netto  Btw  Bruto\n"
        "Bureaulamp  2  -33,55  -7,05  -40,60\n"
        "Totaal  32  -144,20  -30,28  174,48\n"
    )

    assert values(text, "total:number") == {"total": None}
