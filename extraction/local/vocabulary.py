"""The offline engine's vocabulary: the concepts invoices label in many ways, with their
labels, and the abbreviations folded onto one spelling."""

from __future__ import annotations

from enum import Enum


class Shape(Enum):
    ANY = "any"
    TEXT = "text"
    IDENT = "ident"
    DATE = "date"
    AMOUNT = "amount"
    BOOLEAN = "boolean"
    LIST = "list"


# Concepts that invoices and similar documents label in many ways, in English, German, French,
# Dutch, Spanish and Italian. The first phrase names the concept; a field whose name is any of the
# phrases accepts all of them. Phrases are compared as label keys (accents and case folded, filler
# words such as "de" and "the" left out, "No.", "Nr." and "numéro" folded together), so "N° de
# facture" and "Facture n°" are one phrase.
GROUPS: tuple[tuple[Shape, tuple[str, ...]], ...] = (
    (
        Shape.IDENT,
        (
            *("invoice number", "invoice id", "invoice ref", "invoice reference", "invoice"),
            *("bill number", "document number", "receipt number", "receipt", "credit note"),
            *("credit note number", "invoice credit note number", "credit memo"),
            *("credit memo number",),
            *("rechnungsnummer", "rechnungsnr", "rechnung no", "rechnungs no", "rechnung"),
            *("belegnummer", "beleg no", "gutschrift no", "gutschriftsnummer"),
            *("numero de facture", "facture", "facture no", "no de facture", "avoir no"),
            *("factuurnummer", "factuurnr", "factuur no", "factuur", "creditnota no"),
            *("numero de factura", "factura", "factura no", "no factura", "factura numero"),
            *("numero fattura", "fattura", "fattura no", "numero documento", "documento no"),
            # a receipt's number: till receipts, tickets, transactions
            *("receipt no", "transaction no", "trans no", "bon no", "bonnr", "bonnummer"),
            *("kassenbon no", "kassabon no", "ticket no", "numero ticket", "recibo no"),
            *("scontrino no", "numero scontrino"),
            # abbreviations and credit notes: "Re.-Nr.", "Rg.-Nr.", "Nº rectificativa"
            *("re no", "rg no", "rechn no", "bon", "creditnotanummer", "creditnota nummer"),
            *("creditfactuurnummer", "numero de abono", "abono no", "rectificativa"),
            *("no rectificativa", "factura rectificativa no", "numero avoir", "nota di credito no"),
        ),
    ),
    (
        Shape.DATE,
        (
            *("date", "invoice date", "issue date", "date of issue", "dated", "date issued"),
            *("issued", "issued on", "billing date", "document date", "tax point", "receipt date"),
            *("rechnungsdatum", "datum", "belegdatum", "ausstellungsdatum", "rechnung vom"),
            *("date de facture", "date facture", "date de facturation", "date d emission"),
            *("date emission", "factuurdatum", "datum factuur", "factuur datum"),
            *("fecha", "fecha de factura", "fecha factura", "fecha de emision", "fecha emision"),
            *("fecha de expedicion", "data", "data fattura", "data documento", "data emissione"),
            *("data di emissione", "data della fattura", "emise le", "émise le", "emis le"),
        ),
    ),
    (
        Shape.DATE,
        (
            *("due date", "payment due", "payment due date", "due", "due by", "pay by"),
            *("date due", "payable by", "fällig", "fällig am", "fälligkeitsdatum", "fälligkeit"),
            *("zahlbar bis", "zahlungsziel", "date d echeance", "echeance", "date limite"),
            *("date limite de paiement", "à payer avant le", "a payer avant le"),
            *("vervaldatum", "verval datum"),
            *("uiterste betaaldatum", "te betalen voor", "fecha de vencimiento", "vencimiento"),
            *("fecha vencimiento", "scadenza", "data scadenza", "data di scadenza"),
            *("scadenza pagamento",),
        ),
    ),
    (
        Shape.DATE,
        (
            *("delivery date", "date of delivery", "service date", "date of supply"),
            *("order date", "period", "service period", "lieferdatum", "leistungsdatum"),
            *("leistungszeitraum", "bestelldatum", "auftragsdatum", "date de livraison"),
            *("date de commande", "periode", "leverdatum", "leveringsdatum", "besteldatum"),
            *("fecha de entrega", "fecha de pedido", "periodo", "data consegna"),
            *("data di consegna", "data ordine"),
        ),
    ),
    (
        Shape.AMOUNT,
        (
            *("total", "amount due", "grand total", "balance due", "total amount", "total due"),
            *("total payable", "amount payable", "invoice total", "total to pay", "balance"),
            *("total incl vat", "total including vat", "total incl tax", "total including tax"),
            *("amount", "total amount due", "amount to pay", "total gross"),
            # a totals row: its last amount is the gross total
            *("totals", "summen", "totaux", "totalen", "totales", "totali"),
            *("gesamtbetrag", "endbetrag", "rechnungsbetrag", "bruttobetrag", "zahlbetrag"),
            *("gesamtsumme", "rechnungssumme", "bruttosumme", "summe", "gesamt", "zu zahlen"),
            *("zu zahlender betrag", "gesamt brutto", "total brutto", "summe brutto"),
            *("total ttc", "montant ttc", "net à payer", "net a payer", "total à payer"),
            *("total a payer", "montant total", "montant à payer", "montant a payer"),
            *("total general", "totaal", "totaalbedrag", "totaal bedrag"),
            *("te betalen", "totaal te betalen", "totaal incl btw", "bedrag incl btw"),
            *("importe total", "total factura", "total a pagar", "importe a pagar"),
            *("total importe", "totale", "totale fattura", "totale documento", "importo totale"),
            *("totale da pagare", "netto a pagare", "totale complessivo", "importo da pagare"),
        ),
    ),
    (
        Shape.AMOUNT,
        (
            *("subtotal", "sub total", "net total", "net amount", "total excl vat"),
            *("total excluding vat", "total before tax", "total net", "net"),
            *("zwischensumme", "nettobetrag", "netto", "summe netto", "gesamt netto"),
            *("nettosumme", "warenwert", "total netto", "total ht", "montant ht", "sous total"),
            *("total hors taxes", "subtotaal", "totaal excl btw", "netto bedrag"),
            *("base imponible", "importe neto", "subtotal sin iva", "imponibile"),
            *("totale imponibile", "subtotale", "totale netto"),
        ),
    ),
    (
        Shape.AMOUNT,
        (
            *("tax", "vat", "tax amount", "vat amount", "sales tax", "gst", "total tax"),
            *("total vat", "mwst", "MwSt", "ust", "umsatzsteuer", "mehrwertsteuer"),
            *("mwst betrag", "MwSt Betrag"),
            *("steuer", "steuerbetrag", "tva", "montant tva", "total tva", "btw", "btw bedrag"),
            *("totaal btw", "iva", "cuota iva", "importe iva", "total iva", "imposta"),
            *("totale iva", "importo iva"),
        ),
    ),
    (
        Shape.TEXT,
        (
            *("supplier", "vendor", "seller", "from", "company", "supplier name", "vendor name"),
            *("seller name", "company name", "issuer", "billed by", "sold by", "merchant"),
            *("payee", "issued by", "remit to", "pay to", "payable to", "lieferant"),
            *("verkäufer", "rechnungssteller", "absender"),
            *("leistungserbringer", "auftragnehmer", "fournisseur", "vendeur", "emetteur"),
            *("prestataire", "emis par", "leverancier", "verkoper", "afzender"),
            *("proveedor", "vendedor", "emisor", "emitido por", "fornitore", "venditore"),
            *("cedente", "cedente prestatore", "emittente", "prestatore"),
        ),
    ),
    (
        Shape.TEXT,
        (
            *("customer", "bill to", "billed to", "client", "sold to", "buyer", "customer name"),
            *("client name", "invoice to", "invoiced to", "kunde", "rechnungsempfänger"),
            *("empfänger", "käufer", "auftraggeber", "rechnungsadresse"),
            *("acheteur", "destinataire", "facturé à", "facturer à"),
            *("adresse de facturation", "klant", "koper"),
            *("afnemer", "factuuradres", "gefactureerd aan", "factuur aan", "aan", "cliente"),
            *("comprador", "destinatario", "facturar", "facturado", "facturar a"),
            *("committente", "cessionario", "cessionario committente", "spett", "intestatario"),
            *("fatturare", "fatturato"),
        ),
    ),
    (
        Shape.IDENT,
        (
            *("vat id", "tax id", "vat number", "vat reg no", "vat registration number"),
            *("vat registration", "vat identification number", "tax number", "gst number"),
            *("tax registration number", "tin", "ein", "gstin", "abn", "vat no"),
            *("ust id", "ust idnr", "ust id nr", "ustid", "ustidnr", "steuernummer", "st no"),
            *("umsatzsteuer id", "umsatzsteuer identifikationsnummer", "no tva"),
            *("tva intracommunautaire", "no tva intracommunautaire", "tva intracom"),
            *("identifiant tva", "btw no", "btw id", "btw identificatienummer"),
            *("omzetbelastingnummer", "nif", "cif", "nif cif", "nif iva", "partita iva"),
            *("p iva", "codice fiscale", "cod fisc", "c f"),
        ),
    ),
    (
        Shape.IDENT,
        (
            *("po number", "purchase order", "purchase order number", "po", "order number"),
            *("order reference", "bestellnummer", "bestellung no", "auftragsnummer"),
            *("auftrag no", "bon de commande", "commande no", "no de commande"),
            *("ordernummer", "bestelnummer", "bestelling no", "pedido", "pedido no"),
            *("numero de pedido", "ordine no", "numero ordine"),
        ),
    ),
    (
        Shape.IDENT,
        (
            *("customer number", "customer id", "client number", "client id", "account number"),
            *("kundennummer", "kundennr", "kunden no", "numero client", "client no"),
            *("klantnummer", "klant no", "numero de cliente", "cliente no", "codice cliente"),
        ),
    ),
    (
        Shape.TEXT,
        (
            *("ship to", "deliver to", "delivery address", "shipping address", "lieferadresse"),
            *("lieferanschrift", "adresse de livraison", "livré à", "afleveradres"),
            *("leveringsadres", "direccion de envio", "enviar a", "indirizzo di consegna"),
            *("destinazione merce", "luogo di consegna"),
        ),
    ),
    (Shape.IDENT, ("iban", "bank account")),
    (
        Shape.TEXT,
        (
            *("payment terms", "terms", "zahlungsbedingungen", "conditions de paiement"),
            *("betalingsvoorwaarden", "condiciones de pago", "condizioni di pagamento"),
        ),
    ),
    (
        Shape.TEXT,
        (
            *("currency", "currency code", "währung", "devise", "valuta", "moneda", "divisa"),
            *("munteenheid",),
        ),
    ),
)

