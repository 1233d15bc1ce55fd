"""The sandbox's "read" operation: a stored upload (PDF, CSV, XLSX, TXT) turned into text, and a
PDF's pages into page records (size, text, words with boxes).

Runs in a child of `documents.sandbox`, under its CPU, memory and wall-clock limits, so nothing
here imports Django. Input is bounded before it is parsed where the format allows: a CSV or TXT
costs at most what the character cap can use; an XLSX is refused before anything is inflated when
its zip declares more than the unpacked limit, and while parsing when its shared strings or the
cells iterated go past their caps. A failure caused by the file raises `Refused` with a code
(encrypted, malformed, too_large) and a reason; `documents.readers` words the message users see.
A page without a text layer (a scan) comes back empty, marked so, for `documents.readers` to OCR.

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
import codecs
import csv
import datetime
import io
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator
from typing import IO, TYPE_CHECKING, Any, NamedTuple

import pypdf
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from openpyxl.cell.text import Text as CellText
from openpyxl.reader.excel import ExcelReader
from openpyxl.workbook import Workbook
from openpyxl.xml.constants import SHARED_STRINGS, SHEET_MAIN_NS
from openpyxl.xml.functions import iterparse
from pypdf import PasswordType, PdfReader, PdfWriter
from pypdf.errors import LimitReachedError
from pypdf.generic import ArrayObject, StreamObject

from documents.layout import read_page
from documents.pdf_attachments import AttachmentTooLarge, invoice_attachment
from documents.sandbox import Refused

if TYPE_CHECKING:
    from documents.readresults import PageRecord

# extraction.contract.PAGE_BREAK, written out: importing `extraction` would import Django.
PAGE_BREAK = "\f"
# A text content stream this size is thousands of pages; past it pypdf stops inflating
# (LimitReachedError) instead of expanding a bomb until the memory limit.
STREAM_MAX_BYTES = 64 * 2**20
_SNIFF_CHARS = 16_384


class Text(NamedTuple):
    text: str  # pages joined with "\f", NULs removed, cut at max_chars
    page_count: int | None  # PDF: pages; XLSX: sheets (one "page" each); CSV and TXT: None
    truncated: bool
    # PDF: the pages read (up to the one the character cap cuts; its words are all kept)
    pages: tuple[PageRecord, ...] = ()
    einvoice_xml: str = ""  # the e-invoice XML the file is or carries ("": none)
    # The e-invoice XML a PDF carries, as found: its name and bytes in base64 (the reply is JSON);
    # the worker parses it (`documents.readers`) and fills `einvoice_xml`.
    einvoice: tuple[str, str] | None = None


def read(arguments: dict[str, Any]) -> dict[str, Any]:
    """`Text` (as a dict) of the file at arguments["path"], read as arguments["format"] (pdf,
    csv, xlsx or txt) within the caps the arguments give."""
    path: str = arguments["path"]
    max_chars: int = arguments["max_chars"]
    kind = arguments["format"]
    if kind == "pdf":
        # Without "checks_first": False (see `_read_sound_pdf`), pypdf checks every PDF first.
        checks_first = arguments.get("checks_first", True)
        # A caller that reads no e-invoices may leave the XML cap out: the usual 10 MB then.
        max_xml_bytes = arguments.get("max_xml_bytes", 10 * 2**20)
        text = _read_pdf(
            path,
            arguments["max_pages"],
            max_chars,
            checks_first=checks_first,
            max_xml_bytes=max_xml_bytes,
        )
    elif kind == "csv":
        text = _read_csv(path, max_chars)
    elif kind == "xlsx":
        text = _read_xlsx(
            path,
            max_chars,
            max_unpacked_mb=arguments["xlsx_max_unpacked_mb"],
            max_shared_strings=arguments["xlsx_max_shared_strings"],
            max_cells=arguments["xlsx_max_cells"],
        )
    elif kind == "txt":
        plain, truncated = _capped(*_decode(path, max_chars), max_chars=max_chars)
        text = Text(plain, page_count=None, truncated=truncated)
    else:
        raise ValueError(f"no reader for the format {kind!r}")
    return text._asdict()


def _reason(error: Exception) -> str:
    """The first line of a library's error, without its full stop (messages add their own)."""
    lines = str(error).strip().splitlines() or [type(error).__name__]
    return lines[0][:200].rstrip(".")


