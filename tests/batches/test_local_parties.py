"""The offline engine's supplier, customer and currency: the issuing party, never the buyer nor a
sentence; the currency as an ISO code of its own."""

from __future__ import annotations

import pytest

from extraction.local.engine import LocalEngine
from tests.batches.test_local_engine import MISSING, extract, settled, values
from tests.support.placed_pdfs import layout_request, make_pdf

US_INVOICE = """\
Northwind Traders, Inc.
400 Pine Street
Seattle, WA 98101
INVOICE
Invoice #: 10042
Bill To:
Contoso Ltd.
1 Microsoft Way
Redmond, WA 98052
Total $1,244.88
"""

# DIN 5008: a sender line over the recipient's unlabelled address, the issuer again in the footer.
GERMAN_LETTER = """\
Muster Handel GmbH · Hauptstraße 5 · 10115 Berlin
Grünwald Logistik GmbH
Industriestraße 12
50667 Köln
Rechnung
Rechnungsnummer: RE-2024-0815
Rechnungsbetrag 1.606,50 €
Muster Handel GmbH | Amtsgericht Berlin HRB 12345 | USt-IdNr.: DE123456789
IBAN: DE89 3704 0044 0532 0130 00 | Deutsche Bank AG
"""


def test_the_supplier_is_the_letterhead_and_never_the_billed_customer() -> None:
    assert values(US_INVOICE, "supplier\ncustomer") == {
        "supplier": "Northwind Traders, Inc.",
        "customer": "Contoso Ltd.",
    }


def test_the_supplier_is_the_sender_line_not_the_unlabelled_recipient() -> None:
    item = extract(GERMAN_LETTER, "Lieferant")["fields"]["Lieferant"]

    assert item["value"] == "Muster Handel GmbH"
    assert item["quote"] == "Muster Handel GmbH · Hauptstraße 5 · 10115 Berlin"
    assert item["verified"] is True


def test_the_name_beside_the_vat_number_is_the_supplier_when_the_letterhead_is_a_picture() -> None:
    # The logo carried the name; the text starts with the recipient's address.
    text = (
        "Grünwald Logistik GmbH\nIndustriestraße 12\n50667 Köln\nRechnung Nr. 4711\n"
        "Gesamtbetrag 1.606,50 €\n"
        "Schön & Söhne AG\nAmtsgericht Hamburg HRB 98765\nUSt-IdNr. DE987654321\n"
    )

    assert values(text, "supplier") == {"supplier": "Schön & Söhne AG"}


@pytest.mark.parametrize(
    ("label", "language"),
    [
        ("Supplier", "en"),
        ("Lieferant", "de"),
        ("Fournisseur", "fr"),
        ("Leverancier", "nl"),
        ("Proveedor", "es"),
        ("Fornitore", "it"),
        ("Vendeur", "fr"),
        ("Seller", "en"),
    ],
)
def test_a_supplier_label_in_any_language_is_read(label: str, language: str) -> None:
    text = f"Rechnung / invoice\nKunde: Globex SA\n{label}: Initech S.r.l.\nTotal 10,00 EUR\n"

    assert values(text, "supplier") == {"supplier": "Initech S.r.l."}


@pytest.mark.parametrize(
    "buyer_label",
    ["Bill to", "Rechnungsempfänger", "Client", "Klant", "Cliente", "Facturé à", "Spett.le"],
)
def test_a_name_under_a_buyer_label_is_never_the_supplier(buyer_label: str) -> None:
    text = f"INVOICE\n{buyer_label}:\nGlobex Holding B.V.\nKeizersgracht 1\nTotal: 10.00\n"

    assert values(text, "supplier\ncustomer") == {
        "supplier": None,
        "customer": "Globex Holding B.V.",
    }


def test_a_sentence_is_never_a_supplier() -> None:
    text = (
        "Company: encapsulated their company data in the image below:\n"
        "Supplier: see the attached delivery note for details\n"
        "Invoice number: 7781\nTotal: 45.00 EUR\n"
    )

    assert extract(text, "supplier")["fields"]["supplier"] == MISSING


@pytest.mark.parametrize(
    "name",
    [
        "ACME Supplies Ltd",
        "Bakkerij De Vries B.V.",
        "Distribuciones García S.L.",
        "Rossi Forniture S.r.l.",
        "Café Noël SARL",
        "Muster Handel GmbH & Co. KG",
        "Hooli Europe plc",
    ],
)
def test_a_name_with_a_legal_form_at_the_top_is_the_supplier(name: str) -> None:
    text = f"{name}\nInvoice 2024-17\nAmount due 12.00\n"

    item = extract(text, "vendor")["fields"]["vendor"]

    assert (item["value"], item["quote"], item["page"]) == (name, name, 1)


def test_a_bank_in_the_payment_details_is_not_the_supplier() -> None:
    text = (
        "INVOICE 2024-17\nAmount due 12.00\nPay to: IBAN GB33BUKB20201555555555\n"
        "Barclays Bank PLC\n"
    )

    assert values(text, "supplier") == {"supplier": None}


