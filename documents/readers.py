"""Turning a stored upload into text, and a PDF's pages into words with boxes, once, for the
extraction engines and everything after them.

Every format is read by the sandbox's "read" operation (`documents.formats`, in a child process of
`documents.sandbox`) under CPU, memory and wall-clock limits, so a hostile file fails its document
and never the worker, and the worker's memory does not grow with what a file makes the parser
hold. This module turns the settings into that operation's limits and its refusals into
`ExtractionError`s with a stable code and a message naming the file.

Images (PNG, JPEG, TIFF), and the pages of a PDF that have no text layer (a scan), have no text
but what OCR reads in them: `documents.ocr_reader`, page by page under the OCR limits
(SHEAF_OCR_*; a PDF's first SHEAF_OCR_MAX_PAGES scanned pages, its text marked cut when it has
more). A PDF fails with no_text_layer only when no page holds text and OCR finds nothing
legible on any (or this server has no OCR).

Limits, Django settings whose defaults live in batchsite/settings.py only:
SHEAF_READER_CPU_SECONDS, SHEAF_READER_MEMORY_MB, SHEAF_READER_WALL_SECONDS, SHEAF_READER_PROCESSES,
SHEAF_READER_RECYCLE_MB, SHEAF_MAX_TEXT_CHARS, SHEAF_MAX_PDF_PAGES, SHEAF_XLSX_MAX_UNCOMPRESSED_MB,
SHEAF_XLSX_MAX_SHARED_STRINGS, SHEAF_XLSX_MAX_CELLS.
"""

from __future__ import annotations

import base64
import os
from dataclasses import replace
from pathlib import Path

from django.conf import settings

from documents import einvoices, sandbox
from documents.ocr_reader import OcrPage, ocr_available, ocr_document
from documents.readresults import ReadPage, ReadResult
from documents.uploads import IMAGE_EXTENSIONS, KINDS, SUPPORTED
from extraction.contract import PAGE_BREAK, ExtractionError

__all__ = ["ReadResult", "read_document"]

_FORMATS = {kind.content_type: kind for kind in KINDS.values()}

_MESSAGES = {
    "encrypted": "{file} is a password-protected PDF; remove the password and upload it again.",
    "too_large": "{file} is too large to read: {reason}.",
    "timeout": "{file} took too long to read: {reason}.",
}
_MALFORMED = {
    "pdf": "{file} is not a readable PDF: {reason}.",
    "csv": "{file} is not a readable CSV file: {reason}.",
    "xlsx": "{file} is not a readable XLSX file: {reason}.",
}


def read_document(path: str | Path, *, content_type: str, filename: str) -> ReadResult:
    """The text of one stored upload, and a PDF's pages. Thread-safe.

    Raises ExtractionError (permanent) with code encrypted, no_text_layer, malformed, too_large,
    timeout or unsupported_type; OSError if the stored file itself cannot be opened.
    """
    kind = _FORMATS.get(content_type)
    if kind is None:
        raise ExtractionError(
            "unsupported_type",
            f"{filename}: {content_type} files cannot be read; use {SUPPORTED}.",
        )
    if kind.extension == "xml":
        # Parsed in the worker by Sheaf's hardened parser (no DTD, no entities, size, depth and
        # element limits), not in the sandbox: lxml's parser is C, bounded by those limits.
        uploaded = einvoices.read_xml_upload(
            Path(path), filename, max_chars=settings.SHEAF_MAX_TEXT_CHARS
        )
        return ReadResult(
            uploaded.text, page_count=None, truncated=uploaded.truncated, einvoice_xml=uploaded.xml
        )
    if kind.extension in IMAGE_EXTENSIONS:
        return _read_image(path, extension=kind.extension, filename=filename)
    limits = sandbox.Limits(
        cpu_seconds=settings.SHEAF_READER_CPU_SECONDS,
        memory_mb=settings.SHEAF_READER_MEMORY_MB,
        wall_seconds=settings.SHEAF_READER_WALL_SECONDS,
    )
    arguments = {
        "path": os.path.abspath(path),
        "format": kind.extension,
        "max_chars": settings.SHEAF_MAX_TEXT_CHARS,
        "max_pages": settings.SHEAF_MAX_PDF_PAGES,
        "xlsx_max_unpacked_mb": settings.SHEAF_XLSX_MAX_UNCOMPRESSED_MB,
        "xlsx_max_shared_strings": settings.SHEAF_XLSX_MAX_SHARED_STRINGS,
        "xlsx_max_cells": settings.SHEAF_XLSX_MAX_CELLS,
        "max_xml_bytes": einvoices.max_xml_bytes(),
    }
    try:
        try:
            # pdfium alone reads a sound PDF; pypdf checks first what pdfium finds unsound.
            text = sandbox.run("read", {**arguments, "checks_first": False}, limits)
        except sandbox.SandboxError as error:
            # Without pypdf's stream limit, pdfium inflates a decompression bomb until the
            # memory limit stops it: read it again with the checks first, so it is refused
            # for what it is (and a file that just needs the memory fails as before).
            if kind.extension != "pdf" or error.details.get("limit") != "memory":
                raise
            text = sandbox.run("read", {**arguments, "checks_first": True}, limits)
    except sandbox.SandboxError as error:
        template = _MESSAGES.get(error.code) or _MALFORMED[kind.extension]
        raise ExtractionError(
            error.code,
            template.format(file=filename, reason=error.reason),
            page_count=error.details.get("page_count"),
        ) from None
    read = ReadResult.from_answer(text)
    if kind.extension == "pdf":
        read = _with_scanned_pages(read, path, filename=filename)
    attached = text.get("einvoice")
    if not attached:
        return read
    # Parsed here by Sheaf's hardened parser: the child only found the attachment's bytes.
    xml = einvoices.embedded_xml(attached[0], base64.b64decode(attached[1]), filename)
    return replace(read, einvoice_xml=xml or "")


