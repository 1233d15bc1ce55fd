"""Development-set invoices drawn as born-digital PDFs: one function per `Layout`, every word,
date and amount written in the document's `Style`.

What each layout puts in an engine's way, on purpose:

- BLOCK: "Label: value" lines; two VAT ids under the same label (the supplier's, the buyer's).
- TABLE: the header as a bordered grid, a row of labels over a row of values.
- STACKED: labels above their values; the supplier named under "From" / "Von" / "Van"...
- LETTERHEAD: the supplier top-left with no label (and again in the footer), a sender line over
  the recipient's window, details on the right; a long table carries its running sum forward
  from page to page ("Übertrag"), a sum that is not the total.
- RECEIPT: a narrow till receipt in Courier; prices include tax; the cash given and the change
  are amounts beside the total.
- TOTALS_ROW: no totals block: the total is the last cell of the table's last row, after the
  quantities' sum, the net sum and the tax sum ("Total 1 278.61 40.39 319.00").

Credit notes print negative amounts in the style's way ("-8,79", "(8.79)", "8,79-") and name the
invoice they correct, whose number is not theirs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

from fpdf import FPDF

from samples.invoices import InvoiceLabels, Layout, LineItem, header_grid
from samples.writing import Style

CENT = Decimal("0.01")
ROW = 6.0  # height of a table row, mm


def line_tax(item: LineItem, rate: Decimal) -> Decimal:
    """The tax of one line, as a table with a tax column shows it."""
    return (item.amount * rate / 100).quantize(CENT, rounding=ROUND_HALF_UP)


class _Sheet(FPDF):
    """A page whose footer holds an optional line of text and "Page n of m"."""

    def __init__(self, style: Style, page_format: str | tuple[float, float], footer: str) -> None:
        super().__init__(format=page_format)
        self.style, self.footer_text = style, footer
        self.numbered = True

    def footer(self) -> None:
        if not self.numbered:
            return
        self.set_y(-15)
        self.set_font("Helvetica", size=7)
        page = self.style.word("page", page=self.page_no(), pages="{nb}")
        self.cell(0, 4, "  ·  ".join(filter(None, (self.footer_text, page))), align="C")


def render(labels: InvoiceLabels, style: Style) -> tuple[bytes, int]:
    """The invoice as a born-digital PDF in its layout and style, and its number of pages."""
    if labels.layout is Layout.RECEIPT:
        pdf = _Sheet(style, (80, _receipt_height(labels)), "")
        pdf.numbered = False
        pdf.set_margins(5, 5)
    else:
        footer = ""
        if labels.layout is Layout.LETTERHEAD:
            footer = f"{labels.supplier} · {_one_line(labels.supplier_address)}"
            if labels.supplier_vat:
                footer += f" · {style.word('vat_id')} {labels.supplier_vat}"
        pdf = _Sheet(style, style.locale.page_format, footer)
        pdf.set_margins(18, 15)
    pdf.core_fonts_encoding = "windows-1252"
    # Fixed metadata keeps the bytes a function of the labels and the style alone.
    pdf.set_creation_date(datetime.fromisoformat(labels.date).replace(tzinfo=UTC))
    pdf.set_title(f"{_title(labels, style)} {labels.invoice_number}")
    pdf.set_author(labels.supplier)
    pdf.set_auto_page_break(True, margin=22 if labels.layout is not Layout.RECEIPT else 2)
    pdf.add_page()
    _LAYOUTS[labels.layout](pdf, labels, style)
    return bytes(pdf.output()), pdf.pages_count


# ---- pieces every layout shares ----------------------------------------------------------------


def _one_line(address: str) -> str:
    return ", ".join(address.splitlines())


def _credit(labels: InvoiceLabels) -> bool:
    return labels.document_type == "credit_note"


def _title(labels: InvoiceLabels, style: Style) -> str:
    return style.word("credit_title" if _credit(labels) else "title")


def _details(labels: InvoiceLabels, style: Style) -> list[tuple[str, str]]:
    """The header's label/value pairs: number, dates."""
    pairs = [
        (style.word("credit_number" if _credit(labels) else "number"), labels.invoice_number),
        (style.word("date"), style.date(labels.date)),
    ]
    if labels.due_date:
        pairs.append((style.word("due"), style.date(labels.due_date)))
    return pairs