def test_the_letterhead_in_a_larger_font_is_the_supplier_with_word_boxes() -> None:
    page = [
        (400, 740, "Brûlerie Dupré", 18),
        (400, 720, "3 place du Marché, Bordeaux"),
        (72, 660, "Hôtel Bellevue"),
        (72, 646, "12 quai des Chartrons"),
        (72, 600, "Facture n° F-118"),
        (72, 560, "Total TTC"),
        (400, 560, "1 200,00 €"),
    ]

    request = layout_request(make_pdf([page]), "fournisseur\ntotal:number\ndevise")
    fields = settled(request)["fields"]

    assert {name: cell["value"] for name, cell in fields.items()} == {
        "fournisseur": "Brûlerie Dupré",
        "total": "1200.00",
        "devise": "EUR",
    }


@pytest.mark.parametrize(
    ("text", "currency", "quote"),
    [
        ("Invoice 17\nTotal: 4.11 USD\n", "USD", "Total: 4.11 USD"),
        ("Rechnung 17\nGesamtbetrag: 1.234,50 €\n", "EUR", "Gesamtbetrag: 1.234,50 €"),
        ("Currency: CHF\nTotal: 1'234.50\n", "CHF", "Currency: CHF"),
        ("Währung: Euro\nSumme 12,00\n", "EUR", "Währung: Euro"),
        ("Invoice 17\nTotal: 100.00\nAll prices in GBP\n", "GBP", "All prices in GBP"),
        ("Amount (CAD)\n$5.00\n$7.50\nTotal due 12.50\n", "CAD", "Amount (CAD)"),
    ],
)
def test_the_currency_is_an_iso_code_from_a_label_the_total_or_the_document(
    text: str, currency: str, quote: str
) -> None:
    item = extract(text, "currency")["fields"]["currency"]

    assert (item["value"], item["quote"], item["verified"]) == (currency, quote, True)


def test_a_number_field_keeps_the_currency_beside_its_value_never_inside() -> None:
    fields = extract("Invoice 17\nTotal: 4.11 USD\n", "total:number\ncurrency")["fields"]

    assert fields["total"]["value"] == "4.11"
    assert fields["total"]["currency"] == "USD"
    assert fields["currency"]["value"] == "USD"


def test_an_amount_without_a_symbol_takes_the_only_currency_of_the_document() -> None:
    text = "Subtotal 1.000,00 €\nTVA 200,00 €\nNet à payer 1 200,00\n"

    item = extract(text, "total:number")["fields"]["total"]

    assert (item["value"], item["currency"]) == ("1200.00", "EUR")


def test_a_document_without_any_currency_leaves_the_currency_null() -> None:
    assert extract("Invoice 17\nTotal: 100.00\n", "currency")["fields"]["currency"] == MISSING


@pytest.mark.parametrize(
    "text",
    [
        "The Crazy Ones\nHere's to the crazy ones. The misfits. The rebels.\n",
        "Foo\nSome text about foo.\n\fFoo\nMore text.\n",
        "I N V O I C E\nNo. 17\nTotal 10.00\n",
        "Really?\nA page of a report\n",
    ],
    ids=["heading", "running-header", "letter-spaced-title", "question"],
)
def test_a_heading_of_a_document_that_bills_nothing_is_no_supplier(text: str) -> None:
    assert values(text, "supplier") == {"supplier": None}


@pytest.mark.parametrize(
    "name",
    [
        "Fletcher, White and Watts",
        "Prodi-Lombardi s.r.l.",
        "Cheda-Morricone e figli",
        "SDU uitgevers",
        "Reyes & Asociados S.Com.",
        "Gumprich e.G.",
    ],
)
def test_a_labelled_customer_keeps_its_whole_name(name: str) -> None:
    text = f"INVOICE 2024-17\nCustomer: {name}\nTotal: 10.00 EUR\n"

    assert values(text, "customer") == {"customer": name}


def test_a_labelled_name_stops_where_its_address_starts() -> None:
    text = "INVOICE 2024-17\nBill to: Contoso Ltd, 1 Microsoft Way, Redmond\nTotal: 10.00\n"

    assert values(text, "customer") == {"customer": "Contoso Ltd"}


def test_the_issuer_in_a_footer_run_together_with_its_vat_number_and_bank() -> None:
    # A text reader joins the footer's three columns into one line.
    text = (
        "Schwital Group\nDaniela-Kaul-Ring 6\n"
        "Schwital Group · Daniela-Kaul-Ring 6 · Zschopau\n"
        "Lorch Wende Stiftung & Co. KGaA\nSybille-Schmidtke-Gasse 92\n65898 Dinslaken\n"
        "Rechnungsnr. 2020-6004\nRechnungsbetrag 9.371,96 EUR\n"
        "Schwital Group USt-IdNr. DE452228815 IBAN DE89370400440532013000\n"
    )

    assert values(text, "supplier\nvat id") == {
        "supplier": "Schwital Group",
        "vat id": "DE452228815",
    }


