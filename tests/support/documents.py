"""Documents the tests make for themselves, so the suite needs no file it did not write.

Invoices come from `samples.invoices`; this module makes the rest: text PDFs of one or more pages,
encrypted PDFs, image-only and broken ones, CSV, XLSX and an HTML page. The hostile PDFs that
provoke the reader's limits (bombs, CPU burners) are hand-built in `tests.support.pdfs`.
"""

from __future__ import annotations

import csv
import io
import random
import struct
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import openpyxl
from django.core.files.uploadedfile import SimpleUploadedFile
from fpdf import FPDF
from PIL import Image, ImageDraw
from pypdf import PdfReader, PdfWriter

from samples.invoices import invoice, invoices

# An HTML page, the kind of file a browser saves and a user then names "invoice.pdf".
HTML_PAGE = (
    b'<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8"><title>Invoice 17</title>'
    b"</head>\n<body><h1>Invoice 17</h1><p>Total: 12.50 EUR</p></body>\n</html>\n"
)


def _pdf() -> FPDF:
    pdf = FPDF()
    pdf.core_fonts_encoding = "windows-1252"
    pdf.set_creation_date(datetime(2024, 3, 1, tzinfo=UTC))  # the same bytes on every run
    return pdf


def text_pdf(*pages: Sequence[str]) -> bytes:
    """A PDF with a text layer: one page per sequence, each line drawn in Helvetica."""
    pdf = _pdf()
    pdf.set_auto_page_break(False)
    pdf.set_font("Helvetica", size=11)
    for lines in pages:
        pdf.add_page()
        for line in lines:
            pdf.cell(0, 5.5, line, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def report_lines(pages: int, lines: int = 40) -> list[list[str]]:
    """Seeded prose for `text_pdf`: `lines` lines a page (about 2,700 characters at 40)."""
    rng = random.Random(pages * 1000 + lines)  # noqa: S311 (seeded, not secret)
    words = (
        *("invoice", "ledger", "supplier", "payment", "quarter", "balance", "audit", "review"),
        *("revenue", "shipment", "account", "forecast", "margin", "budget", "order", "receipt"),
    )
    return [
        [
            f"Page {page} line {line}: " + " ".join(rng.choice(words) for _ in range(8)) + "."
            for line in range(1, lines + 1)
        ]
        for page in range(1, pages + 1)
    ]


def blank_pdf(pages: int) -> bytes:
    """`pages` empty A4 pages: no text, and cheap to make in any number (a page-count bomb)."""
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=595, height=842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def image_only_pdf(seed: int = 0, pages: int = 1) -> bytes:
    """A scan as a scanner makes it: each page one picture, no text layer. The pictures hold
    shapes, not writing, so even a reader with OCR finds no text in them."""
    rng = random.Random(seed)  # noqa: S311 (seeded, not secret)
    pdf = _pdf()
    for _ in range(pages):
        _add_picture_page(pdf, rng)
    return bytes(pdf.output())


def text_and_image_pdf(lines: Sequence[str], seed: int = 0) -> bytes:
    """Page 1 with a text layer (`lines` in Helvetica), page 2 a picture alone: a born-digital
    document with a scanned page in it (a signed delivery note, say)."""
    pdf = _pdf()
    pdf.set_font("Helvetica", size=11)
    pdf.add_page()
    for line in lines:
        pdf.cell(0, 5.5, line, new_x="LMARGIN", new_y="NEXT")
    _add_picture_page(pdf, random.Random(seed))  # noqa: S311 (seeded, not secret)
    return bytes(pdf.output())


def _add_picture_page(pdf: FPDF, rng: random.Random) -> None:
    picture = Image.new("RGB", (400, 560), "white")
    draw = ImageDraw.Draw(picture)
    for _ in range(12):
        x, y = rng.randrange(360), rng.randrange(520)
        colour = tuple(rng.randrange(256) for _ in range(3))
        draw.ellipse((x, y, x + rng.randrange(10, 40), y + rng.randrange(10, 40)), colour)
    pdf.add_page()
    pdf.image(picture, x=0, y=0, w=pdf.w, h=pdf.h)


def encrypted_pdf(
    source: bytes, *, user_password: str, owner_password: str | None = None, algorithm: str
) -> bytes:
    """`source` encrypted by pypdf ("RC4-128", "AES-256", …). With an empty user password and an
    owner password, anyone can open it. Not byte-for-byte repeatable: pypdf draws the file key."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(source)))
    writer.encrypt(user_password, owner_password, algorithm=algorithm)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def truncated_pdf(source: bytes) -> bytes:
    """The first half of `source`, as an interrupted download leaves it."""
    return source[: len(source) // 2]


def csv_bytes(rows: Sequence[Sequence[str]], *, encoding: str, delimiter: str) -> bytes:
    """Rows as a spreadsheet exports them, in `encoding` ("utf-8-sig" writes a BOM)."""
    out = io.StringIO(newline="")
    csv.writer(out, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode(encoding)


def xlsx_bytes(sheets: dict[str, Sequence[Sequence[Any]]]) -> bytes:
    """A workbook with one sheet per entry, in order, rows as given."""
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for title, rows in sheets.items():
        sheet = workbook.create_sheet(title)
        for row in rows:
            sheet.append(list(row))
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def declare_uncompressed_size(archive: bytes, member: str, size: int) -> bytes:
    """The zip (an XLSX) with `member`'s central-directory entry claiming `size` uncompressed
    bytes: a zip bomb as the reader's guard sees it, without inflating anything."""
    data = bytearray(archive)
    at = data.find(b"PK\x01\x02")
    while at != -1:
        name_length = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46 : at + 46 + name_length] == member.encode():
            struct.pack_into("<I", data, at + 24, size)
        at = data.find(b"PK\x01\x02", at + 46)
    return bytes(data)


# The PDFs most tests upload: the same bytes every time, so a test can compare what was stored.
INVOICE_PDF = invoice(1).pdf  # one page
REPORT_PDF = text_pdf(*report_lines(4))  # four pages


def invoice_upload(name: str = "invoice.pdf") -> SimpleUploadedFile:
    """INVOICE_PDF as a form or the API receives it."""
    return SimpleUploadedFile(name, INVOICE_PDF)


def report_upload(name: str = "report.pdf") -> SimpleUploadedFile:
    """REPORT_PDF as a form or the API receives it."""
    return SimpleUploadedFile(name, REPORT_PDF)


def invoice_uploads(count: int, seed: int = 0) -> list[SimpleUploadedFile]:
    """`count` distinct readable PDFs, named after their invoice numbers."""
    return [SimpleUploadedFile(made.filename, made.pdf) for made in invoices(count, seed)]
