"""Every format is read in the reader sandbox: hostile spreadsheets and CSVs fail their document
with a message that says what is wrong, under the readers' limits, and the worker's own memory
does not grow with what a file makes the parser hold."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from batches import pipeline
from batches.services import batch_create
from documents import sandbox
from documents.models import Document
from documents.readers import ReadResult, read_document
from documents.uploads import KINDS
from extraction.contract import ExtractionError
from tests.support.processes import live_processes
from tests.support.spreadsheets import empty_cells, labelled_values, shared_strings_bomb, xlsx

pytestmark = pytest.mark.usefixtures("fresh_sandbox")

CSV, XLSX, TXT = (KINDS[kind].content_type for kind in ("csv", "xlsx", "txt"))


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return shared_strings_bomb()


def read(tmp_path: Path, name: str, data: bytes, content_type: str) -> ReadResult:
    path = tmp_path / name
    path.write_bytes(data)
    return read_document(path, content_type=content_type, filename=name)


def failure(tmp_path: Path, name: str, data: bytes, content_type: str) -> ExtractionError:
    with pytest.raises(ExtractionError) as caught:
        read(tmp_path, name, data, content_type)
    return caught.value


def resident_mb(pid: int | str = "self") -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


def sandbox_children() -> set[int]:
    return {
        process.pid
        for process in live_processes()
        if process.parent == os.getpid() and b"documents/sandbox.py" in process.cmdline
    }


# ---- XLSX -------------------------------------------------------------------------------------


def test_a_shared_strings_bomb_is_too_large_and_the_worker_keeps_its_memory(
    tmp_path: Path, bomb: bytes
) -> None:
    path = tmp_path / "bomb.xlsx"
    path.write_bytes(bomb)
    with zipfile.ZipFile(path) as archive:
        unpacked = sum(entry.file_size for entry in archive.infolist())
    assert len(bomb) < 2 * 2**20 and 180 * 2**20 < unpacked < 200 * 2**20  # under the zip guard
    before = resident_mb()

    with pytest.raises(ExtractionError) as caught:
        read_document(path, content_type=XLSX, filename="bomb.xlsx")

    assert (caught.value.code, caught.value.message) == (
        "too_large",
        "bomb.xlsx is too large to read: it holds more than 1,000,000 distinct texts (shared "
        "strings), the limit.",
    )
    # Read in a child: in the worker, these strings took 3.3 GB and it kept 2.9 GB.
    assert resident_mb() - before < 50
    assert sum(resident_mb(pid) for pid in sandbox_children()) < 300


def test_the_bomb_fails_its_document_and_the_invoice_beside_it_completes(
    alice, settings, bomb: bytes
) -> None:
    settings.SHEAF_EXTRACTION_ENGINE = "local"
    invoice = labelled_values(("Invoice number", "INV-17"), ("Total", "12.50"))
    batch = batch_create(
        user=alice,
        files=[SimpleUploadedFile("bomb.xlsx", bomb), SimpleUploadedFile("invoice.xlsx", invoice)],
        prompt="invoice number",
    )
    while (claim := pipeline.document_claim()) is not None:
        pipeline.document_process(claim=claim)

    failed = batch.documents.get(original_filename="bomb.xlsx")
    assert (failed.status, failed.error_code, failed.attempts) == (
        Document.Status.FAILED,
        "too_large",
        1,
    )
    assert "more than 1,000,000 distinct texts (shared strings)" in failed.error_message
    done = batch.documents.get(original_filename="invoice.xlsx")
    assert done.status == Document.Status.COMPLETED
    assert done.result["fields"]["invoice number"]["value"] == "INV-17"


def test_a_sheet_past_the_cell_limit_is_too_large(settings, tmp_path: Path) -> None:
    settings.SHEAF_XLSX_MAX_CELLS = 10_000
    # Exactly at the limit: read (every cell is empty, so there is no text but the sheet's name).
    at_limit = read(tmp_path, "full.xlsx", empty_cells(rows=100, columns=100), XLSX)
    assert at_limit == ReadResult("Sheet: Invoice", page_count=1, truncated=False)

    error = failure(tmp_path, "cells.xlsx", empty_cells(rows=101, columns=100), XLSX)

    assert (error.code, error.message) == (
        "too_large",
        "cells.xlsx is too large to read: sheet 'Invoice' takes it past 10,000 cells, the limit.",
    )


def test_a_workbook_past_the_shared_strings_limit_names_it(settings, tmp_path: Path) -> None:
    settings.SHEAF_XLSX_MAX_SHARED_STRINGS = 3
    pairs = (("Invoice number", "INV-17"), ("Total", "12.50"))
    error = failure(tmp_path, "strings.xlsx", labelled_values(*pairs), XLSX)
    assert error.message == (
        "strings.xlsx is too large to read: it holds more than 3 distinct texts (shared "
        "strings), the limit."
    )
    settings.SHEAF_XLSX_MAX_SHARED_STRINGS = 4
    result = read(tmp_path, "strings.xlsx", labelled_values(*pairs), XLSX)
    assert result.text == "Sheet: Invoice\nInvoice number: INV-17\nTotal: 12.50"


def test_shared_strings_read_as_excel_writes_them(tmp_path: Path) -> None:
    strings = [
        b"<si><t>Supplier</t></si>",
        # Rich text: runs of differently formatted text make one string.
        b"<si><r><t>Caf\xc3\xa9 </t></r><r><rPr><b/></rPr><t>No\xc3\xabl</t></r></si>",
        # A phonetic guide is not part of the text.
        b'<si><t>\xe6\x9d\xb1\xe4\xba\xac</t><rPh sb="0" eb="2"><t>\xe3\x83\x88</t></rPh></si>',
        b'<si><t xml:space="preserve">  Total due </t></si>',
        b"<si><t/></si>",
        b"<si><t>1,250.00 EUR</t></si>",
    ]
    rows = (
        b'<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row>'
        b'<row r="2"><c r="A2" t="s"><v>0</v></c><c r="B2" t="s"><v>2</v></c></row>'
        b'<row r="3"><c r="A3" t="s"><v>3</v></c><c r="B3" t="s"><v>5</v></c>'
        b'<c r="C3" t="s"><v>4</v></c></row>'
    )
    result = read(tmp_path, "rich.xlsx", xlsx([rows], strings), XLSX)
    assert result.text == (
        "Sheet: Invoice\nSupplier: Café Noël\nSupplier: 東京\nTotal due: 1,250.00 EUR"
    )


# ---- CSV --------------------------------------------------------------------------------------


def test_a_csv_whose_first_line_is_48_mb_long_says_so(tmp_path: Path) -> None:
    data = b"Total," + b"9" * (48 * 2**20 - 6) + b"\nInvoice,INV-17\n"
    error = failure(tmp_path, "x.csv", data, CSV)
    assert (error.code, error.message) == (
        "too_large",
        "x.csv is too large to read: line 1 is 48 MB long and the longest line read is 1.5 MB; "
        "put one record on each line.",
    )


def test_a_long_line_after_readable_ones_only_truncates(settings, tmp_path: Path) -> None:
    settings.SHEAF_MAX_TEXT_CHARS = 1000
    data = b"Invoice,INV-17\nTotal,12.50\nNotes," + b"x" * 10_000 + b"\n"
    result = read(tmp_path, "notes.csv", data, CSV)
    assert result == ReadResult("Invoice: INV-17\nTotal: 12.50", page_count=None, truncated=True)


def test_a_csv_with_old_mac_line_ends_past_the_read_budget_keeps_its_whole_rows(
    settings, tmp_path: Path
) -> None:
    settings.SHEAF_MAX_TEXT_CHARS = 1000
    data = "".join(f"Item {n},{n}.00\r" for n in range(1000)).encode()
    result = read(tmp_path, "mac.csv", data, CSV)
    assert result.truncated
    assert result.text.startswith("Item 0: 0.00\nItem 1: 1.00\n")
    assert len(result.text) == 1000


# ---- every format under the child's limits ----------------------------------------------------

FORMATS = {
    "rows.csv": (b"".join(b"Item %d,%d.00\n" % (n, n) for n in range(100_000)), CSV),
    "notes.txt": (b"Total: 12.50\n" * 100_000, TXT),
    "items.xlsx": (labelled_values(*((f"Item {n}", f"{n}.00") for n in range(20_000))), XLSX),
}


@pytest.mark.parametrize("name", FORMATS)
def test_every_format_is_read_under_the_memory_limit(name: str, settings, tmp_path: Path) -> None:
    # RLIMIT_AS caps a child's whole address space, which a fresh child is already past: any
    # read that allocates fails, which it could only do in a child.
    sandbox.shutdown()
    settings.SHEAF_READER_MEMORY_MB = 20
    data, content_type = FORMATS[name]
    error = failure(tmp_path, name, data, content_type)
    assert (error.code, error.message) == (
        "too_large",
        f"{name} is too large to read: reading it needs more than 20 MB of memory.",
    )
    settings.SHEAF_READER_MEMORY_MB = 1024
    assert read(tmp_path, name, data, content_type).text
