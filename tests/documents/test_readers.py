"""Reading every supported kind of upload into text, with the errors users see."""

from __future__ import annotations

import csv
import datetime
import io
import json
import re
import struct
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest

from documents import sandbox
from documents.readers import ReadResult, read_document
from extraction.contract import ExtractionError
from tests.conftest import CORPUS, corpus_file
from tests.support.pdfs import cpu_burner, decompression_bomb

PDF = "application/pdf"
CSV = "text/csv"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
TXT = "text/plain"


@pytest.fixture(autouse=True, scope="module")
def _fresh_pool() -> Iterator[None]:
    sandbox.shutdown()
    yield
    sandbox.shutdown()


def read_corpus(relative: str) -> ReadResult:
    path = corpus_file(relative)
    return read_document(path, content_type=PDF, filename=path.name)


def read_bytes(tmp_path: Path, name: str, data: bytes, content_type: str) -> ReadResult:
    path = tmp_path / name
    path.write_bytes(data)
    return read_document(path, content_type=content_type, filename=name)


def failure(call, *args, **kwargs) -> ExtractionError:
    with pytest.raises(ExtractionError) as caught:
        call(*args, **kwargs)
    return caught.value


# ---- the PDF corpus ---------------------------------------------------------------------------

SAMPLE_FILES = [
    entry
    for entry in json.loads((CORPUS / "sample-files" / "files.json").read_text())["data"]
    if (CORPUS / "sample-files" / entry["path"]).is_file()
]


@pytest.mark.parametrize("entry", SAMPLE_FILES, ids=lambda entry: entry["path"].split("/")[0])
def test_each_sample_pdf_reads_with_its_page_count_or_fails_clearly(entry: dict) -> None:
    relative = f"sample-files/{entry['path']}"
    name = Path(relative).name
    if entry["path"].startswith("017-"):
        expected_code = "malformed"
    elif entry["encrypted"]:
        expected_code = "encrypted"
    elif "imagemagick" in entry["producer"]:  # ImageMagick PDFs are one bitmap per page
        expected_code = "no_text_layer"
    else:
        result = read_corpus(relative)
        assert result.page_count == entry["pages"]
        assert result.text.count("\f") == entry["pages"] - 1
        assert result.text.strip()
        assert not result.truncated
        return
    error = failure(read_corpus, relative)
    assert error.code == expected_code
    assert name in error.message


def test_the_unreadable_page_tree_is_malformed_with_the_reason() -> None:
    error = failure(read_corpus, "sample-files/017-unreadable-meta-data/unreadablemetadata.pdf")
    assert error.message == (
        "unreadablemetadata.pdf is not a readable PDF: Invalid object in /Pages."
    )


def test_an_image_only_pdf_says_it_has_no_text_layer() -> None:
    error = failure(read_corpus, "sample-files/007-imagemagick-images/imagemagick-lzw.pdf")
    assert error.code == "no_text_layer"
    assert error.message.startswith("imagemagick-lzw.pdf has no text layer")


def test_crazyones_text_matches_its_transcript() -> None:
    result = read_corpus("pypdf-resources/resources/crazyones.pdf")
    transcript = corpus_file("pypdf-resources/resources/crazyones.txt").read_text()
    assert " ".join(result.text.split()) == " ".join(transcript.split())
    assert result.page_count == 1


def _password_rows() -> list[tuple[str, str, str]]:
    table = corpus_file("pypdf-resources/resources/encryption/PASSWORDS.tsv").read_text()
    rows = list(csv.reader(io.StringIO(table), delimiter="\t"))[1:]
    return [(name, user, owner) for name, user, owner, _aes in rows]


def _opens_with_the_empty_password(name: str, user: str, owner: str) -> bool:
    # The empty password opens a file when it is the user password or the owner password. Under
    # R2-R4 an empty owner password means "the user password" (PDF 1.7, algorithm 3), so only R5/R6
    # files (AES-256) really have an empty owner password: r5/r6-user-password.pdf open as owner.
    if user in {"", "-"}:
        return True
    return owner == "" and Path(name).name.startswith(("r5-", "r6-"))


