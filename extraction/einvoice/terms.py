"""Which business term a user's field names: its name (or description) looked up among the terms'
names and synonyms in English, German, French, Dutch, Spanish and Italian.

Only exact matches after folding count (case, accents, punctuation and spacing ignored, and a
trailing "with currency" / "in EUR" dropped): a field that names no term goes to the batch's
engine, because a value from the wrong term would be exact and wrong.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

from extraction.einvoice.standards import BT, KINDS, Kind
from extraction.fields import FieldSpec

LINES: Literal["lines"] = "lines"
Target = BT | Literal["lines"]

SYNONYMS: dict[Target, tuple[str, ...]] = {
    BT.NUMBER: (
        *("invoice number", "invoice no", "invoice nr", "invoice id", "invoice #", "invoice"),
        *("number", "document number", "credit note number", "bill number", "inv no"),
        *("rechnungsnummer", "rechnungs nr", "rechnung nr", "rechnungsnr", "belegnummer"),
        *("gutschriftsnummer", "gutschriftnummer"),
        *("numero de facture", "n de facture", "no de facture", "facture n", "numero facture"),
        *("factuurnummer", "factuur nummer", "factuurnr", "factuur nr"),
        *("numero de factura", "n de factura", "no de factura", "factura n", "num factura"),
        *("numero fattura", "numero di fattura", "numero della fattura", "n fattura"),
        "fattura n",
    ),
    BT.ISSUE_DATE: (
        *("date", "invoice date", "issue date", "date of issue", "issued", "issued on"),
        *("billing date", "document date", "credit note date"),
        *("rechnungsdatum", "datum", "ausstellungsdatum", "belegdatum"),
        *("date de facture", "date de la facture", "date d emission", "date facture"),
        *("factuurdatum", "datum factuur"),
        *("fecha", "fecha de factura", "fecha de emision", "fecha factura"),
        *("data", "data fattura", "data della fattura", "data di emissione", "data emissione"),
    ),
    BT.DUE_DATE: (
        *("due date", "payment due", "payment due date", "due", "due on", "pay by"),
        *("payable by", "date due"),
        *("falligkeitsdatum", "faelligkeitsdatum", "fallig", "faellig", "fallig am"),
        *("zahlbar bis", "zahlungsziel"),
        *("date d echeance", "echeance", "date limite de paiement", "a payer avant"),
        *("vervaldatum", "vervaldag", "te betalen voor"),
        *("fecha de vencimiento", "vencimiento", "fecha vencimiento"),
        *("data di scadenza", "scadenza", "data scadenza"),
    ),
    BT.CURRENCY: (
        *("currency", "currency code", "invoice currency"),
        *("wahrung", "waehrung", "devise", "monnaie", "valuta", "moneda", "divisa"),
    ),
    BT.SELLER_NAME: (
        *("supplier", "supplier name", "seller", "seller name", "vendor", "vendor name"),
        *("from", "issuer", "merchant", "billed by", "sender"),
        *("lieferant", "verkaufer", "verkaeufer", "rechnungssteller", "anbieter", "absender"),
        *("fournisseur", "vendeur", "emetteur"),
        *("leverancier", "verkoper", "afzender"),
        *("proveedor", "vendedor", "emisor"),
        *("fornitore", "venditore", "cedente", "cedente prestatore"),
    ),
    BT.SELLER_VAT_ID: (
        *("vat id", "vat number", "vat no", "vat reg no", "vat registration number", "tax id"),
        *("supplier vat id", "supplier vat number", "supplier vat", "supplier tax id"),
        *("seller vat id", "seller vat number", "seller vat", "vendor vat id", "vendor vat number"),
        *("ust idnr", "ust id", "ust id nr", "umsatzsteuer identifikationsnummer"),
        *("numero de tva", "n tva", "no tva", "tva intracommunautaire"),
        "numero de tva intracommunautaire",
        *("btw nummer", "btw nr", "btw id", "btw identificatienummer"),
        *("nif", "cif", "numero de iva", "nif iva"),
        *("partita iva", "p iva", "piva"),
    ),
    BT.BUYER_NAME: (
        *("buyer", "buyer name", "customer", "customer name", "client", "client name"),
        *("bill to", "billed to", "sold to", "recipient"),
        *("kunde", "kaufer", "kaeufer", "rechnungsempfanger", "rechnungsempfaenger"),
        *("empfanger", "empfaenger", "auftraggeber"),
        *("acheteur", "destinataire", "facture a"),
        *("klant", "afnemer", "koper"),
        *("cliente", "comprador", "destinatario"),
        *("committente", "cessionario", "cessionario committente"),
    ),
    BT.BUYER_VAT_ID: (
        *("buyer vat id", "buyer vat number", "buyer vat", "buyer tax id"),
        *("customer vat id", "customer vat number", "customer vat", "customer tax id"),
        *("client vat number", "client vat id"),
        *("ust idnr des kunden", "kunden ust idnr"),
        *("tva client", "numero de tva client", "btw nummer klant", "nif cliente"),
        "partita iva cliente",
    ),
    BT.NET_TOTAL: (
        *("net", "net amount", "net total", "total net", "subtotal", "sub total"),
        *("total excluding vat", "total excl vat", "total without vat", "total before tax"),
        *("amount excluding vat", "taxable amount", "total excluding tax", "total excl tax"),
        *("nettobetrag", "netto", "summe netto", "gesamt netto", "zwischensumme"),
        *("total ht", "montant ht", "sous total", "hors taxes", "total hors taxes"),
        *("netto bedrag", "nettobedrag", "subtotaal", "totaal excl btw"),
        *("base imponible", "importe neto", "total neto"),
        *("imponibile", "totale imponibile", "totale netto"),
    ),
    BT.TAX_TOTAL: (
        *("tax", "vat", "tax amount", "vat amount", "total tax", "total vat", "sales tax"),
        *("mwst", "ust", "mehrwertsteuer", "umsatzsteuer", "steuer", "steuerbetrag"),
        *("tva", "montant tva", "total tva", "montant de la tva"),
        *("btw", "btw bedrag", "totaal btw"),
        *("iva", "importe iva", "cuota iva", "total iva"),
        *("imposta", "totale iva", "importo iva"),
    ),
    BT.GRAND_TOTAL: (
        *("total", "grand total", "total amount", "invoice total", "invoice amount", "amount"),
        *("total incl vat", "total including vat", "total including tax", "total with vat"),
        *("total incl tax", "gross", "gross amount", "total gross", "gross total"),
        *("gesamtbetrag", "gesamtsumme", "rechnungsbetrag", "summe", "bruttobetrag", "brutto"),
        *("endbetrag", "gesamt", "gesamtbetrag brutto"),
        *("total ttc", "montant ttc", "montant total", "total de la facture"),
        *("totaal", "totaalbedrag", "totaal incl btw", "factuurbedrag"),
        *("importe total", "total factura", "total de la factura"),
        *("totale", "importo totale", "totale fattura", "totale documento"),
    ),
    BT.AMOUNT_DUE: (
        *("amount due", "balance due", "amount payable", "total due", "amount to pay"),
        *("payable amount", "due amount", "balance"),
        *("zahlbetrag", "zu zahlen", "zahlbarer betrag", "offener betrag"),
        *("net a payer", "montant a payer", "reste a payer"),
        *("te betalen", "openstaand bedrag", "te betalen bedrag"),
        *("importe a pagar", "total a pagar"),
        *("importo da pagare", "netto a pagare", "totale da pagare"),
    ),
    BT.PAID: (
        *("paid", "paid amount", "amount paid", "prepaid amount", "prepaid"),
        *("bereits bezahlt", "anzahlung", "deja paye", "acompte"),
        *("reeds betaald", "vooruitbetaald", "pagado", "anticipo", "gia pagato", "acconto"),
    ),
    BT.TYPE_CODE: (
        *("document type", "invoice type", "type", "type code", "invoice type code"),
        *("dokumentart", "belegart", "rechnungsart", "type de document", "documenttype"),
        *("tipo de documento", "tipo documento", "tipo di documento"),
    ),
    BT.BUYER_REFERENCE: (
        *("buyer reference", "customer reference", "your reference", "leitweg id"),
        *("ihre referenz", "kundenreferenz", "votre reference", "reference client"),
        *("uw referentie", "su referencia", "vostro riferimento", "riferimento cliente"),
    ),
    BT.PURCHASE_ORDER: (
        *("purchase order", "purchase order number", "po number", "po", "order number"),
        *("order reference", "order no", "bestellnummer", "auftragsnummer", "bestellung"),
        *("bon de commande", "numero de commande", "commande", "bestelnummer"),
        *("inkoopordernummer", "pedido", "numero de pedido", "orden de compra"),
        *("ordine", "numero ordine", "ordine d acquisto"),
    ),
    BT.PAYMENT_TERMS: (
        *("payment terms", "terms", "terms of payment"),
        *("zahlungsbedingungen", "zahlungsbedingung"),
        *("conditions de paiement", "conditions de reglement", "modalites de paiement"),
        *("betalingsvoorwaarden", "betalingstermijn", "condiciones de pago"),
        *("condizioni di pagamento", "termini di pagamento"),
    ),
    BT.PRECEDING_INVOICE: (
        *("preceding invoice", "original invoice", "corrected invoice", "referenced invoice"),
        *("related invoice", "credited invoice", "bezugsrechnung", "originalrechnung"),
        *("ursprungliche rechnung", "facture d origine", "facture de reference"),
        *("oorspronkelijke factuur", "originele factuur", "factura original"),
        *("factura rectificada", "fattura di riferimento", "fattura originale"),
    ),
    BT.IBAN: (
        *("iban", "bank account", "account number", "payment account"),
        *("kontonummer", "bankverbindung", "compte bancaire", "rekeningnummer"),
        *("cuenta bancaria", "numero de cuenta", "conto corrente", "coordinate bancarie"),
    ),
    LINES: (
        *("line items", "items", "lines", "invoice lines", "positions", "products", "articles"),
        *("rechnungspositionen", "positionen", "artikel", "lignes", "produits"),
        *("factuurregels", "regels", "artikelen", "lineas", "conceptos", "articulos"),
        *("righe", "articoli", "prodotti"),
    ),
}


def label_key(text: str) -> str:
    """Text folded for comparison: no accents, no case, words of letters and digits only."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(re.sub(r"[^\w]+|_", " ", plain).split())