def test_the_town_under_the_street_is_not_the_supplier() -> None:
    # The town stands nearer the VAT number than the name does.
    text = (
        "Matthews Supplies\n177 Ball Locks\nAmbertown\nNW7X 2AY\n"
        "VAT number: GB474 8440 21 280\nINVOICE\nInvoice number: INV002737\n"
        "Total: £2,607.75\n"
    )

    assert values(text, "supplier") == {"supplier": "Matthews Supplies"}


@pytest.mark.parametrize(
    "name",
    [
        "Bender Bau UG (haftungsbeschränkt)",
        "Guariento e figli",
        "Marangoni, Scarpa e Emanuelli e figli",
        "Dupont et fils",
        "die Pelser Logistiek B.V.",
        "ter Horst & Zonen B.V.",
    ],
)
def test_a_name_with_lower_case_words_of_its_legal_form_or_family_is_whole(name: str) -> None:
    text = (
        f"{name}\nViale Ivo, 77 Piano 3\n35041 Flagogna\nP. IVA: IT73695681202\n"
        "FATTURA\nN. fattura: 4232/2022\nTotale: 4.446,79 €\n"
    )

    assert values(text, "supplier") == {"supplier": name}


def test_a_street_without_its_number_is_not_the_supplier() -> None:
    text = (
        "FATTURA\nBorgo Bruscantini, 5\n35041 Flagogna\nP. IVA: IT73695681202\n"
        "N. fattura: 4232/2022\nTotale: 4.446,79 €\n"
    )

    assert values(text, "supplier") == {"supplier": None}


def test_a_banks_own_letterhead_is_the_supplier() -> None:
    text = (
        "Banco Ortega S.Coop.\nAvenida de Eufemia Molins 85\n14626 Cantabria\n"
        "NIF-IVA ES17987694U\nFactura: 2023/00106\nTotal: 3.640,82 €\n"
        "Banco Ortega S.Coop. · Avenida de Eufemia Molins 85, 14626 Cantabria\n"
    )

    assert values(text, "supplier") == {"supplier": "Banco Ortega S.Coop."}


def test_a_rate_of_tax_is_no_register_entry_to_stand_beside() -> None:
    # "Cash" and "Change" stand just above "VAT 20%", which names no VAT number.
    text = (
        "SALES RECEIPT\nReceipt no. 4471\nCoffee 1 x 2.50  2.50\nTotal  12.00\nCash  20.00\n"
        "Change  8.00\nVAT 20%  2.00\n"
    )

    assert values(text, "supplier") == {"supplier": None}


def test_columns_headed_supplier_and_buyer_give_the_supplier_under_its_label() -> None:
    page = [
        (72, 740, "LEVERANCIER"),
        (320, 740, "AAN"),
        (72, 722, "Fredriks & Ansems V.O.F."),
        (320, 722, "van den Nyeuwenhuysen & Molegraaf"),
        (72, 704, "Ceylinlaan 18"),
        (320, 704, "Danilaan 21"),
        (72, 670, "Factuurnummer: 01200"),
        (72, 652, "Totaal: € 7045,27"),
    ]
    request = layout_request(make_pdf([page]), "supplier\ncustomer")

    found = LocalEngine().extract(request).result["fields"]

    assert found["supplier"]["value"] == "Fredriks & Ansems V.O.F."
    assert found["customer"]["value"] == "van den Nyeuwenhuysen & Molegraaf"


def test_a_legal_form_set_apart_from_its_name_stays_with_it() -> None:
    text = "de Groot Advies\tN.V.\nRubenpad 417\nBtw-id NL376752110B30\nBonnr. 7\nTotaal 2,00\n"

    assert values(text, "supplier") == {"supplier": "de Groot Advies N.V."}


def test_a_buyer_heading_in_ocr_mixed_case_is_not_the_supplier() -> None:
    text = (
        "Invoice\nSELLER  BiLL TO\nHenderson Trading Ltd.  Brady Trading Limited\n"
        "Invoice No.: 2023/1980\nTotal: £257.14\n"
    )

    assert values(text, "supplier") == {"supplier": "Henderson Trading Ltd."}


def test_an_issuer_written_spa_in_capitals_wins_over_the_recipients_srl() -> None:
    # The issuer's VAT number is in its footer only, whose middle dots OCR read as full stops.
    text = (
        "Contarini SPA\nVia Bruno, 6 Appartamento 5\n60026 Villafalletto\n"
        "Gremese & Gadda S.r.l.  N. fattura  3744/2022\nRotonda Gaggini, 847\n"
        "P. IVA IT61775650908\nTotale fattura  188,53 €\n"
        "Contarini SPA . Via Bruno, 6 Appartamento 5, 60026 Villafalletto . P. IVA IT45664258881\n"
    )

    assert values(text, "supplier") == {"supplier": "Contarini SPA"}