def test_the_password_table_lists_every_encryption_sample() -> None:
    listed = {Path(name).name for name, _user, _owner in _password_rows()}
    folder = corpus_file("pypdf-resources/resources/encryption/PASSWORDS.tsv").parent
    assert {path.name for path in folder.glob("*.pdf")} <= listed


@pytest.mark.parametrize(
    ("name", "user", "owner"), _password_rows(), ids=[row[0] for row in _password_rows()]
)
def test_encrypted_pdfs_open_with_the_empty_password_or_say_password_protected(
    name: str, user: str, owner: str
) -> None:
    relative = f"pypdf-resources/resources/encryption/{name}"
    if _opens_with_the_empty_password(name, user, owner):
        result = read_corpus(relative)
        assert result.page_count == 1
        assert result.text.strip()
    else:
        error = failure(read_corpus, relative)
        assert error.code == "encrypted"
        assert error.message == (
            f"{Path(name).name} is a password-protected PDF; remove the password and upload it "
            "again."
        )


def test_every_corpus_pdf_ends_in_text_or_an_extraction_error() -> None:
    for path in sorted(CORPUS.rglob("*.pdf")):
        try:
            read_document(path, content_type=PDF, filename=path.name)
        except ExtractionError as error:
            assert error.code in {"encrypted", "no_text_layer", "malformed"}, path


# ---- PDF limits from settings -----------------------------------------------------------------


def test_too_many_pages_is_too_large(settings) -> None:
    settings.SHEAF_MAX_PDF_PAGES = 3
    error = failure(read_corpus, "sample-files/004-pdflatex-4-pages/pdflatex-4-pages.pdf")
    assert (error.code, error.message) == (
        "too_large",
        "pdflatex-4-pages.pdf is too large to read: it has 4 pages and the limit is 3.",
    )


def test_a_small_memory_setting_fails_the_read_as_too_large(settings) -> None:
    # RLIMIT_AS caps the child's address space: a warm child may serve a small read from memory it
    # already holds, so start from a fresh one, which is already bigger than 20 MB.
    sandbox.shutdown()
    settings.SHEAF_READER_MEMORY_MB = 20
    error = failure(read_corpus, "sample-files/004-pdflatex-4-pages/pdflatex-4-pages.pdf")
    assert (error.code, error.message) == (
        "too_large",
        "pdflatex-4-pages.pdf is too large to read: reading it needs more than 20 MB of memory.",
    )
    settings.SHEAF_READER_MEMORY_MB = 1024
    assert read_corpus("sample-files/004-pdflatex-4-pages/pdflatex-4-pages.pdf").page_count == 4


def test_a_small_cpu_setting_fails_a_busy_pdf_as_timeout(settings, tmp_path: Path) -> None:
    settings.SHEAF_READER_CPU_SECONDS = 1
    error = failure(read_bytes, tmp_path, "busy.pdf", cpu_burner(), PDF)
    assert (error.code, error.message) == (
        "timeout",
        "busy.pdf took too long to read: it needs more than 1 s of CPU time.",
    )
    assert read_corpus("sample-files/001-trivial/minimal-document.pdf").page_count == 1


def test_a_decompression_bomb_is_too_large(tmp_path: Path) -> None:
    error = failure(read_bytes, tmp_path, "bomb.pdf", decompression_bomb(), PDF)
    assert error.code == "too_large"
    assert error.message == (
        "bomb.pdf is too large to read: page 1 goes past a safety limit of the PDF reader (Limit "
        "reached while decompressing. 4181175 bytes remaining)."
    )


def test_pdf_text_is_cut_at_the_character_cap(settings) -> None:
    settings.SHEAF_MAX_TEXT_CHARS = 5000
    result = read_corpus("sample-files/004-pdflatex-4-pages/pdflatex-4-pages.pdf")
    assert (len(result.text), result.page_count, result.truncated) == (5000, 4, True)
    assert result.text.count("\f") == 1  # page 1 is 3,930 characters