def _totals(labels: InvoiceLabels, style: Style) -> list[tuple[str, Decimal]]:
    return [
        (style.word("net"), labels.subtotal),
        (style.word("tax", rate=style.rate(labels.tax_rate)), labels.tax),
        (style.word("total"), labels.total),
    ]


def _reference(pdf: FPDF, labels: InvoiceLabels, style: Style) -> None:
    if labels.reference:
        pdf.set_font(size=10)
        pdf.cell(
            0, 6, style.word("reference", number=labels.reference), new_x="LMARGIN", new_y="NEXT"
        )


def _lines(pdf: FPDF, text: str, *, height: float = 5, align: str = "L") -> None:
    for line in text.splitlines():
        pdf.cell(0, height, line, align=align, new_x="LMARGIN", new_y="NEXT")


@dataclass(frozen=True)
class _Column:
    title: str
    share: float  # of the page's width between the margins
    align: str
    value: Callable[[LineItem], str]


def _columns(labels: InvoiceLabels, style: Style, *, with_tax: bool) -> list[_Column]:
    """Description, quantity, unit price and amount; with the tax and the gross amount of each line
    after the amount when `with_tax` (the amount is then the net one, and gross comes last)."""
    currency, words = labels.currency, style.word
    columns = [
        _Column(words("description"), 0.44, "L", lambda item: item.description),
        _Column(words("quantity"), 0.09, "R", lambda item: style.quantity(item.quantity)),
        _Column(words("unit_price"), 0.2, "R", lambda item: style.cell(item.unit_price, currency)),
        _Column(words("amount"), 0.27, "R", lambda item: style.cell(item.amount, currency)),
    ]
    if not with_tax:
        return columns
    rate = labels.tax_rate
    return [
        _Column(columns[0].title, 0.34, "L", columns[0].value),
        _Column(columns[1].title, 0.08, "R", columns[1].value),
        _Column(columns[2].title, 0.15, "R", columns[2].value),
        _Column(columns[3].title, 0.15, "R", columns[3].value),
        _Column(
            words("tax_column"), 0.13, "R", lambda item: style.cell(line_tax(item, rate), currency)
        ),
        _Column(
            words("gross"),
            0.15,
            "R",
            lambda item: style.cell(item.amount + line_tax(item, rate), currency),
        ),
    ]


def _row(pdf: FPDF, cells: Sequence[str], columns: Sequence[_Column], *, border: str = "") -> None:
    for text, column in zip(cells, columns, strict=True):
        pdf.cell(pdf.epw * column.share, ROW, text, align=column.align, border=border)
    pdf.ln()


def _items(
    pdf: FPDF,
    labels: InvoiceLabels,
    style: Style,
    columns: Sequence[_Column],
    *,
    carry: bool = False,
    last_row: Sequence[str] = (),
) -> None:
    """The line-item table, its heading repeated on every page it runs onto. With `carry`, the
    running sum of the amounts closes each page and opens the next ("Carried forward")."""
    font = pdf.font_family

    def heading() -> None:
        pdf.set_font(font, "B", 9)
        _row(pdf, [column.title for column in columns], columns, border="B")
        pdf.set_font(font, "", 9)

    def running_row(concept: str, amount: Decimal) -> None:
        cells = [style.word(concept)] + [""] * (len(columns) - 2)
        pdf.set_font(font, "I", 9)
        _row(pdf, [*cells, style.cell(amount, labels.currency)], columns)
        pdf.set_font(font, "", 9)

    def room_for_a_line() -> None:
        if pdf.will_page_break(ROW * (2 if carry else 1)):
            if carry:
                running_row("carried", running)
            pdf.add_page()
            heading()
            if carry:
                running_row("brought", running)

    heading()
    running = Decimal("0.00")
    for item in labels.line_items:
        # A description's further lines go under it, on the next page if the page is full: a
        # row may span a page break.
        first, *more = item.description.splitlines()
        room_for_a_line()
        _row(pdf, [first, *(column.value(item) for column in columns[1:])], columns)
        running += item.amount
        for line in more:
            room_for_a_line()
            _row(pdf, [line, *[""] * (len(columns) - 1)], columns)
    if last_row:
        if pdf.will_page_break(ROW):
            pdf.add_page()
            heading()
        pdf.set_font(font, "B", 9)
        _row(pdf, last_row, columns, border="T")
        pdf.set_font(font, "", 9)


