"""The sandbox's "read" operation for PDFs (`documents.formats` imports it on a PDF's first read,
so a child that reads only CSV, TXT and XLSX never loads pypdf and pdfium).

A PDF is read with both libraries, each for what it does best. pdfium (`documents.layout`) reads
each page's text and words several times faster than pypdf's text extraction, and reads a sound
file alone (`_read_sound_pdf`). pypdf, pure Python under the sandbox's limits, checks first a
file that pdfium finds unsound, or every file when asked (`checks_first`, `_read_checked_pdf`):
the structure (a cyclic page tree is malformed), the encryption (the empty password opens what
it can), the page count against the limit before any page is parsed, and each page's content
streams, inflated under a size limit before pdfium sees them (pdfium inflates without one, and
only stops at the memory limit).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pypdf
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from pypdf import PasswordType, PdfReader, PdfWriter
from pypdf.errors import LimitReachedError
from pypdf.generic import ArrayObject, StreamObject

from documents.formats import PAGE_BREAK, Text, reason_of
from documents.layout import read_page
from documents.pdf_attachments import AttachmentTooLarge, invoice_attachment
from documents.sandbox import Refused

if TYPE_CHECKING:
    from documents.readresults import PageRecord

# A text content stream this size is thousands of pages; past it pypdf stops inflating
# (LimitReachedError) instead of expanding a bomb until the memory limit.
STREAM_MAX_BYTES = 64 * 2**20


pypdf.overwrite_configuration(
    disable_legacy_handling=True,  # skips a per-reader scan for deprecated module constants
    jbig2dec_binary=None,  # never start another program from the sandbox
    zlib_maximum_output_length=STREAM_MAX_BYTES,
    lzw_maximum_output_length=STREAM_MAX_BYTES,
    run_length_maximum_output_length=STREAM_MAX_BYTES,
    brotli_maximum_output_length=STREAM_MAX_BYTES,
    jbig2_maximum_output_length=STREAM_MAX_BYTES,
    array_based_stream_maximum_output_length=STREAM_MAX_BYTES,
)


def read_pdf(
    path: str, max_pages: int, max_chars: int, *, checks_first: bool, max_xml_bytes: int
) -> Text:
    with open(path, "rb") as stream:
        data = stream.read()
    read = None if checks_first else _read_sound_pdf(data, max_pages, max_chars)
    if read is None:
        read = _read_checked_pdf(data, max_pages, max_chars)
    pages, page_count = read
    # Pages without a text layer come back empty: documents.readers has them OCRed.
    text = PAGE_BREAK.join(page["text"] for page in pages)
    truncated = len(text) > max_chars
    if truncated:
        # Each page keeps the part of its text that is in the document's text, so the pages'
        # texts still join to it; a page past the cut is left out.
        text = text[:max_chars]
        kept = text.split(PAGE_BREAK)
        pages = pages[: len(kept)]
        for page, part in zip(pages, kept, strict=True):
            page["text"] = part
    attached = _attached_invoice(data, max_xml_bytes)
    einvoice = (attached[0], base64.b64encode(attached[1]).decode()) if attached else None
    return Text(text, page_count, truncated, tuple(pages), einvoice=einvoice)


def _attached_invoice(data: bytes, max_xml_bytes: int) -> tuple[str, bytes] | None:
    """The e-invoice XML the PDF carries, found by pdfium; None when it has none, or when pdfium
    cannot open the file as it is (the pages were then read from pypdf's decrypted copy, and an
    e-invoice is never encrypted)."""
    try:
        document = pdfium.PdfDocument(data)
    except pdfium.PdfiumError:
        return None
    try:
        return invoice_attachment(document, max_bytes=max_xml_bytes)
    except AttachmentTooLarge as error:
        raise Refused("too_large", str(error)) from None
    except pdfium.PdfiumError as error:
        raise Refused("malformed", f"its embedded e-invoice cannot be read ({error})") from None
    finally:
        document.close()


def _read_sound_pdf(
    data: bytes, max_pages: int, max_chars: int
) -> tuple[list[PageRecord], int] | None:
    """The pages of a PDF that pdfium opens as it is, read by pdfium alone; None when pypdf
    should check it first (`_read_checked_pdf`): pdfium could not open it (a password, damage),
    had to rebuild its cross-reference table (a truncated or edited file), or failed on a page.
    Those files then get pypdf's refusals and reasons.

    pypdf's checks cost a third of the reading of a one-page invoice and find nothing in a
    sound file. The one thing they stop that pdfium does not is a decompression bomb, which
    makes pdfium abort at the memory limit; `documents.readers` then reads the file again with
    the checks first, so a bomb is still refused by pypdf's stream limit.
    """
    try:
        document = pdfium.PdfDocument(data)
    except pdfium.PdfiumError:
        return None
    try:
        if not pdfium_c.FPDF_DocumentHasValidCrossReferenceTable(document):
            return None
        page_count = len(document)
        if page_count == 0:
            return None
        _check_page_count(page_count, max_pages)
        return _page_records(document, page_count, max_chars), page_count
    except (Refused, OSError, MemoryError):
        raise
    except Exception:
        return None
    finally:
        document.close()


def _read_checked_pdf(data: bytes, max_pages: int, max_chars: int) -> tuple[list[PageRecord], int]:
    """The pages of a PDF that pypdf has checked: its structure (a cyclic page tree is
    malformed), its encryption (the empty password opens what it can), the page count against
    the limit before any page is parsed, and each page's content streams, inflated under a size
    limit before pdfium parses the page."""
    page_number = 0
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not _opens_without_password(reader, PasswordType):
            raise Refused("encrypted")
        page_count = len(reader.pages)
        if page_count == 0:
            raise Refused("malformed", "it has no pages")
        _check_page_count(page_count, max_pages)
        document = _pdfium_document(data, reader)
        try:

            def inflate(number: int) -> None:
                nonlocal page_number
                page_number = number
                _inflate_contents(reader.pages[number - 1])

            return _page_records(document, page_count, max_chars, before=inflate), page_count
        finally:
            document.close()
    except (Refused, OSError, MemoryError):
        raise
    except LimitReachedError as error:
        where = f"page {page_number}" if page_number else "it"
        reason = f"{where} goes past a safety limit of the PDF reader ({reason_of(error)})"
        raise Refused("too_large", reason) from None
    except Exception as error:
        reason = f"page {page_number}: {reason_of(error)}" if page_number else reason_of(error)
        raise Refused("malformed", reason) from None


def _check_page_count(page_count: int, max_pages: int) -> None:
    if page_count > max_pages:
        raise Refused("too_large", f"it has {page_count:,} pages and the limit is {max_pages:,}")


def _page_records(
    document: pdfium.PdfDocument,
    page_count: int,
    max_chars: int,
    *,
    before: Callable[[int], None] | None = None,
) -> list[PageRecord]:
    """Every page in order, until their texts go past the character cap; `before` is called
    with each page's number before pdfium parses it."""
    pages: list[PageRecord] = []
    size = -1
    for number in range(1, page_count + 1):
        if before is not None:
            before(number)
        pages.append(_page_record(document, number))
        size += len(pages[-1]["text"]) + 1
        if size > max_chars:
            break
    return pages