# ---- CSV --------------------------------------------------------------------------------------


def test_a_semicolon_cp1252_csv_labels_each_value_with_its_column(tmp_path: Path) -> None:
    data = "Société;Montant;Échéance\r\nCafé Noël;12,50 €;03/01/2024\r\nBrûlerie;7,00 €;\r\n"
    result = read_bytes(tmp_path, "factures.csv", data.encode("cp1252"), CSV)
    assert result == ReadResult(
        text="Société: Café Noël | Montant: 12,50 € | Échéance: 03/01/2024\n"
        "Société: Brûlerie | Montant: 7,00 €",
        page_count=None,
        truncated=False,
    )


def test_a_two_column_csv_reads_as_labels_and_values(tmp_path: Path) -> None:
    data = '\ufeffInvoice number:,INV-17\nDate,2024-01-03\n\nTotal,"1,250.00"\n'
    result = read_bytes(tmp_path, "invoice.csv", data.encode("utf-8"), CSV)
    assert result.text == "Invoice number: INV-17\nDate: 2024-01-03\nTotal: 1,250.00"


def test_a_csv_whose_first_row_holds_values_has_no_header(tmp_path: Path) -> None:
    data = "INV-17,2024-01-03,12.50\nINV-18,2024-01-04,7.00\n"
    result = read_bytes(tmp_path, "rows.csv", data.encode(), CSV)
    assert result.text == "INV-17 | 2024-01-03 | 12.50\nINV-18 | 2024-01-04 | 7.00"


def test_csv_text_is_cut_at_the_character_cap(settings, tmp_path: Path) -> None:
    settings.SHEAF_MAX_TEXT_CHARS = 100
    data = "".join(f"Item {n},{n}.00\n" for n in range(1000))
    result = read_bytes(tmp_path, "long.csv", data.encode(), CSV)
    assert (len(result.text), result.truncated) == (100, True)
    assert result.text.startswith("Item 0: 0.00\nItem 1: 1.00\n")


# ---- TXT --------------------------------------------------------------------------------------


def test_a_utf16_text_file_keeps_form_feeds_as_page_breaks(tmp_path: Path) -> None:
    data = "Facture n° 17\nTotal : 12,50 €\fPage deux\n".encode("utf-16")
    result = read_bytes(tmp_path, "facture.txt", data, TXT)
    assert result == ReadResult(
        text="Facture n° 17\nTotal : 12,50 €\fPage deux\n", page_count=None, truncated=False
    )


def test_text_loses_nul_characters_and_nothing_else(tmp_path: Path) -> None:
    result = read_bytes(tmp_path, "nul.txt", b"Total:\x00 12.50\r\n\tEUR  ", TXT)
    assert result.text == "Total: 12.50\r\n\tEUR  "


def test_a_long_text_file_is_cut_at_the_character_cap(settings, tmp_path: Path) -> None:
    settings.SHEAF_MAX_TEXT_CHARS = 1000
    result = read_bytes(tmp_path, "long.txt", ("é" * 50_000).encode(), TXT)
    assert result == ReadResult(text="é" * 1000, page_count=None, truncated=True)


def test_a_text_file_exactly_at_the_cap_is_not_truncated(settings, tmp_path: Path) -> None:
    settings.SHEAF_MAX_TEXT_CHARS = 1000
    result = read_bytes(tmp_path, "exact.txt", b"x" * 1000, TXT)
    assert (len(result.text), result.truncated) == (1000, False)


# ---- XLSX -------------------------------------------------------------------------------------