# Abbreviations folded onto one spelling, so "Inv #", "Invoice No." and "invoice_number" agree.
CANON = {
    "#": "no",
    "№": "no",
    "nº": "no",
    "n": "no",
    "nr": "no",
    "num": "no",
    "nbr": "no",
    "number": "no",
    "inv": "invoice",
    "amt": "amount",
    "ref": "reference",
    "qty": "quantity",
    "reg": "registration",
    "regn": "registration",
    "tel": "phone",
    "telephone": "phone",
    "acct": "account",
    "incl": "including",
    "excl": "excluding",
    "identifier": "id",
    "numero": "no",
    "nummer": "no",
    "nro": "no",
    # "Facturé à" (bill to) is not "Facture" (the invoice): the accent is all that tells them
    # apart, so "à" is a word of its own before accents are folded.
    "à": "to",
}
# Words left out of labels: articles and prepositions of the six languages.
STOP = frozenset(
    {"the", "a", "an", "of", "your", "our", "de", "du", "des", "d", "l", "la", "le", "les"}
    | {"der", "die", "das", "den", "dem", "het", "een", "van", "del", "el", "los", "las"}
    | {"di", "della", "dello", "dei", "degli", "da"}
)
IDENT_TOKENS = frozenset({"no", "id"})

# Column headers of a table of goods or services, whose "Total" column is per line.
LINE_ITEM_WORDS = frozenset(
    {"description", "item", "items", "quantity", "unit", "price", "rate", "hours", "article"}
    | {"beschreibung", "bezeichnung", "menge", "anzahl", "einzelpreis", "artikel", "position"}
    | {"designation", "quantite", "qte", "prix", "unitaire", "omschrijving", "aantal", "prijs"}
    | {"stukprijs", "descripcion", "cantidad", "precio", "concepto", "descrizione", "quantita"}
    | {"prezzo", "articolo", "qta"}
)

