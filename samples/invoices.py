"""Seeded example invoices: born-digital PDFs with a text layer, each with its labels (the truth).

`invoice(seed, language=..., layout=...)` gives one `GeneratedInvoice`; `invoices(count, seed)`
gives a run of them across every language and layout. The same seed gives the same labels and the
same PDF bytes (with the same fpdf2 and zlib), so tests and benchmarks regenerate documents instead
of storing them, and an extraction can be scored against `labels` field by field.

Making an invoice is two steps: drawing its labels from the seed (`_draw`), then rendering them
(`render_pdf`). Other renderings of the same labels (a scan, an e-invoice twin) belong beside
`render_pdf`; a new language is one more `Language` in `LANGUAGES`, a new layout one more function
in `_HEADERS`.

PDFs use the core Helvetica font with Windows-1252 encoding, which draws every character of these
languages (€, £, ß, é, œ) without a font file, so nothing depends on fonts installed on the machine.
A language outside Windows-1252 needs a TrueType font (`FPDF.add_font`) shipped with it.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from fpdf import FPDF

CENT = Decimal("0.01")


class Layout(StrEnum):
    BLOCK = "block"  # "Label: value" lines under the title
    TABLE = "table"  # a bordered grid: a row of labels over a row of values
    # Drawn by `samples.layouts` (the development set's renderer):
    STACKED = "stacked"  # labels above their values; the parties under "From" and "Bill to"
    LETTERHEAD = "letterhead"  # supplier top-left with no label, recipient window, details right
    RECEIPT = "receipt"  # a narrow till receipt, prices including tax
    TOTALS_ROW = "totals-row"  # totals as the last row of the line-item table


# The layouts `invoice()` draws with this module's own renderer, and `invoices()` cycles through.
CLASSIC_LAYOUTS = (Layout.BLOCK, Layout.TABLE)


@dataclass(frozen=True)
class LineItem:
    description: str  # may run over lines ("\n"); read as one, its lines joined by a space
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal  # quantity times unit price, to the cent


@dataclass(frozen=True)
class InvoiceLabels:
    """What the invoice says, as an extraction should report it."""

    language: str  # a key of LANGUAGES, such as "de-DE"
    layout: Layout
    invoice_number: str
    date: str  # ISO 8601
    due_date: str  # ISO 8601
    supplier: str
    supplier_address: str
    customer: str
    currency: str  # ISO 4217
    line_items: tuple[LineItem, ...]
    subtotal: Decimal  # the sum of the line items' amounts
    tax_rate: Decimal  # percent
    tax: Decimal  # subtotal times tax rate, to the cent
    total: Decimal  # subtotal + tax
    # What the development set adds (empty where a document has none, such as a receipt's buyer):
    customer_address: str = ""  # lines separated by "\n"
    supplier_vat: str = ""
    customer_vat: str = ""
    document_type: str = "invoice"  # or "credit_note": its amounts are negative
    reference: str = ""  # the invoice a credit note corrects
    # Line amounts include tax (receipts): subtotal is then total - tax, not their sum.
    prices_include_tax: bool = False


@dataclass(frozen=True)
class GeneratedInvoice:
    pdf: bytes
    labels: InvoiceLabels
    pages: int

    @property
    def filename(self) -> str:
        return re.sub(r"[^A-Za-z0-9-]+", "-", self.labels.invoice_number) + ".pdf"


SYMBOLS = {"USD": "$", "GBP": "£", "EUR": "€"}


@dataclass(frozen=True)
class Language:
    """How invoices are written in one language and country: words, numbers, dates, parties."""

    page_format: str
    words: dict[str, str]
    date_style: Callable[[date], str]
    thousands: str
    decimal: str
    symbol_first: bool  # "$1,234.50" rather than "1.234,50 €"
    rates: tuple[tuple[str, Decimal], ...]  # (currency, tax rate in percent) an invoice may use
    number_style: str  # str.format with `year` and `serial`
    suppliers: tuple[tuple[str, str], ...]  # (name, address)
    customers: tuple[str, ...]
    goods: tuple[str, ...]

    def number(self, value: Decimal, *, places: int = 2) -> str:
        """`value` with this language's separators and `places` decimals: "1.234,50"."""
        whole, _, fraction = f"{value:.{places}f}".partition(".")
        grouped = f"{int(whole):,}".replace(",", self.thousands)
        return f"{grouped}{self.decimal}{fraction}" if fraction else grouped

    def quantity(self, value: Decimal) -> str:
        """A quantity: no decimals when it is whole ("3"), else two ("1,50")."""
        return self.number(value, places=0 if value == value.to_integral_value() else 2)

    def rate(self, percent: Decimal) -> str:
        """A tax rate as written beside its label: "19", "5,5"."""
        return format(percent.normalize(), "f").replace(".", self.decimal)

    def money(self, amount: Decimal, currency: str) -> str:
        """The amount as this language writes it on an invoice, such as "1.234,50 €"."""
        symbol = SYMBOLS.get(currency, currency)
        written = self.number(amount)
        return f"{symbol}{written}" if self.symbol_first else f"{written} {symbol}"


