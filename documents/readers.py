"""Turning a stored upload into text, once, for the extraction engines.

PDFs are parsed in sandboxed child processes (`documents.pdf_sandbox`), which also hand back the
e-invoice XML a PDF carries; e-invoice XML, uploaded or from a PDF, is parsed by
`documents.einvoices`; CSV, XLSX and TXT are read here, in the worker, with bounded input: at most
what the character cap can use, and for XLSX a check of the zip's declared uncompressed size
before anything is inflated. Every failure caused by
the file is an `ExtractionError` with a stable code and a message naming the file.

Limits, Django settings whose defaults live in batchsite/settings.py only:
SHEAF_READER_CPU_SECONDS, SHEAF_READER_MEMORY_MB, SHEAF_READER_WALL_SECONDS, SHEAF_READER_PROCESSES,
SHEAF_MAX_TEXT_CHARS, SHEAF_MAX_PDF_PAGES, SHEAF_XLSX_MAX_UNCOMPRESSED_MB, SHEAF_XML_MAX_MB.
"""

from __future__ import annotations

import codecs
import csv
import datetime
import io
import os
import re
import time
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

from documents import einvoices, pdf_sandbox
from documents.uploads import KINDS, SUPPORTED
from extraction.contract import PAGE_BREAK, ExtractionError

_SNIFF_CHARS = 16_384


@dataclass(frozen=True)
class ReadResult:
    text: str  # pages joined with "\f"
    page_count: int | None  # PDF: pages; XLSX: sheets (one "page" each); CSV and TXT: None
    truncated: bool  # text was cut at SHEAF_MAX_TEXT_CHARS
    einvoice_xml: str = ""  # e-invoice XML (uploaded, or embedded in the PDF), as kept


def read_document(path: str | Path, *, content_type: str, filename: str) -> ReadResult:
    """The text of one stored upload. Thread-safe.

    Raises ExtractionError (permanent) with code encrypted, no_text_layer, malformed, too_large,
    timeout or unsupported_type; OSError if the stored file itself cannot be opened.
    """
    max_chars = settings.SHEAF_MAX_TEXT_CHARS
    deadline = time.monotonic() + settings.SHEAF_READER_WALL_SECONDS
    if content_type == KINDS["pdf"].content_type:
        return _read_pdf(path, filename, max_chars)
    if content_type == KINDS["xlsx"].content_type:
        return _read_xlsx(Path(path), filename, max_chars, deadline)
    if content_type == KINDS["csv"].content_type:
        return _read_csv(Path(path), filename, max_chars, deadline)
    if content_type == KINDS["txt"].content_type:
        text, truncated = _capped(*_decode(Path(path), max_chars), max_chars=max_chars)
        return ReadResult(text, page_count=None, truncated=truncated)
    if content_type == KINDS["xml"].content_type:
        xml = einvoices.read_xml_upload(Path(path), filename, max_chars=max_chars)
        return ReadResult(xml.text, page_count=None, truncated=xml.truncated, einvoice_xml=xml.xml)
    raise ExtractionError(
        "unsupported_type", f"{filename}: {content_type} files cannot be read; use {SUPPORTED}."
    )


def _reason(error: Exception) -> str:
    """The first line of a library's error, without its full stop (messages add their own)."""
    lines = str(error).strip().splitlines() or [type(error).__name__]
    return lines[0][:200].rstrip(".")


def _capped(text: str, cut: bool = False, *, max_chars: int) -> tuple[str, bool]:
    text = text.replace("\x00", "")  # PostgreSQL text cannot hold NUL
    if len(text) > max_chars:
        return text[:max_chars], True
    return text, cut


# ---- PDF --------------------------------------------------------------------------------------

_PDF_MESSAGES = {
    "encrypted": "{file} is a password-protected PDF; remove the password and upload it again.",
    "no_text_layer": (
        "{file} has no text layer: the pages are images. Run it through OCR and upload it again."
    ),
    "malformed": "{file} is not a readable PDF: {reason}.",
    "too_large": "{file} is too large to read: {reason}.",
    "timeout": "{file} took too long to read: {reason}.",
}


