"""How invoices are written in each language and country of the development set.

A `Locale` holds what varies from one country to the next: the words of an invoice (every concept
with the synonyms real invoices use, the commonest first), month names, date patterns, number
separators, how negative amounts and currencies are shown, tax rates, the legal forms of company
names, and the goods sold. `samples.writing.Style` picks one way of writing from these for each
document, so two invoices from the same country need not use the same words or formats.

Every string here, and everything Faker draws for these locales, must be in Windows-1252: the PDFs
use the core fonts (see `samples.invoices`).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Final


@dataclass(frozen=True)
class Locale:
    code: str  # "de-DE": the language-COUNTRY tag labels.json reports
    faker: str  # Faker's locale for names and addresses ("de_DE")
    page_format: str  # "A4" or "Letter"
    words: MappingProxyType[str, tuple[str, ...]]  # concept -> synonyms, commonest first
    months: tuple[str, ...]
    months_short: tuple[str, ...]
    # str.format patterns with d, dd, m, mm, yyyy, month, mon; the first is the commonest
    date_formats: tuple[str, ...]
    separators: tuple[tuple[str, str], ...]  # (thousands, decimal) pairs, commonest first
    negatives: tuple[str, ...]  # "-{}", "({})" or "{}-": how a negative amount is written
    symbol_first: bool  # "$1,234.50" rather than "1.234,50 €"
    currency: str  # the home currency (ISO 4217)
    rates: tuple[Decimal, ...]  # tax rates in percent
    legal_forms: tuple[str, ...]  # suffixes of company names
    trades: tuple[str, ...]  # words that make a company name out of a family name
    goods: tuple[str, ...]
    numbering: tuple[str, ...]  # invoice number patterns with `year` and `serial`
    address_style: str  # "us", "gb" or "eu": the order of postcode and city


def _words(**concepts: tuple[str, ...]) -> MappingProxyType[str, tuple[str, ...]]:
    missing = CONCEPTS - concepts.keys()
    assert not missing, f"words missing: {sorted(missing)}"
    return MappingProxyType(concepts)


# What every locale must say. {rate}, {page}, {pages}, {currency} and {number} are filled in.
CONCEPTS: Final = frozenset(
    {
        *("title", "credit_title", "number", "credit_number", "date", "due", "supplier"),
        *("customer", "vat_id", "description", "quantity", "unit_price", "amount", "gross"),
        *("tax_column", "net", "tax", "total", "total_row", "page", "carried", "brought"),
        *("currency_note", "reference", "receipt_title", "receipt_number", "paid", "change"),
        "thanks",
    }
)

_EN = {
    "title": ("INVOICE", "Invoice", "TAX INVOICE"),
    "credit_title": ("CREDIT NOTE", "Credit Note", "CREDIT MEMO"),
    "number": ("Invoice number", "Invoice No.", "Invoice #", "Invoice no"),
    "credit_number": ("Credit note number", "Credit note no.", "Credit memo #"),
    "date": ("Invoice date", "Date", "Date of issue", "Issue date"),
    "due": ("Due date", "Payment due", "Due"),
    "supplier": ("From", "Seller", "Supplier"),
    "customer": ("Bill to", "Invoice to", "Customer", "Sold to"),
    "description": ("Description", "Item", "Details"),
    "quantity": ("Qty", "Quantity", "Units"),
    "unit_price": ("Unit price", "Rate", "Price"),
    "amount": ("Amount", "Line total"),
    "gross": ("Gross", "Incl. tax"),
    "tax_column": ("VAT", "Tax"),
    "net": ("Subtotal", "Net total", "Total excl. tax"),
    "total": ("Total due", "Total", "Amount due", "Balance due", "Total amount"),
    "total_row": ("Total", "Totals"),
    "page": ("Page {page} of {pages}", "{page}/{pages}"),
    "carried": ("Carried forward",),
    "brought": ("Brought forward",),
    "currency_note": ("All amounts in {currency}", "Currency: {currency}"),
    "reference": ("Credit note for invoice {number}", "Refers to invoice {number}"),
    "receipt_title": ("RECEIPT", "SALES RECEIPT"),
    "receipt_number": ("Receipt #", "Receipt no.", "Trans #"),
    "paid": ("Card", "Cash", "Paid"),
    "change": ("Change",),
    "thanks": ("Thank you for your business!", "Thank you!"),
}
_EN_GOODS = (
    *("Consulting (hours)", "Printer paper, A4, 500 sheets", "Toner cartridge, black"),
    *("Office chair", "Software licence, annual", "Delivery and handling", "USB-C docking station"),
    *("Website maintenance, monthly", "Ergonomic keyboard", "Cloud storage, 1 TB"),
    *("Project management", "Standing desk", "Network switch, 24 ports", "Training session"),
)
_EN_MONTHS = (
    *("January", "February", "March", "April", "May", "June", "July", "August"),
    *("September", "October", "November", "December"),
)
_EN_MONTHS_SHORT = tuple(month[:3] for month in _EN_MONTHS)
_EN_TRADES = ("Supplies", "Consulting", "Logistics", "Systems", "Trading", "Solutions")

LOCALES: dict[str, Locale] = {
    "en-US": Locale(
        code="en-US",
        faker="en_US",
        page_format="Letter",
        words=_words(
            **_EN,
            vat_id=("Tax ID", "EIN", "Federal Tax ID"),
            tax=("Sales tax {rate}%", "Tax ({rate}%)", "Sales Tax ({rate}%)"),
        ),
        months=_EN_MONTHS,
        months_short=_EN_MONTHS_SHORT,
        date_formats=("{month} {d}, {yyyy}", "{mm}/{dd}/{yyyy}", "{mon} {d}, {yyyy}"),
        separators=((",", "."), ("", ".")),
        negatives=("-{}", "({})"),
        symbol_first=True,
        currency="USD",
        rates=(Decimal("8.25"), Decimal("6"), Decimal("7.25"), Decimal("0")),
        legal_forms=("Inc.", "LLC", "Corp.", "Co.", "Inc"),
        trades=_EN_TRADES,
        goods=_EN_GOODS,
        numbering=("INV-{year}-{serial:04d}", "{serial:06d}", "INV{serial:05d}", "US{serial:06d}"),
        address_style="us",
    ),
    "en-GB": Locale(
        code="en-GB",
        faker="en_GB",
        page_format="A4",
        words=_words(
            **_EN,
            vat_id=("VAT No.", "VAT Reg. No.", "VAT number"),
            tax=("VAT {rate}%", "VAT ({rate}%)", "VAT @ {rate}%"),
        ),
        months=_EN_MONTHS,
        months_short=_EN_MONTHS_SHORT,
        date_formats=(
            "{d} {month} {yyyy}",
            "{dd}/{mm}/{yyyy}",
            "{d} {mon} {yyyy}",
            "{dd}-{mon}-{yyyy}",
        ),
        separators=((",", "."), ("", ".")),
        negatives=("-{}", "({})"),
        symbol_first=True,
        currency="GBP",
        rates=(Decimal("20"), Decimal("5")),
        legal_forms=("Ltd", "Ltd.", "Limited", "plc", "LLP"),
        trades=_EN_TRADES,
        goods=_EN_GOODS,
        numbering=("SI-{serial:05d}", "INV{serial:06d}", "{year}/{serial:04d}", "INV {serial:05d}"),
        address_style="gb",
    ),
    "de-DE": Locale(
        code="de-DE",
        faker="de_DE",
        page_format="A4",
        words=_words(
            title=("RECHNUNG", "Rechnung"),
            credit_title=("GUTSCHRIFT", "Gutschrift", "Rechnungskorrektur"),
            number=("Rechnungsnummer", "Rechnungs-Nr.", "Rechnung Nr.", "Re.-Nr."),
            credit_number=("Gutschriftsnummer", "Gutschrift Nr.", "Beleg-Nr."),
            date=("Rechnungsdatum", "Datum", "Belegdatum"),
            due=("Fälligkeitsdatum", "Zahlbar bis", "Fällig am"),
            supplier=("Lieferant", "Von", "Verkäufer"),
            customer=("Kunde", "Rechnungsempfänger", "An"),
            vat_id=("USt-IdNr.", "USt-ID", "Umsatzsteuer-ID"),
            description=("Beschreibung", "Bezeichnung", "Artikel", "Leistung"),
            quantity=("Menge", "Anzahl", "Anz."),
            unit_price=("Einzelpreis", "E-Preis", "Preis"),
            amount=("Betrag", "Gesamtpreis", "Summe"),
            gross=("Brutto",),
            tax_column=("MwSt.", "USt."),
            net=("Zwischensumme", "Nettobetrag", "Summe netto", "Netto"),
            tax=("MwSt. {rate} %", "zzgl. {rate} % USt.", "Umsatzsteuer {rate} %"),
            total=("Gesamtbetrag", "Rechnungsbetrag", "Gesamtsumme", "Zu zahlen", "Endbetrag"),
            total_row=("Summe", "Gesamt"),
            page=("Seite {page} von {pages}", "Seite {page}/{pages}"),
            carried=("Übertrag",),
            brought=("Übertrag",),
            currency_note=("Alle Beträge in {currency}", "Währung: {currency}"),
            reference=("Gutschrift zu Rechnung {number}", "Korrektur zur Rechnung Nr. {number}"),
            receipt_title=("KASSENBON", "Quittung", "Beleg"),
            receipt_number=("Bon-Nr.", "Beleg-Nr.", "Bon"),
            paid=("Bar", "EC-Karte", "Gegeben"),
            change=("Rückgeld",),
            thanks=("Vielen Dank für Ihren Einkauf!", "Vielen Dank!"),
        ),
        months=(
            *("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August"),
            *("September", "Oktober", "November", "Dezember"),
        ),
        months_short=(
            *("Jan.", "Feb.", "März", "Apr.", "Mai", "Juni", "Juli", "Aug."),
            *("Sep.", "Okt.", "Nov.", "Dez."),
        ),
        date_formats=("{dd}.{mm}.{yyyy}", "{d}. {month} {yyyy}", "{d}.{m}.{yyyy}"),
        separators=((".", ","), ("", ",")),
        negatives=("-{}", "-{}", "{}-"),
        symbol_first=False,
        currency="EUR",
        rates=(Decimal("19"), Decimal("7")),
        legal_forms=("GmbH", "AG", "KG", "GmbH & Co. KG", "UG (haftungsbeschränkt)", "e.K."),
        trades=("Handel", "Technik", "Logistik", "Bau", "Consulting", "Elektro", "Druck"),
        goods=(
            *("Beratung (Stunden)", "Druckerpapier A4, 500 Blatt", "Tonerkartusche schwarz"),
            *("Bürostuhl", "Softwarelizenz, jährlich", "Versandkosten", "Dockingstation USB-C"),
            *("Wartung Website, monatlich", "Ergonomische Tastatur", "Aktenordner, 10 Stück"),
            *("Montage vor Ort", "Schreibtischleuchte", "Netzwerkkabel Cat. 6, 5 m", "Schulung"),
        ),
        numbering=("RE-{year}-{serial:04d}", "{year}{serial:05d}", "R{serial:06d}", "RE {serial}"),
        address_style="eu",
    ),
    "fr-FR": Locale(
        code="fr-FR",
        faker="fr_FR",
        page_format="A4",
        words=_words(
            title=("FACTURE", "Facture"),
            credit_title=("AVOIR", "Facture d'avoir", "Avoir"),
            number=("Facture n°", "N° de facture", "Numéro de facture", "Facture N°"),
            credit_number=("Avoir n°", "N° d'avoir"),
            date=("Date de facture", "Date", "Date d'émission", "Émise le"),
            due=("Date d'échéance", "Échéance", "À payer avant le"),
            supplier=("Vendeur", "Émetteur", "Fournisseur", "De"),
            customer=("Client", "Facturé à", "Destinataire"),
            vat_id=("N° TVA", "TVA intracommunautaire", "N° TVA intracom."),
            description=("Désignation", "Description", "Libellé"),
            quantity=("Qté", "Quantité"),
            unit_price=("Prix unitaire", "P.U. HT", "PU"),
            amount=("Montant", "Montant HT", "Total HT"),
            gross=("TTC", "Montant TTC"),
            tax_column=("TVA",),
            net=("Total HT", "Montant HT", "Sous-total"),
            tax=("TVA {rate} %", "TVA ({rate} %)", "Montant TVA {rate} %"),
            total=("Total TTC", "Net à payer", "Montant TTC", "Total à payer"),
            total_row=("Total", "Totaux"),
            page=("Page {page} sur {pages}", "Page {page}/{pages}"),
            carried=("À reporter",),
            brought=("Report",),
            currency_note=("Montants exprimés en {currency}", "Devise : {currency}"),
            reference=("Avoir sur facture {number}", "Annule la facture {number}"),
            receipt_title=("TICKET", "REÇU", "Ticket de caisse"),
            receipt_number=("Ticket n°", "N° ticket"),
            paid=("Espèces", "CB", "Carte bancaire"),
            change=("Rendu",),
            thanks=("Merci de votre visite !", "Merci et à bientôt"),
        ),
        months=(
            *("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août"),
            *("septembre", "octobre", "novembre", "décembre"),
        ),
        months_short=(
            *("janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août"),
            *("sept.", "oct.", "nov.", "déc."),
        ),
        date_formats=("{dd}/{mm}/{yyyy}", "{d} {month} {yyyy}", "{d} {mon} {yyyy}"),
        separators=((" ", ","), ("\xa0", ","), ("", ","), (".", ",")),
        negatives=("-{}",),
        symbol_first=False,
        currency="EUR",
        rates=(Decimal("20"), Decimal("10"), Decimal("5.5")),
        legal_forms=("SAS", "SARL", "SA", "EURL", "SASU"),
        trades=("Conseil", "Services", "Distribution", "Transports", "Bâtiment", "Informatique"),
        goods=(
            *("Conseil (heures)", "Papier d'imprimante A4, 500 feuilles", "Cartouche de toner"),
            *("Chaise de bureau", "Licence logicielle annuelle", "Frais de port", "Œuvre d'art"),
            *("Maintenance du site, mensuelle", "Clavier ergonomique", "Classeurs, lot de 10"),
            *("Installation sur site", "Lampe de bureau", "Câble réseau 5 m", "Formation"),
        ),
        numbering=("F{year}-{serial:04d}", "FA-{serial:06d}", "{year}-{serial:05d}", "FAC{serial}"),
        address_style="eu",
    ),
    "nl-NL": Locale(
        code="nl-NL",
        faker="nl_NL",
        page_format="A4",
        words=_words(
            title=("FACTUUR", "Factuur"),
            credit_title=("CREDITNOTA", "Creditfactuur"),
            number=("Factuurnummer", "Factuurnr.", "Factuur nr."),
            credit_number=("Creditnotanummer", "Creditnota nr."),
            date=("Factuurdatum", "Datum"),
            due=("Vervaldatum", "Te betalen voor", "Uiterste betaaldatum"),
            supplier=("Leverancier", "Van", "Verkoper"),
            customer=("Klant", "Factuuradres", "Aan"),
            vat_id=("Btw-nummer", "BTW-nr.", "Btw-id"),
            description=("Omschrijving", "Artikel"),
            quantity=("Aantal", "Aant."),
            unit_price=("Prijs per stuk", "Stukprijs", "Prijs"),
            amount=("Bedrag", "Totaal"),
            gross=("Incl. btw",),
            tax_column=("Btw",),
            net=("Subtotaal", "Totaal excl. btw", "Netto"),
            tax=("Btw {rate}%", "BTW ({rate}%)", "{rate}% btw"),
            total=("Totaal", "Totaal incl. btw", "Te betalen", "Totaalbedrag"),
            total_row=("Totaal",),
            page=("Pagina {page} van {pages}", "Blad {page}/{pages}"),
            carried=("Transport",),
            brought=("Transport",),
            currency_note=("Alle bedragen in {currency}", "Valuta: {currency}"),
            reference=("Creditnota voor factuur {number}", "Correctie op factuur {number}"),
            receipt_title=("KASSABON", "Bon"),
            receipt_number=("Bonnr.", "Bon nr."),
            paid=("Pin", "Contant"),
            change=("Wisselgeld",),
            thanks=("Bedankt voor uw bezoek!", "Tot ziens!"),
        ),
        months=(
            *("januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus"),
            *("september", "oktober", "november", "december"),
        ),
        months_short=(
            *("jan.", "feb.", "mrt.", "apr.", "mei", "jun.", "jul.", "aug."),
            *("sep.", "okt.", "nov.", "dec."),
        ),
        date_formats=(
            "{dd}-{mm}-{yyyy}",
            "{d} {month} {yyyy}",
            "{dd}/{mm}/{yyyy}",
            "{d} {mon} {yyyy}",
        ),
        separators=((".", ","), ("", ",")),
        negatives=("-{}",),
        symbol_first=True,
        currency="EUR",
        rates=(Decimal("21"), Decimal("9")),
        legal_forms=("B.V.", "BV", "N.V.", "V.O.F."),
        trades=("Handel", "Techniek", "Advies", "Logistiek", "Installatie", "Groep"),
        goods=(
            *("Advies (uren)", "Printpapier A4, 500 vel", "Tonercartridge zwart"),
            *(
                "Bureaustoel",
                "Softwarelicentie, jaarlijks",
                "Verzendkosten",
                "USB-C dockingstation",
            ),
            *("Onderhoud website, maandelijks", "Ergonomisch toetsenbord", "Ordners, 10 stuks"),
            *("Installatie op locatie", "Bureaulamp", "Netwerkkabel 5 m", "Training"),
        ),
        numbering=("{year}-{serial:04d}", "F{serial:06d}", "INV{year}{serial:04d}", "{serial:05d}"),
        address_style="eu",
    ),
    "es-ES": Locale(
        code="es-ES",
        faker="es_ES",
        page_format="A4",
        words=_words(
            title=("FACTURA", "Factura"),
            credit_title=("FACTURA RECTIFICATIVA", "Nota de crédito", "ABONO"),
            number=("Número de factura", "Nº factura", "Factura nº", "Nº de factura"),
            credit_number=("Nº rectificativa", "Número de abono"),
            date=("Fecha de factura", "Fecha", "Fecha de emisión"),
            due=("Fecha de vencimiento", "Vencimiento"),
            supplier=("Proveedor", "Emisor", "Vendedor", "De"),
            customer=("Cliente", "Facturar a", "Destinatario"),
            vat_id=("NIF", "CIF", "NIF-IVA"),
            description=("Descripción", "Concepto", "Artículo"),
            quantity=("Cantidad", "Cant.", "Uds."),
            unit_price=("Precio unitario", "Precio", "P. unit."),
            amount=("Importe", "Total"),
            gross=("Total con IVA",),
            tax_column=("IVA",),
            net=("Base imponible", "Subtotal", "Total sin IVA"),
            tax=("IVA {rate}%", "IVA ({rate} %)", "Cuota IVA {rate}%"),
            total=("Total factura", "Total", "Importe total", "Total a pagar"),
            total_row=("Total", "Totales"),
            page=("Página {page} de {pages}", "Pág. {page}/{pages}"),
            carried=("Suma y sigue",),
            brought=("Suma anterior",),
            currency_note=("Importes en {currency}", "Moneda: {currency}"),
            reference=("Rectifica la factura {number}", "Abono de la factura {number}"),
            receipt_title=("TICKET", "FACTURA SIMPLIFICADA", "Recibo"),
            receipt_number=("Nº ticket", "Ticket nº", "Nº"),
            paid=("Efectivo", "Tarjeta", "Entregado"),
            change=("Cambio",),
            thanks=("¡Gracias por su visita!", "Gracias por su compra"),
        ),
        months=(
            *("enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto"),
            *("septiembre", "octubre", "noviembre", "diciembre"),
        ),
        months_short=(
            *("ene.", "feb.", "mar.", "abr.", "may.", "jun.", "jul.", "ago."),
            *("sept.", "oct.", "nov.", "dic."),
        ),
        date_formats=("{dd}/{mm}/{yyyy}", "{d} de {month} de {yyyy}", "{dd}-{mm}-{yyyy}"),
        separators=((".", ","), ("", ",")),
        negatives=("-{}",),
        symbol_first=False,
        currency="EUR",
        rates=(Decimal("21"), Decimal("10"), Decimal("4")),
        legal_forms=("S.L.", "S.A.", "S.L.U.", "SL", "S.Coop."),
        trades=("Comercial", "Servicios", "Distribuciones", "Consultores", "Suministros"),
        goods=(
            *("Consultoría (horas)", "Papel de impresora A4, 500 hojas", "Cartucho de tóner"),
            *("Silla de oficina", "Licencia de software anual", "Gastos de envío", "Base USB-C"),
            *("Mantenimiento web mensual", "Teclado ergonómico", "Archivadores, 10 unidades"),
            *("Instalación in situ", "Lámpara de escritorio", "Cable de red 5 m", "Formación"),
        ),
        numbering=("FAC-{year}-{serial:04d}", "{year}/{serial:05d}", "A{serial:06d}", "F{serial}"),
        address_style="eu",
    ),
    "it-IT": Locale(
        code="it-IT",
        faker="it_IT",
        page_format="A4",
        words=_words(
            title=("FATTURA", "Fattura"),
            credit_title=("NOTA DI CREDITO", "Nota di credito"),
            number=("Numero fattura", "Fattura n.", "N. fattura", "Fattura nr."),
            credit_number=("Nota di credito n.", "Numero nota"),
            date=("Data fattura", "Data", "Data emissione"),
            due=("Scadenza", "Data scadenza", "Pagamento entro"),
            supplier=("Fornitore", "Cedente", "Venditore", "Da"),
            customer=("Cliente", "Destinatario", "Cessionario"),
            vat_id=("P. IVA", "Partita IVA", "P.IVA"),
            description=("Descrizione", "Articolo"),
            quantity=("Quantità", "Q.tà", "Qtà"),
            unit_price=("Prezzo unitario", "Prezzo", "Prezzo unit."),
            amount=("Importo", "Totale"),
            gross=("Importo IVA incl.",),
            tax_column=("IVA",),
            net=("Imponibile", "Totale imponibile", "Subtotale"),
            tax=("IVA {rate}%", "IVA ({rate}%)", "Imposta {rate}%"),
            total=("Totale fattura", "Totale", "Totale documento", "Totale da pagare"),
            total_row=("Totale", "Totali"),
            page=("Pagina {page} di {pages}", "Pag. {page}/{pages}"),
            carried=("A riportare",),
            brought=("Riporto",),
            currency_note=("Importi in {currency}", "Valuta: {currency}"),
            reference=(
                "Storno fattura n. {number}",
                "Nota di credito relativa alla fattura {number}",
            ),
            receipt_title=("SCONTRINO", "Documento commerciale", "Ricevuta"),
            receipt_number=("Scontrino n.", "Doc. n."),
            paid=("Contanti", "Carta", "Pagato"),
            change=("Resto",),
            thanks=("Grazie e arrivederci!", "Grazie per l'acquisto"),
        ),
        months=(
            *("gennaio", "febbraio", "marzo", "aprile", "maggio", "giugno", "luglio", "agosto"),
            *("settembre", "ottobre", "novembre", "dicembre"),
        ),
        months_short=(
            *("gen", "feb", "mar", "apr", "mag", "giu", "lug", "ago"),
            *("set", "ott", "nov", "dic"),
        ),
        date_formats=(
            "{dd}/{mm}/{yyyy}",
            "{d} {month} {yyyy}",
            "{dd}.{mm}.{yyyy}",
            "{dd}-{mm}-{yyyy}",
        ),
        separators=((".", ","), ("", ",")),
        negatives=("-{}",),
        symbol_first=False,
        currency="EUR",
        rates=(Decimal("22"), Decimal("10"), Decimal("4")),
        legal_forms=("S.r.l.", "S.p.A.", "Srl", "S.n.c.", "S.a.s."),
        trades=("Commerciale", "Servizi", "Forniture", "Impianti", "Consulenze", "Logistica"),
        goods=(
            *("Consulenza (ore)", "Carta per stampante A4, 500 fogli", "Cartuccia toner nero"),
            *("Sedia da ufficio", "Licenza software annuale", "Spese di spedizione", "Dock USB-C"),
            *("Manutenzione sito, mensile", "Tastiera ergonomica", "Raccoglitori, 10 pezzi"),
            *("Installazione in sede", "Lampada da scrivania", "Cavo di rete 5 m", "Formazione"),
        ),
        numbering=(
            "{serial}/{year}",
            "FT {serial:04d}/{year}",
            "{year}/{serial:05d}",
            "{serial:06d}",
        ),
        address_style="eu",
    ),
}

# How currencies are shown beside amounts; a currency without a symbol is written by its code.
SYMBOLS: Final = MappingProxyType({"USD": "$", "GBP": "£", "EUR": "€"})