def _totals_block(pdf: FPDF, labels: InvoiceLabels, style: Style) -> None:
    rows = _totals(labels, style)
    if pdf.will_page_break(ROW * len(rows) + 4):
        pdf.add_page()
    pdf.ln(4)
    for number, (label, amount) in enumerate(rows):
        pdf.set_font(style="B" if number == len(rows) - 1 else "", size=10)
        pdf.set_x(pdf.l_margin + pdf.epw * 0.45)
        pdf.cell(pdf.epw * 0.3, ROW, label)
        pdf.cell(pdf.epw * 0.25, ROW, style.money(amount, labels.currency), align="R")
        pdf.ln()


def _currency_note(pdf: FPDF, labels: InvoiceLabels, style: Style) -> None:
    pdf.set_font(size=8)
    pdf.cell(
        0, 5, style.word("currency_note", currency=labels.currency), new_x="LMARGIN", new_y="NEXT"
    )


# ---- the layouts --------------------------------------------------------------------------------


def _block(pdf: FPDF, labels: InvoiceLabels, style: Style) -> None:
    pdf.set_font("Helvetica", "B", 15)
    pdf.cell(0, 8, labels.supplier, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=10)
    pdf.cell(0, 5, _one_line(labels.supplier_address), new_x="LMARGIN", new_y="NEXT")
    if labels.supplier_vat:
        pdf.cell(
            0, 5, f"{style.word('vat_id')}: {labels.supplier_vat}", new_x="LMARGIN", new_y="NEXT"
        )
    pdf.ln(6)
    pdf.set_font("Helvetica", "B", 13)
    pdf.cell(0, 8, _title(labels, style), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=10)
    pairs = [*_details(labels, style), (style.word("customer"), labels.customer)]
    for label, value in pairs:
        pdf.cell(45, 6, f"{label}:")
        pdf.cell(0, 6, value, new_x="LMARGIN", new_y="NEXT")
    pdf.set_x(pdf.l_margin + 45)
    pdf.cell(0, 5, _one_line(labels.customer_address), new_x="LMARGIN", new_y="NEXT")
    if labels.customer_vat:
        pdf.cell(45, 6, f"{style.word('vat_id')}:")
        pdf.cell(0, 6, labels.customer_vat, new_x="LMARGIN", new_y="NEXT")
    _reference(pdf, labels, style)
    pdf.ln(6)
    _items(pdf, labels, style, _columns(labels, style, with_tax=False))
    _totals_block(pdf, labels, style)


def _table(pdf: FPDF, labels: InvoiceLabels, style: Style) -> None:
    pdf.set_font("Helvetica", "B", 14)
    pdf.cell(0, 8, labels.supplier, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=9)
    _lines(pdf, labels.supplier_address)
    pdf.ln(5)
    pdf.set_font("Helvetica", "B", 13)
    pdf.cell(0, 8, _title(labels, style), new_x="LMARGIN", new_y="NEXT")
    pairs = [*_details(labels, style), (style.word("customer"), labels.customer)]
    header_grid(pdf, pairs, label_size=8, value_size=9)
    _reference(pdf, labels, style)
    pdf.ln(6)
    _items(pdf, labels, style, _columns(labels, style, with_tax=False))
    _totals_block(pdf, labels, style)
    if labels.supplier_vat:
        pdf.ln(8)
        pdf.set_font("Helvetica", size=8)
        pdf.cell(0, 5, f"{style.word('vat_id')} {labels.supplier_vat}")


def _party(pdf: FPDF, x: float, y: float, label: str, name: str, rest: list[str]) -> float:
    """A label above a party's name and address lines, at (x, y); the y below it."""
    pdf.set_xy(x, y)
    pdf.set_font("Helvetica", "B", 8)
    pdf.cell(80, 5, label.upper())
    pdf.set_xy(x, y + 5)
    pdf.set_font("Helvetica", "B", 10)
    pdf.cell(80, 5, name)
    for number, line in enumerate(rest, start=2):
        pdf.set_xy(x, y + 5 * number)
        pdf.set_font("Helvetica", size=9)
        pdf.cell(80, 5, line)
    return y + 5 * (len(rest) + 2)


