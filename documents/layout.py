"""Word boxes of a PDF's pages, read with pdfium: what a layout-aware engine gets beside the text.

`pdf_page_layouts` turns each page's characters into words (`extraction.contract.Word`), with
boxes in points from the page's top-left corner. It imports no Django, so the reader sandbox can
call it in its child process; for now the tests use it to give the offline engine the layout a
real PDF has.

Characters are grouped into a word until a space, a line break or a gap wider than a fraction of
the font size: PDF generators often place words (and table cells) as separate text objects with
no space character between them, and only the distance says they are apart.
"""

from __future__ import annotations

import ctypes

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from extraction.contract import PageLayout, Word

# A gap between two characters wider than this share of the font's height starts a new word.
_WORD_GAP = 0.25
# A character whose box is this share of the line's height away vertically is on another line.
_LINE_SHIFT = 0.5


def pdf_page_layouts(pdf: pdfium.PdfDocument) -> tuple[PageLayout, ...]:
    """Every page's words with their boxes, pages numbered from 1."""
    layouts = []
    for index in range(len(pdf)):
        page = pdf[index]
        try:
            layouts.append(page_layout(page, index + 1))
        finally:
            page.close()
    return tuple(layouts)


def page_layout(page: pdfium.PdfPage, number: int) -> PageLayout:
    """One page's words. Boxes are the characters' loose (font) boxes, so that every word on a
    line of one font has the same top and bottom whatever its letters."""
    left, bottom, right, top = (float(edge) for edge in page.get_bbox())
    textpage = page.get_textpage()
    try:
        words = _words(textpage, left, top)
    finally:
        textpage.close()
    return PageLayout(number=number, width=right - left, height=top - bottom, words=words)


def _words(textpage: pdfium.PdfTextPage, left: float, top: float) -> tuple[Word, ...]:
    handle = textpage.raw
    count = int(pdfium_c.FPDFText_CountChars(handle))
    rect = pdfium_c.FS_RECTF()
    words: list[Word] = []
    chars: list[str] = []
    x0 = y0 = x1 = y1 = 0.0  # the current word's box, in PDF units (y grows upwards)

    def flush() -> None:
        if chars:
            words.append(Word("".join(chars), x0 - left, top - y1, x1 - left, top - y0))
            chars.clear()

    for index in range(count):
        code = int(pdfium_c.FPDFText_GetUnicode(handle, index))
        char = _char(code)
        if not char or char.isspace() or pdfium_c.FPDFText_IsGenerated(handle, index) == 1:
            flush()
            continue
        if not pdfium_c.FPDFText_GetLooseCharBox(handle, index, ctypes.byref(rect)):
            continue
        c_left, c_right = sorted((float(rect.left), float(rect.right)))
        c_bottom, c_top = sorted((float(rect.bottom), float(rect.top)))
        if chars:
            height = max(y1 - y0, c_top - c_bottom, 1.0)
            apart = c_left - x1 > _WORD_GAP * height or c_right < x0
            other_line = abs((c_top + c_bottom) - (y1 + y0)) / 2 > _LINE_SHIFT * height
            if apart or other_line:
                flush()
        if chars:
            x0, x1 = min(x0, c_left), max(x1, c_right)
            y0, y1 = min(y0, c_bottom), max(y1, c_top)
        else:
            x0, x1, y0, y1 = c_left, c_right, c_bottom, c_top
        chars.append(char)
    flush()
    return tuple(words)


def _char(code: int) -> str:
    """The character pdfium reports; surrogate halves and unmapped codes are dropped."""
    if code <= 0 or 0xD800 <= code <= 0xDFFF:
        return ""
    try:
        return chr(code)
    except ValueError:
        return ""