def _pdfium_document(data: bytes, reader: PdfReader) -> pdfium.PdfDocument:
    """pdfium's view of a PDF that pypdf opened.

    pdfium tries the empty password as the user's, not as the owner's where AES-256 (R5, R6)
    allows an empty owner password; pypdf opens those, so pdfium reads pypdf's decrypted copy.
    """
    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as error:
        if error.err_code != pdfium_c.FPDF_ERR_PASSWORD:
            raise
        if not reader.is_encrypted:
            raise Refused("encrypted") from None
    decrypted = io.BytesIO()
    PdfWriter(clone_from=reader).write(decrypted)
    return pdfium.PdfDocument(decrypted.getvalue())


def _inflate_contents(page: Any) -> None:
    """Inflate the page's content streams with pypdf, whose limits stop a decompression bomb
    (LimitReachedError) where pdfium would inflate it to the memory limit and abort."""
    contents = page.get("/Contents")
    if contents is None:
        return
    contents = contents.get_object()
    for stream in contents if isinstance(contents, ArrayObject) else [contents]:
        stream = stream.get_object()
        if isinstance(stream, StreamObject):
            stream.get_data()


def _page_record(document: pdfium.PdfDocument, number: int) -> PageRecord:
    page = document[number - 1]
    try:
        read = read_page(page)
    finally:
        page.close()
    # A form feed inside a page would shift every later page number.
    text = read.text.replace("\x00", "").replace("\f", "\n")
    has_text = bool(text.strip())
    return {
        "number": number,
        "width": round(read.width, 2),
        "height": round(read.height, 2),
        "text": text,
        "words": read.words,
        "text_layer": has_text,
        "source": "text" if has_text else None,
        "ocr_confidence": None,
    }


def _opens_without_password(reader: Any, password_type: Any) -> bool:
    try:
        return bool(reader.decrypt("") != password_type.NOT_DECRYPTED)
    except Exception:  # unsupported or broken encryption: as closed as a real password
        return False
