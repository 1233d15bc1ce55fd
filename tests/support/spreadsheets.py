"""Hand-built XLSX files for reader tests: small uploads that provoke the readers' limits.

Each is the smallest package openpyxl (and Excel) opens: content types, the package and workbook
relationships, one sheet and a table of shared strings. Parts are written in chunks, so a part
that unpacks to hundreds of megabytes is never held whole.
"""

from __future__ import annotations

import io
import random
import zipfile
from collections.abc import Iterable
from xml.sax.saxutils import escape

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_PACKAGE_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
_DOCUMENT_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml"

_CONTENT_TYPES = (
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships'
    '+xml"/><Default Extension="xml" ContentType="application/xml"/>'
    f'<Override PartName="/xl/workbook.xml" ContentType="{_TYPE}.sheet.main+xml"/>'
    f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{_TYPE}.worksheet+xml"/>'
    f'<Override PartName="/xl/sharedStrings.xml" ContentType="{_TYPE}.sharedStrings+xml"/>'
    "</Types>"
)
_ROOT_RELS = (
    f'<Relationships xmlns="{_PACKAGE_RELS}"><Relationship Id="rId1" '
    f'Type="{_DOCUMENT_RELS}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
)
_WORKBOOK_RELS = (
    f'<Relationships xmlns="{_PACKAGE_RELS}">'
    f'<Relationship Id="rId1" Type="{_DOCUMENT_RELS}/worksheet" Target="worksheets/sheet1.xml"/>'
    f'<Relationship Id="rId2" Type="{_DOCUMENT_RELS}/sharedStrings" Target="sharedStrings.xml"/>'
    "</Relationships>"
)


def xlsx(
    sheet_data: Iterable[bytes], shared_strings: Iterable[bytes], *, title: str = "Invoice"
) -> bytes:
    """A workbook of one sheet: `sheet_data` is the XML inside <sheetData>, `shared_strings` the
    <si> elements of the table, both as chunks."""
    workbook = (
        f'<workbook xmlns="{MAIN}" xmlns:r="{_DOCUMENT_RELS}"><sheets>'
        f'<sheet name="{escape(title)}" sheetId="1" r:id="rId1"/></sheets></workbook>'
    )
    parts: dict[str, Iterable[bytes]] = {
        "[Content_Types].xml": [_CONTENT_TYPES.encode()],
        "_rels/.rels": [_ROOT_RELS.encode()],
        "xl/workbook.xml": [workbook.encode()],
        "xl/_rels/workbook.xml.rels": [_WORKBOOK_RELS.encode()],
        "xl/worksheets/sheet1.xml": _wrapped(
            f'<worksheet xmlns="{MAIN}"><sheetData>', sheet_data, "</sheetData></worksheet>"
        ),
        "xl/sharedStrings.xml": _wrapped(f'<sst xmlns="{MAIN}">', shared_strings, "</sst>"),
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, chunks in parts.items():
            with archive.open(name, "w", force_zip64=True) as part:
                for chunk in chunks:
                    part.write(chunk)
    return out.getvalue()


def _wrapped(head: str, chunks: Iterable[bytes], tail: str) -> Iterable[bytes]:
    yield head.encode()
    yield from chunks
    yield tail.encode()


def labelled_values(*pairs: tuple[str, str]) -> bytes:
    """A form-like sheet: each label in column A, its value in column B, both shared strings."""
    rows = b"".join(
        f'<row r="{n}"><c r="A{n}" t="s"><v>{2 * (n - 1)}</v></c>'
        f'<c r="B{n}" t="s"><v>{2 * n - 1}</v></c></row>'.encode()
        for n in range(1, len(pairs) + 1)
    )
    strings = b"".join(
        f"<si><t>{escape(text)}</t></si>".encode() for pair in pairs for text in pair
    )
    return xlsx([rows], [strings])


def shared_strings_bomb(strings: int = 11_000_000, *, seed: int = 14) -> bytes:
    """About half a megabyte whose table of shared strings holds `strings` tiny strings (about
    190 MB of XML for the default 11 million), as in the report of a worker that took 3.3 GB to
    read one. Its one cell uses the first string."""
    rng = random.Random(seed)  # noqa: S311 (test data, seeded on purpose)
    letters = "abcdefghijklmnopqrstuvwxyz"
    # A block of 100 strings, repeated: deflate squeezes it about 130 to 1.
    block = "".join(
        f"<si><t>{rng.choice(letters)}{rng.choice(letters)}</t></si>" for _ in range(100)
    ).encode()
    cells = b'<row r="1"><c r="A1" t="s"><v>0</v></c></row>'
    return xlsx([cells], [block] * (strings // 100) + [b"<si><t>x</t></si>" * (strings % 100)])


def empty_cells(rows: int, columns: int) -> bytes:
    """A sheet of `rows` rows of `columns` cells each, every cell present and empty: no text at
    all, so only a count of cells stops a reader from walking them."""
    row = "".join(f'<c r="{_column(n)}{{row}}"/>' for n in range(1, columns + 1))
    return xlsx(
        (f'<row r="{r}">{row.format(row=r)}</row>'.encode() for r in range(1, rows + 1)), []
    )


def _column(number: int) -> str:
    name = ""
    while number:
        number, remainder = divmod(number - 1, 26)
        name = chr(ord("A") + remainder) + name
    return name