_MONTHS_EN = (
    *("January", "February", "March", "April", "May", "June", "July", "August"),
    *("September", "October", "November", "December"),
)

_EN_WORDS = {
    "title": "INVOICE",
    "number": "Invoice number",
    "date": "Invoice date",
    "due": "Due date",
    "customer": "Bill to",
    "description": "Description",
    "quantity": "Qty",
    "unit_price": "Unit price",
    "amount": "Amount",
    "subtotal": "Subtotal",
    "tax": "Tax ({rate}%)",
    "total": "Total due",
    "page": "Page {page} of {pages}",
}
_EN_GOODS = (
    *("Consulting (hours)", "Printer paper, A4, 500 sheets", "Toner cartridge, black"),
    *("Office chair", "Software licence, annual", "Delivery and handling", "USB-C docking station"),
    *("Website maintenance, monthly", "Ergonomic keyboard", "Cloud storage, 1 TB"),
)

LANGUAGES: dict[str, Language] = {
    "en-US": Language(
        page_format="Letter",
        words=_EN_WORDS,
        date_style=lambda d: f"{_MONTHS_EN[d.month - 1]} {d.day}, {d.year}",
        thousands=",",
        decimal=".",
        symbol_first=True,
        rates=(("USD", Decimal("8.25")), ("USD", Decimal("6")), ("USD", Decimal("0"))),
        number_style="INV-{year}-{serial:04d}",
        suppliers=(
            ("Northwind Traders Inc.", "400 Pine Street, Seattle, WA 98101"),
            ("Globex Corporation", "1 Globex Plaza, Springfield, OR 97477"),
            ("Initech LLC", "4120 Freidrich Lane, Austin, TX 78744"),
        ),
        customers=("Contoso Ltd.", "Fabrikam Inc.", "Tailspin Toys", "Wide World Importers"),
        goods=_EN_GOODS,
    ),
    "en-GB": Language(
        page_format="A4",
        words=_EN_WORDS,
        date_style=lambda d: f"{d.day} {_MONTHS_EN[d.month - 1]} {d.year}",
        thousands=",",
        decimal=".",
        symbol_first=True,
        rates=(("GBP", Decimal("20")), ("GBP", Decimal("5"))),
        number_style="SI-{serial:05d}",
        suppliers=(
            ("ACME Supplies Ltd", "12 Harbour Road, Bristol BS1 4DJ"),
            ("Hooli Europe plc", "3 Kingsway, London WC2B 6AA"),
        ),
        customers=("Blue Sky Cafés Ltd", "Marsh & Partners LLP", "Oakfield School"),
        goods=_EN_GOODS,
    ),
    "de-DE": Language(
        page_format="A4",
        words={
            "title": "RECHNUNG",
            "number": "Rechnungsnummer",
            "date": "Rechnungsdatum",
            "due": "Fälligkeitsdatum",
            "customer": "Kunde",
            "description": "Beschreibung",
            "quantity": "Menge",
            "unit_price": "Einzelpreis",
            "amount": "Betrag",
            "subtotal": "Zwischensumme",
            "tax": "MwSt. ({rate} %)",
            "total": "Gesamtbetrag",
            "page": "Seite {page} von {pages}",
        },
        date_style=lambda d: f"{d.day:02d}.{d.month:02d}.{d.year}",
        thousands=".",
        decimal=",",
        symbol_first=False,
        rates=(("EUR", Decimal("19")), ("EUR", Decimal("7"))),
        number_style="RE-{year}-{serial:04d}",
        suppliers=(
            ("Muster Handel GmbH", "Hauptstraße 5, 10115 Berlin"),
            ("Bäckerei Weiß KG", "Mühlenweg 12, 80331 München"),
            ("Schön & Söhne AG", "Große Elbstraße 145, 22767 Hamburg"),
        ),
        customers=("Grünwald Logistik GmbH", "Stadtwerke Köln", "Hofmann Büroservice"),
        goods=(
            *("Beratung (Stunden)", "Druckerpapier A4, 500 Blatt", "Tonerkartusche schwarz"),
            *("Bürostuhl", "Softwarelizenz, jährlich", "Versandkosten", "Dockingstation USB-C"),
            *("Wartung Website, monatlich", "Ergonomische Tastatur", "Aktenordner, 10 Stück"),
        ),
    ),
    "fr-FR": Language(
        page_format="A4",
        words={
            "title": "FACTURE",
            "number": "Facture n°",
            "date": "Date de facture",
            "due": "Date d'échéance",
            "customer": "Client",
            "description": "Désignation",
            "quantity": "Qté",
            "unit_price": "Prix unitaire",
            "amount": "Montant",
            "subtotal": "Total HT",
            "tax": "TVA ({rate} %)",
            "total": "Total TTC",
            "page": "Page {page} sur {pages}",
        },
        date_style=lambda d: f"{d.day:02d}/{d.month:02d}/{d.year}",
        thousands=" ",
        decimal=",",
        symbol_first=False,
        rates=(("EUR", Decimal("20")), ("EUR", Decimal("5.5")), ("EUR", Decimal("10"))),
        number_style="F{year}-{serial:04d}",
        suppliers=(
            ("Café Noël SARL", "8 rue de la Paix, 75002 Paris"),
            ("Éditions Lefèvre SA", "24 quai Saint-Antoine, 69002 Lyon"),
            ("Brûlerie Dupré", "3 place du Marché, 33000 Bordeaux"),
        ),
        customers=("Société Générale des Eaux", "Hôtel Bellevue", "Mairie de Nantes"),
        goods=(
            *("Conseil (heures)", "Papier d'imprimante A4, 500 feuilles", "Cartouche de toner"),
            *("Chaise de bureau", "Licence logicielle annuelle", "Frais de port", "Œuvre d'art"),
            *("Maintenance du site, mensuelle", "Clavier ergonomique", "Classeurs, lot de 10"),
        ),
    ),
}


