"""The sandbox's "read" operation: a stored upload (PDF, CSV, XLSX, TXT) turned into text, and a
PDF's pages into page records (size, text, words with boxes).

Runs in a child of `documents.sandbox`, under its CPU, memory and wall-clock limits, so nothing
here imports Django. Input is bounded before it is parsed where the format allows: a CSV or TXT
costs at most what the character cap can use; an XLSX is refused before anything is inflated when
its zip declares more than the unpacked limit, and while parsing when its shared strings or the
cells iterated go past their caps. A failure caused by the file raises `Refused` with a code
(encrypted, malformed, too_large) and a reason; `documents.readers` words the message users see.
A page without a text layer (a scan) comes back empty, marked so, for `documents.readers` to OCR.

Each format's reader imports its libraries on first use: a PDF's (`documents.formats_pdf`:
pypdf and pdfium) and a workbook's (`documents.formats_xlsx`: openpyxl) are each tens of MB
resident, which a child reading only CSV and TXT uploads never spends.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

from documents.sandbox import Refused

if TYPE_CHECKING:
    from documents.readresults import PageRecord

# extraction.contract.PAGE_BREAK, written out: importing `extraction` would import Django.
PAGE_BREAK = "\f"
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
        # Without "checks_first": False (see `documents.formats_pdf`), pypdf checks every PDF first.
        checks_first = arguments.get("checks_first", True)
        # A caller that reads no e-invoices may leave the XML cap out: the usual 10 MB then.
        max_xml_bytes = arguments.get("max_xml_bytes", 10 * 2**20)
        from documents.formats_pdf import read_pdf  # on first use: see the module's docstring

        text = read_pdf(
            path,
            arguments["max_pages"],
            max_chars,
            checks_first=checks_first,
            max_xml_bytes=max_xml_bytes,
        )
    elif kind == "csv":
        text = _read_csv(path, max_chars)
    elif kind == "xlsx":
        from documents.formats_xlsx import read_xlsx  # on first use: see the module's docstring

        text = read_xlsx(
            path,
            max_chars,
            max_unpacked_mb=arguments["xlsx_max_unpacked_mb"],
            max_shared_strings=arguments["xlsx_max_shared_strings"],
            max_cells=arguments["xlsx_max_cells"],
        )
    elif kind == "txt":
        plain, truncated = capped(*_decode(path, max_chars), max_chars=max_chars)
        text = Text(plain, page_count=None, truncated=truncated)
    else:
        raise ValueError(f"no reader for the format {kind!r}")
    return text._asdict()


def reason_of(error: Exception) -> str:
    """The first line of a library's error, without its full stop (messages add their own)."""
    lines = str(error).strip().splitlines() or [type(error).__name__]
    return lines[0][:200].rstrip(".")


def capped(text: str, cut: bool = False, *, max_chars: int) -> tuple[str, bool]:
    text = text.replace("\x00", "")  # PostgreSQL text cannot hold NUL
    if len(text) > max_chars:
        return text[:max_chars], True
    return text, cut


def _megabytes(size: int) -> str:
    megabytes = size / 2**20
    return f"{megabytes:.1f} MB" if megabytes < 10 else f"{megabytes:,.0f} MB"


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
        rendered, cut = joined(table_lines(rows), max_chars)
    except csv.Error as error:
        raise Refused("malformed", reason_of(error)) from None
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


# ---- rendering rows ---------------------------------------------------------------------------

# A cell made only of digits, amounts, dates and punctuation is a value, never a column label.
_VALUE_LIKE = re.compile(r"[\d\s.,:;/$€£¥%+\-()]*")


def table_lines(rows: Iterable[list[str]]) -> Iterator[str]:
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


def joined(lines: Iterable[str], max_chars: int) -> tuple[str, bool]:
    """Lines joined with newlines and cut at the cap; stops pulling lines once past it."""
    kept: list[str] = []
    size = -1
    for line in lines:
        kept.append(line)
        size += len(line) + 1
        if size > max_chars:
            break
    return capped("\n".join(kept), max_chars=max_chars)