def _read_pdf(path: str | Path, filename: str, max_chars: int) -> ReadResult:
    limits = pdf_sandbox.Limits(
        cpu_seconds=settings.SHEAF_READER_CPU_SECONDS,
        memory_mb=settings.SHEAF_READER_MEMORY_MB,
        wall_seconds=settings.SHEAF_READER_WALL_SECONDS,
        max_pages=settings.SHEAF_MAX_PDF_PAGES,
        max_chars=max_chars,
        max_xml_bytes=einvoices.max_xml_bytes(),
    )
    processes = min(os.cpu_count() or 1, settings.SHEAF_READER_PROCESSES)
    try:
        pdf = pdf_sandbox.read_pdf(os.path.abspath(path), limits, processes=processes)
    except pdf_sandbox.SandboxError as error:
        message = _PDF_MESSAGES[error.code].format(file=filename, reason=error.reason)
        raise ExtractionError(error.code, message, page_count=error.page_count) from None
    xml = einvoices.embedded_xml(*pdf.einvoice, filename) if pdf.einvoice else None
    return ReadResult(pdf.text, pdf.page_count, pdf.truncated, einvoice_xml=xml or "")


# ---- CSV and TXT ------------------------------------------------------------------------------


def _decode(path: Path, max_chars: int) -> tuple[str, bool]:
    """Text as `documents.uploads` accepted it: UTF-16 with a BOM, else UTF-8 (BOM or not), else
    Windows-1252; and whether the file goes on past what was read.

    Only the bytes the character cap can use are read (4 per character at most), so a 50 MB upload
    costs no more memory than a 2 MB one.
    """
    budget = 4 * max_chars + 4
    with path.open("rb") as stream:
        data = stream.read(budget + 1)
    more = len(data) > budget
    data = data[:budget]
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        attempts = [("utf-16", "replace")]
    else:
        attempts = [("utf-8-sig", "strict"), ("cp1252", "replace")]  # cp1252 leaves 5 bytes unset
    for encoding, errors in attempts:
        try:
            # Incremental, so a character split at the read budget is not an error.
            return codecs.getincrementaldecoder(encoding)(errors).decode(data, final=not more), more
        except UnicodeDecodeError:
            continue
    raise AssertionError("cp1252 with errors='replace' decodes any bytes")


def _read_csv(path: Path, filename: str, max_chars: int, deadline: float) -> ReadResult:
    text, more = _decode(path, max_chars)
    if more:
        text = text[: text.rfind("\n") + 1]  # the last row was cut by the read budget
    sample = text[:_SNIFF_CHARS]
    try:
        dialect: Any = csv.Sniffer().sniff(
            sample[: sample.rfind("\n") + 1] or sample, delimiters=",;\t|"
        )
    except csv.Error:
        dialect = csv.excel
    rows = csv.reader(io.StringIO(text.replace("\x00", ""), newline=""), dialect)
    try:
        rendered, cut = _joined(_table_lines(rows, filename, deadline), max_chars)
    except csv.Error as error:
        raise ExtractionError(
            "malformed", f"{filename} is not a readable CSV file: {_reason(error)}."
        ) from None
    return ReadResult(rendered, page_count=None, truncated=cut or more)


# ---- XLSX -------------------------------------------------------------------------------------


def _read_xlsx(path: Path, filename: str, max_chars: int, deadline: float) -> ReadResult:
    from openpyxl import load_workbook

    limit_mb = settings.SHEAF_XLSX_MAX_UNCOMPRESSED_MB
    try:
        with zipfile.ZipFile(path) as archive:
            # zipfile never inflates an entry past its declared size, so the declared total bounds
            # what openpyxl can unpack, whatever the compressed bytes say.
            declared = sum(entry.file_size for entry in archive.infolist())
    except zipfile.BadZipFile as error:
        raise ExtractionError(
            "malformed", f"{filename} is not a readable XLSX file: {_reason(error)}."
        ) from None
    if declared > limit_mb * 2**20:
        raise ExtractionError(
            "too_large",
            f"{filename} is too large to read: it unpacks to {declared / 2**20:,.0f} MB "
            f"and the limit is {limit_mb:,} MB.",
        )
    try:
        workbook = load_workbook(path, read_only=True, data_only=True, keep_links=False)
    except Exception as error:  # openpyxl raises anything from KeyError to its own types
        raise ExtractionError(
            "malformed", f"{filename} is not a readable XLSX file: {_reason(error)}."
        ) from None
    try:
        sheets = workbook.worksheets
        text, cut = _joined(_workbook_lines(sheets, filename, deadline), max_chars)
    finally:
        workbook.close()
    return ReadResult(text, page_count=len(sheets), truncated=cut)


