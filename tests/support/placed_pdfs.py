"""Real PDFs written by hand, each text placed where a test wants it, and what readers make of them.

One text object per label or value, a standard Type 1 font and a correct cross-reference table,
so pypdf reads them in strict mode and pdfium gives their word boxes. `layout_request` hands the
offline engine both, as the PDF reader will: the text of each page and its words with boxes.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

import pypdfium2 as pdfium
from pypdf import PdfReader

from documents.layout import pdf_page_layouts
from extraction.contract import ExtractionRequest
from extraction.fields import parse_fields

if TYPE_CHECKING:
    from documents.models import Document

# (x, y, text) in points from the bottom-left corner, or (x, y, text, font size); 11 pt otherwise.
Placed = tuple[int, int, str] | tuple[int, int, str, int]


def _pdf_string(text: str) -> str:
    escaped = []
    for byte in text.encode("cp1252"):
        char = chr(byte)
        if char in "()\\":
            escaped.append("\\" + char)
        elif 32 <= byte < 127:
            escaped.append(char)
        else:
            escaped.append(f"\\{byte:03o}")
    return "(" + "".join(escaped) + ")"


def _shown(item: Placed) -> str:
    size = item[3] if len(item) == 4 else 11
    return f"BT /F1 {size} Tf 1 0 0 1 {item[0]} {item[1]} Tm {_pdf_string(item[2])} Tj ET\n"


def make_pdf(pages: Sequence[Sequence[Placed]]) -> bytes:
    """A Letter-size PDF whose pages show each placed text in Helvetica, WinAnsi-encoded for €
    and £."""
    objects: dict[int, bytes] = {}
    font = 3 + 2 * len(pages)
    kids = []
    for number, page in enumerate(pages):
        page_id, content_id = 3 + 2 * number, 4 + 2 * number
        kids.append(f"{page_id} 0 R")
        stream = "".join(_shown(item) for item in page).encode("latin-1")
        objects[page_id] = (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 {font} 0 R >> >> /Contents {content_id} 0 R >>"
        ).encode()
        objects[content_id] = b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream)
    objects[1] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objects[2] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(pages)} >>".encode()
    objects[font] = (
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
    )
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for number in sorted(objects):
        offsets[number] = out.tell()
        out.write(b"%d 0 obj\n%s\nendobj\n" % (number, objects[number]))
    xref = out.tell()
    size = max(objects) + 1
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % size)
    for number in range(1, size):
        out.write(b"%010d 00000 n \n" % offsets[number])
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, xref))
    return out.getvalue()


def pdf_text(data: bytes) -> str:
    """What the PDF reader hands an engine: each page's text, pages separated by a form feed."""
    reader = PdfReader(io.BytesIO(data), strict=True)
    return "\f".join(page.extract_text() for page in reader.pages)


def rows(*lines: tuple[str, str] | str, top: int = 740) -> list[Placed]:
    """Lay out lines top-down: a string spans the line, a pair is a label and a value column."""
    placed: list[Placed] = []
    for number, line in enumerate(lines):
        y = top - 18 * number
        if isinstance(line, str):
            placed.append((72, y, line))
        else:
            placed.extend([(72, y, line[0]), (320, y, line[1])])
    return placed


def layout_request(data: bytes, fields: str, *, filename: str = "invoice.pdf") -> ExtractionRequest:
    """An extraction request for a PDF with its text and its pages' word boxes."""
    document = pdfium.PdfDocument(data)
    try:
        layout = pdf_page_layouts(document)
    finally:
        document.close()
    return ExtractionRequest(
        text=pdf_text(data),
        prompt="",
        fields=parse_fields(fields),
        filename=filename,
        content_type="application/pdf",
        layout=layout,
    )


def forget_word_boxes(document: Document, *words: str) -> None:
    """Drop `words` from the first page of the document's kept read result, as a page whose
    words pdfium gave no positions for: their text stays, their boxes go."""
    # Imported here: the rest of this module serves processes without Django (the local
    # engine's hash-seed test imports it).
    from documents.selectors import document_read_result
    from documents.services import read_result_store

    read = document_read_result(document=document)
    assert read is not None
    page = read.pages[0]
    kept = tuple(word for word in page.words if word[0] not in words)
    read_result_store(
        document=document,
        read=dataclasses.replace(read, pages=(dataclasses.replace(page, words=kept),)),
    )