# The columns of a line-item table, by what they hold, with their headers in the six languages.
# A table field's column is mapped to one of these by its own name; the table is found by a row
# of these headers.
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "description": (
        *("description", "item", "items", "article", "product", "service", "details"),
        *("item description", "beschreibung", "bezeichnung", "artikel", "leistung"),
        *("artikelbezeichnung", "designation", "libelle", "article", "omschrijving"),
        *("artikel omschrijving", "descripcion", "concepto", "articulo", "descrizione"),
        *("articolo", "prodotto"),
    ),
    "quantity": (
        *("quantity", "qty", "hours", "units", "menge", "anzahl", "stk", "quantite", "qte"),
        *("aantal", "cantidad", "cant", "quantita", "qta"),
        *("aant", "q ta", "q ty", "uds", "unidades", "hrs", "pcs", "stuks", "nombre", "anz"),
    ),
    "unit price": (
        *("unit price", "price", "rate", "unit cost", "price per unit", "einzelpreis", "preis"),
        *("e preis", "prix unitaire", "prix", "pu", "prix unit", "prix unitaire ht"),
        *("prijs", "stukprijs", "eenheidsprijs", "precio", "precio unitario", "prezzo"),
        *("prezzo unitario",),
        *("p unit", "precio unit", "prezzo unit", "prix unit ht", "prijs per stuk", "pu ht"),
        *("einzelpreis netto", "price each", "unit rate", "tarif", "tarief"),
        *("p u", "p u ht", "pr unit", "prix u", "einzelpr"),
    ),
    "amount": (
        *("amount", "total", "line total", "net amount", "net", "betrag", "gesamt"),
        *("gesamtpreis", "summe", "montant", "montant ht", "total ht", "bedrag", "totaal"),
        *("importe", "total linea", "importo", "totale"),
        *("total price", "line amount", "net price", "total net", "gesamt netto", "netto"),
        *("totaalprijs", "prix total", "importe total", "totale riga"),
    ),
}
# Words that open the totals block under a table of goods, where its rows end.
TABLE_END_WORDS = frozenset(
    {"subtotal", "total", "tax", "vat", "zwischensumme", "summe", "gesamtbetrag", "mwst", "ust"}
    | {"nettobetrag", "rechnungsbetrag", "sous", "tva", "ttc", "subtotaal", "totaal", "btw"}
    | {"imponible", "iva", "imponibile", "totale", "balance", "due", "netto"}
    # plurals and sums under a totals row ("Totals 5 2461.20 ...")
    | {"totals", "totaux", "totales", "totali", "totalen", "summen", "gesamtsumme", "endsumme"}
    | {"subtotale", "totaal", "totalbetrag", "nettosumme", "bruttobetrag", "ht", "ttc"}
)

