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


# Concepts that invoices and similar documents label in many ways. The first phrase names the
# concept; a field whose name is any of the phrases accepts all of them. A few German, French and
# Spanish labels are included because European invoices are a main use.
GROUPS: tuple[tuple[Shape, tuple[str, ...]], ...] = (
    (
        Shape.IDENT,
        (
            *("invoice number", "invoice id", "invoice ref", "invoice reference", "invoice"),
            *("bill number", "document number", "receipt number"),
            *("rechnungsnummer", "rechnung no", "facture no", "numero de facture", "factura no"),
        ),
    ),
    (
        Shape.DATE,
        (
            *("date", "invoice date", "issue date", "date of issue", "dated", "date issued"),
            *("issued", "issued on", "billing date", "document date", "tax point"),
            *("rechnungsdatum", "datum", "date de facture", "fecha", "fecha de factura"),
        ),
    ),
    (
        Shape.DATE,
        (
            *("due date", "payment due", "payment due date", "due", "due by", "pay by"),
            *("date due", "fällig", "fälligkeitsdatum", "date d echeance", "echeance"),
        ),
    ),
    (
        Shape.AMOUNT,
        (
            *("total", "amount due", "grand total", "balance due", "total amount", "total due"),
            *("total payable", "amount payable", "invoice total", "total to pay", "balance"),
            *("total incl vat", "total including vat", "total incl tax", "total including tax"),
            *("amount", "gesamtbetrag", "endbetrag", "total ttc", "montant ttc", "net a payer"),
            *("importe total",),
        ),
    ),
    (
        Shape.AMOUNT,
        (
            *("subtotal", "sub total", "net total", "net amount", "total excl vat"),
            *("total excluding vat", "total before tax", "zwischensumme", "nettobetrag"),
            *("total ht", "montant ht", "base imponible"),
        ),
    ),
    (
        Shape.AMOUNT,
        (
            *("tax", "vat", "tax amount", "vat amount", "sales tax", "gst", "total tax"),
            *("total vat", "mwst", "ust", "tva", "montant tva", "iva"),
        ),
    ),
    (
        Shape.TEXT,
        (
            *("supplier", "vendor", "seller", "from", "company", "supplier name", "vendor name"),
            *("seller name", "company name", "issuer", "billed by", "sold by", "merchant"),
            *("payee", "lieferant", "fournisseur", "proveedor"),
        ),
    ),
    (
        Shape.TEXT,
        (
            *("customer", "bill to", "billed to", "client", "sold to", "buyer", "customer name"),
            *("client name", "invoice to", "invoiced to", "kunde", "cliente"),
        ),
    ),
    (
        Shape.IDENT,
        (
            *("vat id", "tax id", "vat number", "vat reg no", "vat registration number"),
            *("vat registration", "vat identification number", "tax number", "gst number"),
            *("tax registration number", "tin", "ein", "ust id", "ust idnr", "ust id nr"),
            *("steuernummer", "no tva", "tva intracommunautaire", "nif", "cif"),
        ),
    ),
    (
        Shape.IDENT,
        (
            *("po number", "purchase order", "purchase order number", "po", "order number"),
            *("order reference", "bestellnummer", "bon de commande"),
        ),
    ),
    (
        Shape.IDENT,
        (
            *("customer number", "customer id", "client number", "client id", "account number"),
            *("kundennummer", "numero client"),
        ),
    ),
    (Shape.IDENT, ("iban", "bank account")),
    (Shape.TEXT, ("payment terms", "terms", "zahlungsbedingungen")),
    (Shape.TEXT, ("currency", "währung", "devise", "moneda")),
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
}
STOP = frozenset({"the", "a", "an", "of", "your", "our"})
IDENT_TOKENS = frozenset({"no", "id"})

LINE_ITEM_WORDS = frozenset(
    {"description", "item", "items", "quantity", "unit", "price", "rate", "hours", "article"}
)