def _with_scanned_pages(read: ReadResult, path: str | Path, *, filename: str) -> ReadResult:
    """`read` with its pages that have no text layer read by OCR instead: the first
    SHEAF_OCR_MAX_PAGES of them, the text marked cut when there are more."""
    scanned_pages = [page.number for page in read.pages if not page.text_layer]
    if not scanned_pages:
        return read
    has_text = any(page.text_layer for page in read.pages)
    if has_text and not ocr_available():
        return read  # the text it has is still worth extracting; the scanned pages stay empty
    limit = settings.SHEAF_OCR_MAX_PAGES
    cut = read.truncated or len(scanned_pages) > limit
    try:
        scanned = ocr_document(
            path, extension="pdf", filename=filename, pages=scanned_pages[:limit]
        )
    except ExtractionError as error:
        # Without OCR the PDF's page count is still known (an engine that reads scans needs it).
        if error.page_count is None:
            error.page_count = read.page_count
        raise
    by_number = {page.layout.number: page for page in scanned.pages}
    # The page keeps the size the PDF gives it; OCR's is the rendered image's, rounded.
    pages = tuple(
        replace(_ocr_read_page(by_number[page.number]), width=page.width, height=page.height)
        if page.number in by_number
        else page
        for page in read.pages
    )
    if not any(page.source for page in pages):
        raise ExtractionError(
            "no_text_layer",
            f"{filename} has no text layer: its pages are images in which OCR found no text.",
            page_count=read.page_count,
        )
    return _capped(pages, read.page_count, einvoice_xml=read.einvoice_xml, cut=cut)


def _read_image(path: str | Path, *, extension: str, filename: str) -> ReadResult:
    """An image's text is what OCR reads in it, page by page (a TIFF may hold several)."""
    scanned = ocr_document(path, extension=extension, filename=filename)
    if not any(page.legible for page in scanned.pages):
        raise ExtractionError(
            "no_text_layer",
            f"{filename} is an image in which OCR found no text.",
            page_count=scanned.page_count,
        )
    pages = tuple(_ocr_read_page(page) for page in scanned.pages)
    return _capped(pages, scanned.page_count)


def _ocr_read_page(page: OcrPage) -> ReadPage:
    return ReadPage(
        number=page.layout.number,
        width=page.layout.width,
        height=page.layout.height,
        text=page.text.replace("\x00", "").replace(PAGE_BREAK, "\n"),
        words=tuple((w.text, w.x0, w.top, w.x1, w.bottom) for w in page.layout.words),
        text_layer=False,
        source="ocr" if page.legible else None,
        ocr_confidence=page.layout.ocr_confidence,
    )


def _capped(
    pages: tuple[ReadPage, ...],
    page_count: int | None,
    *,
    einvoice_xml: str = "",
    cut: bool = False,
) -> ReadResult:
    """The result of `pages`, their texts joined, cut at SHEAF_MAX_TEXT_CHARS: each page keeps
    the part of its text that is in the document's text, a page past the cut is left out."""
    text = PAGE_BREAK.join(page.text for page in pages)
    limit = settings.SHEAF_MAX_TEXT_CHARS
    if len(text) > limit:
        text, cut = text[:limit], True
        kept = text.split(PAGE_BREAK)
        pages = tuple(replace(page, text=part) for page, part in zip(pages, kept, strict=False))
    return ReadResult(text, page_count, cut, pages=pages, einvoice_xml=einvoice_xml)
