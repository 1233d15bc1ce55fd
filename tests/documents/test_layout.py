"""Word boxes read from PDFs with pdfium (documents/layout.py)."""

from __future__ import annotations

import pypdfium2 as pdfium
import pytest

from documents.layout import pdf_page_layouts
from extraction.contract import PageLayout
from samples.invoices import invoice
from tests.support.placed_pdfs import make_pdf


def layouts(data: bytes) -> tuple[PageLayout, ...]:
    document = pdfium.PdfDocument(data)
    try:
        return pdf_page_layouts(document)
    finally:
        document.close()


def test_words_have_boxes_from_the_top_left_corner_of_their_page() -> None:
    data = make_pdf([[(72, 740, "Invoice INV-7")], [(300, 100, "Total 12.50 €")]])

    first, second = layouts(data)

    assert (first.number, second.number) == (1, 2)
    assert (first.width, first.height) == (612, 792)
    assert [word.text for word in first.words] == ["Invoice", "INV-7"]
    assert [word.text for word in second.words] == ["Total", "12.50", "€"]
    invoice_word = first.words[0]
    assert invoice_word.x0 == pytest.approx(72, abs=1)
    assert 40 < invoice_word.top < 52 < invoice_word.bottom < 60  # 792 - 740 = 52: the baseline
    total_word = second.words[0]
    assert total_word.top > 680  # near the bottom of the page
    assert total_word.x1 < second.words[1].x0


def test_text_placed_apart_without_a_space_makes_two_words() -> None:
    # Generators often place a label and its value as separate texts with no space between.
    data = make_pdf([[(72, 740, "Total"), (130, 740, "1,234.50")]])

    (page,) = layouts(data)

    assert [word.text for word in page.words] == ["Total", "1,234.50"]


def test_a_generated_invoice_has_every_word_of_its_supplier_and_total() -> None:
    generated = invoice(5, language="de-DE")

    (page,) = layouts(generated.pdf)

    words = [word.text for word in page.words]
    assert generated.labels.supplier.split()[0] in words
    assert "Gesamtbetrag" in words
    assert all(word.text.strip() == word.text and word.text for word in page.words)