def _capped(text: str, cut: bool = False, *, max_chars: int) -> tuple[str, bool]:
    text = text.replace("\x00", "")  # PostgreSQL text cannot hold NUL
    if len(text) > max_chars:
        return text[:max_chars], True
    return text, cut


def _megabytes(size: int) -> str:
    megabytes = size / 2**20
    return f"{megabytes:.1f} MB" if megabytes < 10 else f"{megabytes:,.0f} MB"


# ---- PDF --------------------------------------------------------------------------------------


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


def _read_pdf(
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
        reason = f"{where} goes past a safety limit of the PDF reader ({_reason(error)})"
        raise Refused("too_large", reason) from None
    except Exception as error:
        reason = f"page {page_number}: {_reason(error)}" if page_number else _reason(error)
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


# ---- CSV and TXT ------------------------------------------------------------------------------


def _decode(path: str, max_chars: int) -> tuple[str, bool]:
    """Text as `documents.uploads` accepted it: UTF-16 with a BOM, else UTF-8 (BOM or not), else
    Windows-1252; and whether the file goes on past what was read.

    Only the bytes the character cap can use are read (4 per character at most), so a 50 MB upload
    costs no more memory than a 2 MB one.
    """
    budget = _read_budget(max_chars)
    with open(path, "rb") as stream:
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


def _read_budget(max_chars: int) -> int:
    return 4 * max_chars + 4


def _read_csv(path: str, max_chars: int) -> Text:
    text, more = _decode(path, max_chars)
    if more:
        # The last row was cut by the read budget. "\r" alone ends lines in old Mac files.
        end = max(text.rfind("\n"), text.rfind("\r"))
        if end == -1:
            raise Refused(
                "too_large",
                f"line 1 is {_megabytes(_first_line_bytes(path))} long and the longest line "
                f"read is {_megabytes(_read_budget(max_chars))}; put one record on each line",
            )
        text = text[: end + 1]
    sample = text[:_SNIFF_CHARS]
    try:
        dialect: Any = csv.Sniffer().sniff(
            sample[: sample.rfind("\n") + 1] or sample, delimiters=",;\t|"
        )
    except csv.Error:
        dialect = csv.excel
    rows = csv.reader(io.StringIO(text.replace("\x00", ""), newline=""), dialect)
    try:
        rendered, cut = _joined(_table_lines(rows), max_chars)
    except csv.Error as error:
        raise Refused("malformed", _reason(error)) from None
    return Text(rendered, page_count=None, truncated=cut or more)


def _first_line_bytes(path: str) -> int:
    """Where the file's first line ends, in bytes (the file's size if it never does)."""
    size = 0
    with open(path, "rb") as stream:
        while chunk := stream.read(1 << 20):
            end = min((at for at in (chunk.find(b"\n"), chunk.find(b"\r")) if at != -1), default=-1)
            if end != -1:
                return size + end
            size += len(chunk)
    return size


# ---- XLSX -------------------------------------------------------------------------------------


def _read_xlsx(
    path: str, max_chars: int, *, max_unpacked_mb: int, max_shared_strings: int, max_cells: int
) -> Text:
    try:
        with zipfile.ZipFile(path) as archive:
            # zipfile never inflates an entry past its declared size, so the declared total bounds
            # what openpyxl can unpack, whatever the compressed bytes say.
            declared = sum(entry.file_size for entry in archive.infolist())
    except zipfile.BadZipFile as error:
        raise Refused("malformed", _reason(error)) from None
    if declared > max_unpacked_mb * 2**20:
        raise Refused(
            "too_large",
            f"it unpacks to {declared / 2**20:,.0f} MB and the limit is {max_unpacked_mb:,} MB",
        )
    try:
        workbook = _open_workbook(path, max_shared_strings)
        try:
            sheets = workbook.worksheets
            text, cut = _joined(_workbook_lines(sheets, max_cells), max_chars)
        finally:
            workbook.close()
    except (Refused, OSError, MemoryError):
        raise
    except Exception as error:  # openpyxl raises anything from KeyError to its own types
        raise Refused("malformed", _reason(error)) from None
    return Text(text, page_count=len(sheets), truncated=cut)


class _CappedReader(ExcelReader):
    """openpyxl's reader with its table of shared strings read by `_string_table`.

    openpyxl reads the whole table before any cell: a 485 KB file can declare 11 million tiny
    strings (190 MB of XML, under the unpacked limit) that take gigabytes as Python objects.
    """

    def __init__(self, path: str, max_shared_strings: int) -> None:
        super().__init__(path, read_only=True, data_only=True, keep_links=False)
        self.max_shared_strings = max_shared_strings

    def read_strings(self) -> None:
        part = next(self.package.findall(SHARED_STRINGS), None)
        if part is not None:
            with self.archive.open(part.PartName[1:]) as source:
                self.shared_strings = _string_table(source, self.max_shared_strings)


def _open_workbook(path: str, max_shared_strings: int) -> Workbook:
    reader = _CappedReader(path, max_shared_strings)
    reader.read()
    return reader.wb


def _string_table(source: IO[bytes], limit: int) -> list[str]:
    """openpyxl's read_string_table, stopping past `limit` strings, and dropping each string's
    element once read (openpyxl keeps an empty element per string under the root)."""
    string_tag, text_tag = f"{{{SHEET_MAIN_NS}}}si", f"{{{SHEET_MAIN_NS}}}t"
    strings: list[str] = []
    root = None
    for event, node in iterparse(source, events=("start", "end")):
        if root is None:
            root = node
        if event != "end" or node.tag != string_tag:
            continue
        if len(strings) == limit:
            raise Refused(
                "too_large",
                f"it holds more than {limit:,} distinct texts (shared strings), the limit",
            )
        if len(node) == 1 and node[0].tag == text_tag:
            # Plain text, nearly every string: what openpyxl's Text gives, at a fifth of its cost.
            text = node[0].text or ""
        else:  # rich text runs, phonetic hints
            rich = CellText.from_tree(node)
            text = rich.content if rich is not None else ""
        strings.append(text.replace("x005F_", ""))
        root.clear()
    return strings


def _workbook_lines(sheets: list[Any], max_cells: int) -> Iterator[str]:
    """Each sheet is a page headed "Sheet: <name>", its cells rendered like CSV rows."""
    cells = 0

    def rows(sheet: Any) -> Iterator[list[str]]:
        nonlocal cells
        for row in sheet.iter_rows(values_only=True):
            # Empty cells render to nothing, so the text cap never stops a sheet of them; this
            # count does. An empty row costs about what a cell does.
            cells += max(len(row), 1)
            if cells > max_cells:
                raise Refused(
                    "too_large",
                    f"sheet {sheet.title!r} takes it past {max_cells:,} cells, the limit",
                )
            yield [_cell_text(value) for value in row]

    for number, sheet in enumerate(sheets):
        # The declared <dimension> could be A1:XFD1048576; padding rows to it is a CPU bomb.
        sheet.reset_dimensions()
        yield f"{PAGE_BREAK if number else ''}Sheet: {sheet.title}"
        yield from _table_lines(rows(sheet))


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


def _table_lines(rows: Iterable[list[str]]) -> Iterator[str]:
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