# Column headers of a line-item table by what the column holds, for the arithmetic checks
# (`extraction.checks`): each row's quantity x unit price, less its discount, is its amount.
QUANTITY_COLUMNS = (*TABLE_COLUMNS["quantity"], "stuck")
UNIT_PRICE_COLUMNS = (*TABLE_COLUMNS["unit price"], "stuckpreis")
LINE_AMOUNT_COLUMNS = (*TABLE_COLUMNS["amount"], "line amount", "totale riga")
DISCOUNT_COLUMNS = (
    *("discount", "rebate", "rabatt", "nachlass", "remise", "korting", "descuento", "dto"),
    *("sconto",),
)

# Single words that say what a line-item table's column holds when its header is not one of
# `TABLE_COLUMNS` ("Prezzo unit.", "Unit price (EUR)", "Total net amount"): a header cell names the
# concept of the first of these groups one of its words falls in, in the order amount, unit
# price, quantity, description; a price word with a per-unit word is a unit price.
TABLE_COLUMN_WORDS: dict[str, frozenset[str]] = {
    "amount": frozenset(
        {"amount", "total", "betrag", "gesamt", "gesamtpreis", "summe", "montant", "bedrag"}
        | {"totaal", "importe", "importo", "totale", "subtotal", "totaalprijs"}
    ),
    "unit price": frozenset(
        {"price", "rate", "preis", "einzelpreis", "prix", "pu", "prijs", "stukprijs", "precio"}
        | {"prezzo", "eenheidsprijs", "tarif", "tarief", "tariff", "stuckpreis"}
    ),
    "quantity": frozenset(
        {"quantity", "hours", "units", "menge", "anzahl", "quantite", "qte", "aantal", "aant"}
        | {"cantidad", "cant", "uds", "unidades", "quantita", "qta", "hrs", "pcs", "stk"}
    ),
    "description": frozenset(
        {"description", "item", "items", "article", "product", "service", "services", "details"}
        | {"beschreibung", "bezeichnung", "artikel", "leistung", "designation", "libelle"}
        | {"omschrijving", "descripcion", "concepto", "articulo", "descrizione", "articolo"}
        | {"prodotto", "produkt", "produit", "product", "dienst", "servizio", "servicio"}
    ),
}
# Words that make a header some other column than the one its price or amount word names: a
# tax, a gross (tax-inclusive) or a discount column ("VAT amount", "Total incl. VAT").
TABLE_OTHER_WORDS = frozenset(
    {"vat", "tax", "mwst", "ust", "btw", "tva", "iva", "gross", "brutto", "bruto", "including"}
    | {"ttc", "lordo", "discount", "rabatt", "remise", "korting", "descuento", "sconto"}
)
# A per-unit word beside a price word: "Price per unit", "Prix unit.", "Stückpreis".
TABLE_UNIT_WORDS = frozenset(
    {"unit", "per", "each", "einzel", "unitaire", "unitario", "stuk", "stuck", "ea"}
)
# The first cell of the row that carries a running sum over a page break ("Carried forward",
# "Übertrag"): not an item, and not the end of the table.
TABLE_CARRY_PHRASES = (
    *("carried forward", "brought forward", "carry forward", "balance brought forward"),
    *("ubertrag", "zwischensumme ubertrag", "vortrag", "a reporter", "report", "reporte"),
    *("transport", "overdracht", "over te dragen", "suma anterior", "suma y sigue"),
    *("riporto", "da riportare", "a riportare", "saldo precedente"),
)
# Description headers that name the text of an item, which win over ones that may head an item
# number or code ("Item | Description", "Artikel | Bezeichnung").
TABLE_TEXT_WORDS = frozenset(
    {"description", "beschreibung", "bezeichnung", "omschrijving", "descripcion", "descrizione"}
    | {"designation", "libelle", "leistung", "concepto", "details", "benaming"}
)