def _workbook_lines(sheets: list[Any], filename: str, deadline: float) -> Iterator[str]:
    """Each sheet is a page headed "Sheet: <name>", its cells rendered like CSV rows."""
    for number, sheet in enumerate(sheets):
        # The declared <dimension> could be A1:XFD1048576; padding rows to it is a CPU bomb.
        sheet.reset_dimensions()
        yield f"{PAGE_BREAK if number else ''}Sheet: {sheet.title}"
        rows = ([_cell_text(value) for value in row] for row in sheet.iter_rows(values_only=True))
        yield from _table_lines(rows, filename, deadline)


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime.datetime):
        # Excel has no date type: a date is a datetime at midnight.
        if value.time() == datetime.time():
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    return str(value)


# ---- rendering rows ---------------------------------------------------------------------------

# A cell made only of digits, amounts, dates and punctuation is a value, never a column label.
_VALUE_LIKE = re.compile(r"[\d\s.,:;/$€£¥%+\-()]*")


def _table_lines(rows: Iterable[list[str]], filename: str, deadline: float) -> Iterator[str]:
    """Rows as lines of text, shaped for label/value extraction:

    - a table whose first row is a header (3 or more distinct labels, none of them value-like)
      gives one line per row with every value labelled:
      ``Invoice: INV-17 | Date: 2024-01-03 | Total: 12.50``; the bare header line is not repeated,
      so each value appears once, next to its label;
    - a row with exactly two filled cells is a label and its value: ``Total: 12.50``. Two-column
      files are read this way rather than as tables, because spreadsheets laid out as forms
      ("Invoice number" in A3, its value in B3) are common and a header guess would pair every
      label with the wrong value;
    - any other row is its filled cells joined with `` | ``.

    Empty cells are dropped and whitespace inside a cell collapses to single spaces: one row is one
    line, and form feeds stay reserved for page breaks.
    """
    header: list[str] | None = None
    first = True
    rows_under_header = 0
    for row in rows:
        if time.monotonic() > deadline:
            raise ExtractionError("timeout", _took_too_long(filename))
        cells = [" ".join(cell.split()) for cell in row]
        filled = [cell for cell in cells if cell]
        if not filled:
            continue
        if first:
            first = False
            if _is_header(filled):
                header = cells
                continue
        if header is not None:
            yield " | ".join(
                f"{header[i]}: {cell}" if i < len(header) and header[i] else cell
                for i, cell in enumerate(cells)
                if cell
            )
            rows_under_header += 1
        elif len(filled) == 2:
            yield f"{filled[0].rstrip(': ')}: {filled[1]}"
        else:
            yield " | ".join(filled)
    if header is not None and not rows_under_header:
        yield " | ".join(cell for cell in header if cell)


def _took_too_long(filename: str) -> str:
    seconds = settings.SHEAF_READER_WALL_SECONDS
    return f"{filename} took too long to read: it took more than {seconds:g} s."


def _is_header(cells: list[str]) -> bool:
    return (
        len(cells) >= 3
        and len(set(cells)) == len(cells)
        and not any(_VALUE_LIKE.fullmatch(cell) for cell in cells)
    )


def _joined(lines: Iterable[str], max_chars: int) -> tuple[str, bool]:
    """Lines joined with newlines and cut at the cap; stops pulling lines once past it."""
    kept: list[str] = []
    size = -1
    for line in lines:
        kept.append(line)
        size += len(line) + 1
        if size > max_chars:
            break
    return _capped("\n".join(kept), max_chars=max_chars)