def _stacked(pdf: FPDF, labels: InvoiceLabels, style: Style) -> None:
    pdf.set_font("Helvetica", "B", 18)
    pdf.cell(0, 10, _title(labels, style), align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    top = pdf.get_y()

    def rest(address: str, vat: str) -> list[str]:
        return [*address.splitlines(), *([f"{style.word('vat_id')} {vat}"] if vat else [])]

    left = _party(
        pdf, pdf.l_margin, top, style.word("supplier"), labels.supplier,
        rest(labels.supplier_address, labels.supplier_vat),
    )  # fmt: skip
    right = _party(
        pdf, pdf.l_margin + pdf.epw / 2, top, style.word("customer"), labels.customer,
        rest(labels.customer_address, labels.customer_vat),
    )  # fmt: skip
    pdf.set_xy(pdf.l_margin, max(left, right) + 6)
    pairs = _details(labels, style)
    width = pdf.epw / 3
    pdf.set_font("Helvetica", size=8)
    for label, _ in pairs:
        pdf.cell(width, 5, label)
    pdf.ln()
    pdf.set_font("Helvetica", "B", 11)
    for _, value in pairs:
        pdf.cell(width, 6, value)
    pdf.ln()
    _reference(pdf, labels, style)
    pdf.ln(6)
    _items(pdf, labels, style, _columns(labels, style, with_tax=False))
    rows = _totals(labels, style)
    if pdf.will_page_break(20):
        pdf.add_page()
    pdf.ln(6)
    width = pdf.epw / 2 / len(rows)
    pdf.set_x(pdf.l_margin + pdf.epw / 2)
    pdf.set_font("Helvetica", size=8)
    for label, _ in rows:
        pdf.cell(width, 5, label, align="R")
    pdf.ln()
    pdf.set_x(pdf.l_margin + pdf.epw / 2)
    pdf.set_font("Helvetica", "B", 10)
    for _, amount in rows:
        pdf.cell(width, 6, style.money(amount, labels.currency), align="R")
    pdf.ln()


def _letterhead(pdf: FPDF, labels: InvoiceLabels, style: Style) -> None:
    pdf.set_font("Times", "B", 20)
    pdf.cell(0, 9, labels.supplier, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Times", size=10)
    _lines(pdf, labels.supplier_address)
    if labels.supplier_vat:
        pdf.cell(
            0, 5, f"{style.word('vat_id')} {labels.supplier_vat}", new_x="LMARGIN", new_y="NEXT"
        )
    # The sender line over the recipient's window (DIN 5008 and its cousins).
    pdf.set_y(max(pdf.get_y() + 8, 45))
    pdf.set_font("Times", "U", 7)
    pdf.cell(85, 4, f"{labels.supplier} · {_one_line(labels.supplier_address)}")
    window = pdf.get_y() + 5
    pdf.set_xy(pdf.l_margin, window)
    pdf.set_font("Times", size=11)
    _lines(pdf, "\n".join([labels.customer, *labels.customer_address.splitlines()]))
    if labels.customer_vat:
        _lines(pdf, f"{style.word('vat_id')} {labels.customer_vat}")
    below = pdf.get_y()
    for number, (label, value) in enumerate(_details(labels, style)):
        pdf.set_xy(pdf.l_margin + pdf.epw * 0.6, window + 5 * number)
        pdf.set_font("Times", size=10)
        pdf.cell(pdf.epw * 0.2, 5, label)
        pdf.cell(pdf.epw * 0.2, 5, value, align="R")
    pdf.set_xy(pdf.l_margin, max(below, window + 20) + 8)
    pdf.set_font("Times", "B", 14)
    pdf.cell(
        0, 8, f"{_title(labels, style)} {labels.invoice_number}", new_x="LMARGIN", new_y="NEXT"
    )
    _reference(pdf, labels, style)
    pdf.ln(3)
    _items(pdf, labels, style, _columns(labels, style, with_tax=False), carry=True)
    _totals_block(pdf, labels, style)


def _totals_row(pdf: FPDF, labels: InvoiceLabels, style: Style) -> None:
    pdf.set_font("Helvetica", "B", 13)
    pdf.cell(0, 7, labels.supplier, align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=9)
    _lines(pdf, labels.supplier_address, height=4.5, align="R")
    if labels.supplier_vat:
        _lines(pdf, f"{style.word('vat_id')}: {labels.supplier_vat}", height=4.5, align="R")
    pdf.ln(4)
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 9, _title(labels, style), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=10)
    for label, value in _details(labels, style):
        pdf.cell(40, 5.5, label)
        pdf.cell(0, 5.5, value, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.set_font("Helvetica", "B", 10)
    pdf.cell(0, 5, f"{style.word('customer')}: {labels.customer}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=9)
    _lines(pdf, labels.customer_address, height=4.5)
    _reference(pdf, labels, style)
    pdf.ln(5)
    if not style.currency_in_table:
        _currency_note(pdf, labels, style)
    pdf.set_font("Helvetica", size=9)
    columns = _columns(labels, style, with_tax=True)
    quantity = sum((item.quantity for item in labels.line_items), Decimal(0))
    currency = labels.currency
    last_row = [
        style.word("total_row"),
        style.quantity(quantity),
        "",
        style.cell(labels.subtotal, currency),
        style.cell(labels.tax, currency),
        style.cell(labels.total, currency),
    ]
    _items(pdf, labels, style, columns, last_row=last_row)
    pdf.ln(4)
    pdf.set_font("Helvetica", size=8)
    pdf.cell(0, 5, style.word("tax", rate=style.rate(labels.tax_rate)))


# ---- the receipt --------------------------------------------------------------------------------

_RECEIPT_WIDTH = 70.0  # mm between the margins of an 80 mm roll
_LINE = 3.8


def _receipt_height(labels: InvoiceLabels) -> float:
    return 10 + _LINE * (
        16 + 2 * len(labels.line_items) + len(labels.supplier_address.splitlines())
    )


def _receipt_line(pdf: FPDF, left: str, right: str = "", *, style: str = "") -> None:
    pdf.set_font("Courier", style, 8)
    pdf.cell(_RECEIPT_WIDTH * 0.6, _LINE, left)
    pdf.cell(_RECEIPT_WIDTH * 0.4, _LINE, right, align="R", new_x="LMARGIN", new_y="NEXT")


def _receipt(pdf: FPDF, labels: InvoiceLabels, style: Style) -> None:
    pdf.set_font("Courier", "B", 10)
    pdf.cell(0, 5, labels.supplier, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Courier", size=8)
    _lines(pdf, labels.supplier_address, height=_LINE, align="C")
    if labels.supplier_vat:
        _lines(pdf, f"{style.word('vat_id')} {labels.supplier_vat}", height=_LINE, align="C")
    pdf.ln(2)
    _lines(pdf, style.word("receipt_title"), height=_LINE, align="C")
    # The time of sale, from the receipt's own number so that it is part of the seed's drawing.
    minutes = sum(map(ord, labels.invoice_number)) % 600 + 480
    when = f"{style.date(labels.date)} {minutes // 60:02d}:{minutes % 60:02d}"
    _receipt_line(pdf, f"{style.word('receipt_number')} {labels.invoice_number}", when)
    rule = "-" * 40
    _lines(pdf, rule, height=_LINE)
    currency = labels.currency
    for item in labels.line_items:
        _receipt_line(pdf, item.description[:40])
        each = f"  {style.quantity(item.quantity)} x {style.amount(item.unit_price)}"
        _receipt_line(pdf, each, style.amount(item.amount))
    _lines(pdf, rule, height=_LINE)
    _receipt_line(pdf, style.word("total").upper(), style.money(labels.total, currency), style="B")
    given = (labels.total / 10).to_integral_value(rounding="ROUND_CEILING") * 10
    _receipt_line(pdf, style.word("paid"), style.amount(given))
    _receipt_line(pdf, style.word("change"), style.amount(given - labels.total))
    pdf.ln(1)
    _receipt_line(
        pdf, style.word("tax", rate=style.rate(labels.tax_rate)), style.amount(labels.tax)
    )
    _receipt_line(pdf, style.word("net"), style.amount(labels.subtotal))
    pdf.ln(2)
    _lines(pdf, style.word("thanks"), height=_LINE, align="C")


_LAYOUTS: dict[Layout, Callable[[FPDF, InvoiceLabels, Style], None]] = {
    Layout.BLOCK: _block,
    Layout.TABLE: _table,
    Layout.STACKED: _stacked,
    Layout.LETTERHEAD: _letterhead,
    Layout.RECEIPT: _receipt,
    Layout.TOTALS_ROW: _totals_row,
}