_INDEX: dict[str, Target] = {}
for _target, _names in SYNONYMS.items():
    for _name in _names:
        _key = label_key(_name)
        if _INDEX.setdefault(_key, _target) != _target:
            raise AssertionError(f"{_name!r} names two business terms")

# "total with currency", "date in ISO format": what follows asks for a form, not another term.
_FORM = re.compile(r"\s+(?:with|in|as)\s.*$")

# The field types a term's value can take without being converted into something else.
_TYPES: dict[Kind, frozenset[str]] = {
    Kind.TEXT: frozenset({"string"}),
    Kind.CODE: frozenset({"string"}),
    Kind.DATE: frozenset({"string", "date"}),
    Kind.AMOUNT: frozenset({"string", "number"}),
}


def target_of(spec: FieldSpec) -> Target | None:
    """The business term (or the invoice lines) a field asks for, if its name or description
    names one and its type can hold that term's value."""
    for text in (spec["name"], spec.get("description") or ""):
        key = label_key(text)
        target = _INDEX.get(key) or _INDEX.get(_FORM.sub("", key))
        if target is not None:
            break
    else:
        return None
    field_type = spec.get("type") or "string"
    if target == LINES:
        return target if field_type in ("list", "table") else None
    return target if field_type in _TYPES[KINDS[target]] else None


def labels_of(target: Target) -> tuple[str, ...]:
    """The target's names folded like `label_key`, for finding its label beside a value."""
    return _LABELS[target]


_LABELS = {target: tuple(label_key(name) for name in names) for target, names in SYNONYMS.items()}
