"""Generated invoices for tests of line items: the rows a reader should give, and an invoice
whose descriptions run over two lines, so that one of them can run over a page break."""

from __future__ import annotations

from dataclasses import replace

from samples.invoices import GeneratedInvoice, render_pdf


def expected_rows(generated: GeneratedInvoice) -> list[dict[str, str]]:
    """The line items as a table field with the four usual columns gives them."""
    return [
        {
            "description": " ".join(item.description.split()),
            "quantity": f"{item.quantity.normalize():f}",
            "unit price": f"{item.unit_price:.2f}",
            "amount": f"{item.amount:.2f}",
        }
        for item in generated.labels.line_items
    ]


def with_two_line_descriptions(generated: GeneratedInvoice) -> GeneratedInvoice:
    """The invoice with every description on two lines, each line naming its item (A07 on the
    first, S07 on the second)."""
    items = tuple(
        replace(item, description=f"{item.description} A{n:02d}\nSeriennummer S{n:02d}")
        for n, item in enumerate(generated.labels.line_items)
    )
    labels = replace(generated.labels, line_items=items)
    pdf, pages = render_pdf(labels)
    return GeneratedInvoice(pdf=pdf, labels=labels, pages=pages)


def broken_item(generated: GeneratedInvoice, pages: list[str]) -> int:
    """The one item of a `with_two_line_descriptions` invoice whose description starts on the
    first page and ends on the second, found in the pages' text."""
    count = len(generated.labels.line_items)
    first, second = pages[0], pages[1]
    spanning = [n for n in range(count) if f"A{n:02d}" in first and f"S{n:02d}" in second]
    assert len(spanning) == 1, "the page break falls inside one item's description"
    return spanning[0]