def invoice(
    seed: int,
    *,
    language: str = "en-US",
    layout: Layout | str = Layout.BLOCK,
    lines: int | None = None,
    serial: int | None = None,
) -> GeneratedInvoice:
    """One invoice drawn from `seed`. `lines` is the number of line items (1 to 6 when not given;
    about 30 fill a page, so more make a multi-page invoice); `serial` is its running number in
    the supplier's series (drawn from the seed when not given)."""
    labels = _draw(random.Random(seed), language, Layout(layout), lines, serial)
    pdf, pages = render_pdf(labels)
    return GeneratedInvoice(pdf=pdf, labels=labels, pages=pages)


def invoices(
    count: int,
    seed: int = 0,
    *,
    languages: Sequence[str] = tuple(LANGUAGES),
    layouts: Sequence[Layout] = CLASSIC_LAYOUTS,
) -> list[GeneratedInvoice]:
    """`count` invoices cycling through every language, then every layout, with consecutive
    numbers so that their numbers and file names differ."""
    start = random.Random(seed).randrange(1, 5000)
    return [
        invoice(
            seed * 100_003 + n,
            language=languages[n % len(languages)],
            layout=layouts[n // len(languages) % len(layouts)],
            serial=start + n,
        )
        for n in range(count)
    ]


def _draw(
    rng: random.Random, code: str, layout: Layout, lines: int | None, serial: int | None
) -> InvoiceLabels:
    language = LANGUAGES[code]
    issued = date(2023, 1, 1) + timedelta(days=rng.randrange(3 * 365))
    supplier, address = rng.choice(language.suppliers)
    currency, rate = rng.choice(language.rates)
    items = []
    for _ in range(lines if lines is not None else rng.randint(1, 6)):
        quantity = Decimal(rng.choice((1, 1, 2, 3, 5, 10, 12, 25)))
        price = Decimal(rng.randrange(250, 250_000)).scaleb(-2)  # in cents: 25 is "25.00"
        items.append(LineItem(rng.choice(language.goods), quantity, price, quantity * price))
    subtotal = sum((item.amount for item in items), Decimal("0.00"))
    tax = (subtotal * rate / 100).quantize(CENT, rounding=ROUND_HALF_UP)
    return InvoiceLabels(
        language=code,
        layout=layout,
        invoice_number=language.number_style.format(
            year=issued.year, serial=serial if serial is not None else rng.randrange(1, 9999)
        ),
        date=issued.isoformat(),
        due_date=(issued + timedelta(days=rng.choice((14, 30, 60)))).isoformat(),
        supplier=supplier,
        supplier_address=address,
        customer=rng.choice(language.customers),
        currency=currency,
        line_items=tuple(items),
        subtotal=subtotal,
        tax_rate=rate,
        tax=tax,
        total=subtotal + tax,
    )


class _Page(FPDF):
    """A page with the supplier and "Page n of m" in its footer."""

    def __init__(self, labels: InvoiceLabels, language: Language) -> None:
        super().__init__(format=language.page_format)
        self.labels, self.language = labels, language

    def footer(self) -> None:
        self.set_y(-15)
        self.set_font("Helvetica", size=8)
        page = self.language.words["page"].format(page=self.page_no(), pages="{nb}")
        self.cell(0, 5, f"{self.labels.supplier}, {self.labels.supplier_address}  ·  {page}")


def render_pdf(labels: InvoiceLabels) -> tuple[bytes, int]:
    """The invoice as a born-digital PDF, and its number of pages. The layouts beyond the classic
    two are drawn by the development set's renderer, in each locale's commonest style."""
    if labels.layout not in CLASSIC_LAYOUTS:
        from samples.layouts import render
        from samples.locales import LOCALES
        from samples.writing import Style

        return render(labels, Style.default(LOCALES[labels.language]))
    language = LANGUAGES[labels.language]
    pdf = _Page(labels, language)
    pdf.core_fonts_encoding = "windows-1252"
    # Fixed metadata keeps the bytes a function of the labels alone.
    pdf.set_creation_date(datetime.fromisoformat(labels.date).replace(tzinfo=UTC))
    pdf.set_title(f"{language.words['title'].title()} {labels.invoice_number}")
    pdf.set_author(labels.supplier)
    pdf.set_margins(15, 15)
    pdf.set_auto_page_break(True, margin=25)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 15)
    pdf.cell(0, 8, labels.supplier, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=10)
    pdf.cell(0, 6, labels.supplier_address, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    pdf.set_font("Helvetica", "B", 13)
    pdf.cell(0, 8, language.words["title"], new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font("Helvetica", size=10)
    _HEADERS[labels.layout](pdf, labels, language)
    pdf.ln(6)
    _line_items(pdf, labels, language)
    _totals(pdf, labels, language)
    return bytes(pdf.output()), pdf.pages_count


def _header_values(labels: InvoiceLabels, language: Language) -> list[tuple[str, str]]:
    words, style = language.words, language.date_style
    return [
        (words["number"], labels.invoice_number),
        (words["date"], style(date.fromisoformat(labels.date))),
        (words["due"], style(date.fromisoformat(labels.due_date))),
        (words["customer"], labels.customer),
    ]


def _block_header(pdf: FPDF, labels: InvoiceLabels, language: Language) -> None:
    for label, value in _header_values(labels, language):
        pdf.cell(45, 6, f"{label}:")
        pdf.cell(0, 6, value, new_x="LMARGIN", new_y="NEXT")


def _table_header(pdf: FPDF, labels: InvoiceLabels, language: Language) -> None:
    header_grid(pdf, _header_values(labels, language), label_size=9, value_size=10)


def header_grid(
    pdf: FPDF, pairs: list[tuple[str, str]], *, label_size: int, value_size: int
) -> None:
    """A row of bold labels over a row of their values, in equal boxed columns."""
    width = pdf.epw / len(pairs)
    pdf.set_font("Helvetica", "B", label_size)
    for label, _ in pairs:
        pdf.cell(width, 7, label, border=1)
    pdf.ln()
    pdf.set_font("Helvetica", size=value_size)
    for _, value in pairs:
        pdf.cell(width, 7, value, border=1)
    pdf.ln()


_HEADERS: dict[Layout, Callable[[FPDF, InvoiceLabels, Language], None]] = {
    Layout.BLOCK: _block_header,
    Layout.TABLE: _table_header,
}
_COLUMNS = (("description", 0.52, "L"), ("quantity", 0.1, "R"), ("unit_price", 0.19, "R"))


def _line_items(pdf: FPDF, labels: InvoiceLabels, language: Language) -> None:
    widths = [pdf.epw * share for _, share, _ in _COLUMNS]
    widths.append(pdf.epw - sum(widths))
    aligns = [align for _, _, align in _COLUMNS] + ["R"]
    titles = [language.words[key] for key, _, _ in _COLUMNS] + [language.words["amount"]]

    def heading() -> None:
        pdf.set_font("Helvetica", "B", 9)
        for title, width, align in zip(titles, widths, aligns, strict=True):
            pdf.cell(width, 7, title, border="B", align=align)
        pdf.ln()
        pdf.set_font("Helvetica", size=10)

    heading()
    for item in labels.line_items:
        if pdf.will_page_break(6):
            pdf.add_page()
            heading()
        cells = (
            item.description,
            language.quantity(item.quantity),
            language.number(item.unit_price),
            language.number(item.amount),
        )
        for text, width, align in zip(cells, widths, aligns, strict=True):
            pdf.cell(width, 6, text, align=align)
        pdf.ln()


def _totals(pdf: FPDF, labels: InvoiceLabels, language: Language) -> None:
    words = language.words
    rows = (
        (words["subtotal"], labels.subtotal, ""),
        (words["tax"].format(rate=language.rate(labels.tax_rate)), labels.tax, ""),
        (words["total"], labels.total, "B"),
    )
    if pdf.will_page_break(6 * len(rows) + 4):
        pdf.add_page()
    pdf.ln(4)
    for label, amount, style in rows:
        pdf.set_font("Helvetica", style, 10)
        pdf.set_x(pdf.l_margin + pdf.epw * 0.5)
        pdf.cell(pdf.epw * 0.25, 6, label)
        pdf.cell(pdf.epw * 0.25, 6, language.money(amount, labels.currency), align="R")
        pdf.ln()
