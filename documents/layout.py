"""A PDF page's text and its words with boxes, read with pdfium.

`read_page` gives one page's size, its text and its words, each word with its box in points from
the page's top-left corner; the reader sandbox's "read" operation (`documents.formats`) calls it
for every page, and what it returns is kept as the document's read result. `pdf_page_layouts`
gives the same words as `extraction.contract.PageLayout`s, for code that holds an open PDF.

It imports no Django (the sandbox's child has none), and `extraction` only when
`pdf_page_layouts` is called.

Characters are grouped into a word until a space, a line break or a gap wider than a fraction of
the font size: PDF generators often place words (and table cells) as separate text objects with
no space character between them, and only the distance says they are apart. Boxes are the
characters' loose (font) boxes, so every word on a line of one font has the same top and bottom
whatever its letters.

Reading characters one at a time through ctypes is what costs: the page's text comes from one
call, and each character then costs one call for its box, so a page reads at about the speed of
pdfium's own text extraction plus the boxes.
"""

from __future__ import annotations

import ctypes
import re
import struct
from typing import TYPE_CHECKING, NamedTuple

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

if TYPE_CHECKING:
    from extraction.contract import PageLayout

# A gap between two characters wider than this share of the font's height starts a new word.
_WORD_GAP = 0.25
# A character whose box is this share of the line's height away vertically is on another line.
_LINE_SHIFT = 0.5
# pdfium marks a hyphen that ends a line, where a word was split, as U+FFFE in the page's text
# (and U+0002 character by character); the page shows a hyphen.
_LINE_END_HYPHENS = str.maketrans({"\ufffe": "-", "\x02": "-"})
# Characters that are never part of a word: whitespace, and NUL for codes without a Unicode
# mapping (a word stops there, as it would at a character nobody can read).
_WORD = re.compile(r"[^\s\x00]+")
_RECT = struct.Struct("4f")  # FS_RECTF: left, top, right, bottom

# (text, x0, top, x1, bottom): points from the page's top-left corner, y growing downwards, to
# 1/100 pt.
WordBox = tuple[str, float, float, float, float]


class PageText(NamedTuple):
    width: float  # points
    height: float
    text: str  # lines end with "\n"; a line-end hyphen is "-"
    words: list[WordBox]


def read_page(page: pdfium.PdfPage) -> PageText:
    """One page's size, text and words."""
    left, bottom, right, top = (float(edge) for edge in page.get_bbox())
    textpage = page.get_textpage()
    try:
        handle = textpage.raw
        text = _text(handle)
        words = _words(handle, text, left, top)
    finally:
        textpage.close()
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return PageText(right - left, top - bottom, text, words)


def pdf_page_layouts(pdf: pdfium.PdfDocument) -> tuple[PageLayout, ...]:
    """Every page's words with their boxes, pages numbered from 1."""
    from extraction.contract import PageLayout, Word

    layouts = []
    for index in range(len(pdf)):
        page = pdf[index]
        try:
            read = read_page(page)
        finally:
            page.close()
        words = tuple(Word(*word) for word in read.words)
        layouts.append(PageLayout(index + 1, read.width, read.height, words))
    return tuple(layouts)


def _text(handle: pdfium_c.FPDF_TEXTPAGE) -> str:
    """The page's characters, one string character for each of pdfium's, in one call.

    pdfium's text can leave out or add characters against its list of characters (rarely; a
    character outside the Basic Multilingual Plane takes two UTF-16 units), and the words need
    the two aligned, so the characters are then asked for one at a time instead.
    """
    count = int(pdfium_c.FPDFText_CountChars(handle))
    if count <= 0:
        return ""
    # Two units a character: room for surrogate pairs, which pdfium writes without checking.
    buffer = (ctypes.c_ushort * (2 * count + 1))()
    written = int(pdfium_c.FPDFText_GetText(handle, 0, count, buffer))
    text = bytes(memoryview(buffer).cast("B")[: 2 * max(written - 1, 0)]).decode(
        "utf-16-le", errors="replace"
    )
    if len(text) != count:
        text = "".join(_char(int(pdfium_c.FPDFText_GetUnicode(handle, i))) for i in range(count))
    return text.translate(_LINE_END_HYPHENS)


def _char(code: int) -> str:
    """The character pdfium reports; surrogate halves and unmapped codes become NUL."""
    if code <= 0 or 0xD800 <= code <= 0xDFFF or code > 0x10FFFF:
        return "\x00"
    return chr(code)


def _words(handle: pdfium_c.FPDF_TEXTPAGE, text: str, left: float, top: float) -> list[WordBox]:
    """The words of a page whose characters are `text` (aligned with pdfium's character list)."""
    loose_box = pdfium_c.FPDFText_GetLooseCharBox
    rect = pdfium_c.FS_RECTF()
    rect_ref = ctypes.byref(rect)
    unpack = _RECT.unpack_from
    words: list[WordBox] = []
    append = words.append
    for match in _WORD.finditer(text):
        start, end = match.span()
        chars: list[str] = []
        x0 = y0 = x1 = y1 = 0.0  # the current word's box, in PDF units (y grows upwards)
        for index in range(start, end):
            if not loose_box(handle, index, rect_ref):
                continue
            c_left, c_top, c_right, c_bottom = unpack(rect)
            if c_left > c_right:
                c_left, c_right = c_right, c_left
            if c_bottom > c_top:
                c_bottom, c_top = c_top, c_bottom
            if chars:
                height = max(y1 - y0, c_top - c_bottom, 1.0)
                if (
                    c_left - x1 > _WORD_GAP * height
                    or c_right < x0
                    or abs((c_top + c_bottom) - (y1 + y0)) > 2 * _LINE_SHIFT * height
                ):
                    append(_word(chars, x0, y0, x1, y1, left, top))
                    chars = []
            if chars:
                if c_left < x0:
                    x0 = c_left
                if c_right > x1:
                    x1 = c_right
                if c_bottom < y0:
                    y0 = c_bottom
                if c_top > y1:
                    y1 = c_top
            else:
                x0, x1, y0, y1 = c_left, c_right, c_bottom, c_top
            chars.append(text[index])
        if chars:
            append(_word(chars, x0, y0, x1, y1, left, top))
    return words


def _word(
    chars: list[str], x0: float, y0: float, x1: float, y1: float, left: float, top: float
) -> WordBox:
    # To 1/100 pt (0.004 mm): finer than any renderer places text, and half the stored size.
    return (
        "".join(chars),
        round(x0 - left, 2),
        round(top - y1, 2),
        round(x1 - left, 2),
        round(top - y0, 2),
    )