def xlsx_bytes() -> bytes:
    workbook = openpyxl.Workbook()
    invoice = workbook.active
    invoice.title = "Invoice"
    invoice.append(["Invoice number", "INV-17"])
    invoice.append(["Date", datetime.datetime(2024, 1, 3)])
    invoice.append([])
    invoice.append(["Total", 1250.5])
    lines = workbook.create_sheet("Lines")
    lines.append(["Item", "Quantity", "Unit price"])
    lines.append(["Paper", 3, 4.2])
    lines.append(["Ink", None, 12])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def test_each_xlsx_sheet_is_a_page_headed_by_its_name(tmp_path: Path) -> None:
    result = read_bytes(tmp_path, "invoice.xlsx", xlsx_bytes(), XLSX)
    assert result == ReadResult(
        text="Sheet: Invoice\nInvoice number: INV-17\nDate: 2024-01-03\nTotal: 1250.5\n"
        "\fSheet: Lines\nItem: Paper | Quantity: 3 | Unit price: 4.2\nItem: Ink | Unit price: 12",
        page_count=2,
        truncated=False,
    )


def declare_uncompressed_size(archive: bytes, member: str, size: int) -> bytes:
    """The archive with `member`'s central-directory entry claiming `size` uncompressed bytes."""
    data = bytearray(archive)
    at = data.find(b"PK\x01\x02")
    while at != -1:
        name_length = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46 : at + 46 + name_length] == member.encode():
            struct.pack_into("<I", data, at + 24, size)
        at = data.find(b"PK\x01\x02", at + 46)
    return bytes(data)


def test_an_xlsx_that_unpacks_past_the_guard_is_too_large_before_inflating(
    tmp_path: Path,
) -> None:
    bomb = declare_uncompressed_size(xlsx_bytes(), "xl/worksheets/sheet1.xml", 4_000_000_000)
    error = failure(read_bytes, tmp_path, "bomb.xlsx", bomb, XLSX)
    assert (error.code, error.message) == (
        "too_large",
        "bomb.xlsx is too large to read: it unpacks to 3,815 MB and the limit is 200 MB.",
    )


def test_a_sheet_declaring_the_largest_dimension_costs_only_its_real_cells(
    tmp_path: Path,
) -> None:
    workbook = openpyxl.Workbook()
    for n in range(5000):
        workbook.active.append([f"Row {n}", n])
    saved = io.BytesIO()
    workbook.save(saved)
    source = zipfile.ZipFile(saved)
    hostile = io.BytesIO()
    with zipfile.ZipFile(hostile, "w", zipfile.ZIP_DEFLATED) as archive:
        for entry in source.infolist():
            data = source.read(entry.filename)
            if entry.filename == "xl/worksheets/sheet1.xml":
                # Trusting this would pad each of the 5,000 rows to 16,384 columns.
                data = re.sub(rb'<dimension ref="[^"]*"', b'<dimension ref="A1:XFD1048576"', data)
            archive.writestr(entry, data)
    started = time.monotonic()
    result = read_bytes(tmp_path, "wide.xlsx", hostile.getvalue(), XLSX)
    assert result.text.endswith("\nRow 4998: 4998\nRow 4999: 4999")
    assert time.monotonic() - started < 2


def test_xlsx_text_is_cut_at_the_character_cap(settings, tmp_path: Path) -> None:
    settings.SHEAF_MAX_TEXT_CHARS = 30
    result = read_bytes(tmp_path, "invoice.xlsx", xlsx_bytes(), XLSX)
    assert result == ReadResult(
        text="Sheet: Invoice\nInvoice number:", page_count=2, truncated=True
    )


def test_a_broken_xlsx_is_malformed(tmp_path: Path) -> None:
    error = failure(read_bytes, tmp_path, "broken.xlsx", b"PK\x03\x04 not really", XLSX)
    assert error.code == "malformed"
    assert error.message.startswith("broken.xlsx is not a readable XLSX file: ")


# ---- other types ------------------------------------------------------------------------------


def test_an_unsupported_content_type_is_refused(tmp_path: Path) -> None:
    error = failure(read_bytes, tmp_path, "slides.pptx", b"PK", "application/zip")
    assert (error.code, error.message) == (
        "unsupported_type",
        "slides.pptx: application/zip files cannot be read; use PDF, CSV, XLSX or TXT.",
    )
