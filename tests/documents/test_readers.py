"""Reading every supported kind of upload into text, with the errors users see."""

from __future__ import annotations

import datetime
import io
import re
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from documents import sandbox
from documents.readers import ReadResult, read_document
from documents.readresults import ReadPage
from extraction.contract import ExtractionError
from samples.invoices import invoice
from tests.support.documents import (
    blank_pdf,
    csv_bytes,
    declare_uncompressed_size,
    encrypted_pdf,
    image_only_pdf,
    report_lines,
    text_and_image_pdf,
    text_pdf,
    truncated_pdf,
    xlsx_bytes,
)
from tests.support.pdfs import cpu_burner, cyclic_page_tree, decompression_bomb
from tests.support.placed_pdfs import make_pdf

PDF = "application/pdf"
CSV = "text/csv"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
TXT = "text/plain"


@pytest.fixture(autouse=True, scope="module")
def _fresh_pool() -> Iterator[None]:
    sandbox.shutdown()
    yield
    sandbox.shutdown()


def read_bytes(tmp_path: Path, name: str, data: bytes, content_type: str) -> ReadResult:
    path = tmp_path / name
    path.write_bytes(data)
    return read_document(path, content_type=content_type, filename=name)


def failure(call, *args, **kwargs) -> ExtractionError:
    with pytest.raises(ExtractionError) as caught:
        call(*args, **kwargs)
    return caught.value


# ---- PDFs ------------------------------------------------------------------------------------

REPORT = report_lines(4)


def test_a_text_pdf_reads_page_by_page_as_it_was_drawn(tmp_path: Path) -> None:
    result = read_bytes(tmp_path, "report.pdf", text_pdf(*REPORT), PDF)

    assert (result.page_count, result.truncated) == (4, False)
    assert result.text.split("\f") == ["\n".join(lines) for lines in REPORT]


def test_an_invoice_reads_with_its_labelled_values_in_the_text(tmp_path: Path) -> None:
    made = invoice(4, language="fr-FR")

    result = read_bytes(tmp_path, made.filename, made.pdf, PDF)

    assert result.page_count == 1
    assert made.labels.invoice_number in result.text
    assert "Total TTC" in result.text
    assert all(item.description in result.text for item in made.labels.line_items)


def test_each_page_reads_with_its_size_text_and_words_boxed_from_its_top_left(
    tmp_path: Path,
) -> None:
    # Baselines 740 and 100 points above the bottom of a 792-point page.
    data = make_pdf([[(72, 740, "Invoice INV-7")], [(300, 100, "Total"), (400, 100, "12.50 €")]])

    result = read_bytes(tmp_path, "invoice.pdf", data, PDF)

    first, second = result.pages
    assert (first.number, first.width, first.height) == (1, 612, 792)
    assert (first.text, first.text_layer, first.source, first.ocr_confidence) == (
        "Invoice INV-7",
        True,
        "text",
        None,
    )
    assert [word[0] for word in first.words] == ["Invoice", "INV-7"]
    _, x0, top, x1, bottom = first.words[0]
    assert x0 == pytest.approx(72, abs=1) and x1 < first.words[1][1]
    assert 40 < top < 52 < bottom < 60  # 792 - 740 = 52 is the baseline
    assert [word[0] for word in second.words] == ["Total", "12.50", "€"]
    assert second.words[1][1] == pytest.approx(400, abs=1)
    assert second.words[0][2] > 680  # near the bottom of the page
    assert result.text == "Invoice INV-7\fTotal 12.50 €"


def test_a_page_without_text_is_flagged_and_the_other_pages_read(tmp_path: Path) -> None:
    data = text_and_image_pdf(["Invoice number: INV-7", "Total: 12.50"])

    result = read_bytes(tmp_path, "signed.pdf", data, PDF)

    assert result.page_count == 2
    assert result.text == "Invoice number: INV-7\nTotal: 12.50\f"
    text_page, image_page = result.pages
    assert (text_page.text_layer, text_page.source) == (True, "text")
    assert image_page == ReadPage(
        number=2,
        width=pytest.approx(595.28, abs=0.01),
        height=pytest.approx(841.89, abs=0.01),
        text="",
        words=(),
        text_layer=False,
        source=None,
    )


def test_a_word_split_at_a_line_end_keeps_its_hyphen(tmp_path: Path) -> None:
    # pdfium marks the hyphen of a split word as U+FFFE; the page shows a hyphen.
    data = text_pdf(["Printer paper and compu-", "ter parts"])

    result = read_bytes(tmp_path, "split.pdf", data, PDF)

    assert "compu-" in result.text and "\ufffe" not in result.text
    assert [word[0] for word in result.pages[0].words][3:5] == ["compu-", "ter"]


@pytest.mark.parametrize("algorithm", ["RC4-128", "AES-256"])
def test_a_pdf_encrypted_with_a_user_password_says_password_protected(
    tmp_path: Path, algorithm: str
) -> None:
    locked = encrypted_pdf(invoice(1).pdf, user_password="s3cret", algorithm=algorithm)

    error = failure(read_bytes, tmp_path, "locked.pdf", locked, PDF)

    assert (error.code, error.message) == (
        "encrypted",
        "locked.pdf is a password-protected PDF; remove the password and upload it again.",
    )


@pytest.mark.parametrize("algorithm", ["RC4-128", "AES-256"])
def test_a_pdf_that_the_empty_password_opens_is_read(tmp_path: Path, algorithm: str) -> None:
    made = invoice(2)
    opened = encrypted_pdf(
        made.pdf, user_password="", owner_password="owner only", algorithm=algorithm
    )

    result = read_bytes(tmp_path, "restricted.pdf", opened, PDF)

    assert result.page_count == 1
    assert made.labels.invoice_number in result.text


def test_an_image_only_pdf_says_it_has_no_text_layer(tmp_path: Path) -> None:
    error = failure(read_bytes, tmp_path, "scan.pdf", image_only_pdf(pages=2), PDF)

    # Its pictures hold shapes, no writing: OCR (where installed) finds nothing either.
    assert error.code == "no_text_layer"
    assert error.message.startswith("scan.pdf has no text layer")


def test_a_pdf_whose_cross_reference_is_off_reads_after_pypdfs_checks(tmp_path: Path) -> None:
    # pdfium rebuilds the table, so pypdf checks the file first (it repairs it too).
    data = text_pdf(["Invoice number: INV-7", "Total: 12.50"])
    offset = re.search(rb"startxref\s+(\d+)", data)
    assert offset is not None
    damaged = data[: offset.start(1)] + b"%d" % (int(offset.group(1)) + 7) + data[offset.end(1) :]

    result = read_bytes(tmp_path, "damaged.pdf", damaged, PDF)

    assert result.text == "Invoice number: INV-7\nTotal: 12.50"
    assert [word[0] for word in result.pages[0].words][:3] == ["Invoice", "number:", "INV-7"]


def test_a_page_tree_that_contains_itself_is_malformed(tmp_path: Path) -> None:
    error = failure(read_bytes, tmp_path, "loop.pdf", cyclic_page_tree(), PDF)

    assert (error.code, error.message) == (
        "malformed",
        "loop.pdf is not a readable PDF: Detected cyclic page references.",
    )


def test_a_truncated_pdf_is_malformed(tmp_path: Path) -> None:
    error = failure(read_bytes, tmp_path, "cut.pdf", truncated_pdf(text_pdf(*REPORT)), PDF)

    assert error.code == "malformed"
    assert error.message.startswith("cut.pdf is not a readable PDF: ")


# ---- PDF limits from settings -----------------------------------------------------------------


def test_too_many_pages_is_too_large(settings, tmp_path: Path) -> None:
    settings.SHEAF_MAX_PDF_PAGES = 3
    error = failure(read_bytes, tmp_path, "report.pdf", text_pdf(*REPORT), PDF)
    assert (error.code, error.message) == (
        "too_large",
        "report.pdf is too large to read: it has 4 pages and the limit is 3.",
    )


def test_a_page_count_bomb_is_too_large_before_any_page_is_read(settings, tmp_path: Path) -> None:
    settings.SHEAF_MAX_PDF_PAGES = 2000
    error = failure(read_bytes, tmp_path, "pages.pdf", blank_pdf(20_000), PDF)
    assert (error.code, error.message) == (
        "too_large",
        "pages.pdf is too large to read: it has 20,000 pages and the limit is 2,000.",
    )


def test_a_small_memory_setting_fails_the_read_as_too_large(settings, tmp_path: Path) -> None:
    # RLIMIT_AS caps the child's address space: a warm child may serve a small read from memory it
    # already holds, so start from a fresh one, which is already bigger than 20 MB.
    # Forty pages: enough parsing that the read must grow beyond what the fresh child holds.
    sandbox.shutdown()
    settings.SHEAF_READER_MEMORY_MB = 20
    long_report = text_pdf(*report_lines(40))
    error = failure(read_bytes, tmp_path, "report.pdf", long_report, PDF)
    assert (error.code, error.message) == (
        "too_large",
        "report.pdf is too large to read: reading it needs more than 20 MB of memory.",
    )
    settings.SHEAF_READER_MEMORY_MB = 1024
    assert read_bytes(tmp_path, "report.pdf", long_report, PDF).page_count == 40


def test_a_small_cpu_setting_fails_a_busy_pdf_as_timeout(settings, tmp_path: Path) -> None:
    settings.SHEAF_READER_CPU_SECONDS = 1
    error = failure(read_bytes, tmp_path, "busy.pdf", cpu_burner(), PDF)
    assert (error.code, error.message) == (
        "timeout",
        "busy.pdf took too long to read: it needs more than 1 s of CPU time.",
    )
    assert read_bytes(tmp_path, "invoice.pdf", invoice(1).pdf, PDF).page_count == 1


def test_a_decompression_bomb_is_too_large(tmp_path: Path) -> None:
    error = failure(read_bytes, tmp_path, "bomb.pdf", decompression_bomb(), PDF)
    assert error.code == "too_large"
    assert error.message == (
        "bomb.pdf is too large to read: page 1 goes past a safety limit of the PDF reader (Limit "
        "reached while decompressing. 4181175 bytes remaining)."
    )


def test_pdf_text_is_cut_at_the_character_cap(settings, tmp_path: Path) -> None:
    cap = len("\n".join(REPORT[0])) + 100  # all of page 1 and the start of page 2
    settings.SHEAF_MAX_TEXT_CHARS = cap
    result = read_bytes(tmp_path, "report.pdf", text_pdf(*REPORT), PDF)
    assert (len(result.text), result.page_count, result.truncated) == (cap, 4, True)
    assert result.text.startswith("\n".join(REPORT[0]) + "\f" + REPORT[1][0])
    # The pages read are kept, the cut one with the part of its text that is in the text.
    assert [page.number for page in result.pages] == [1, 2]
    assert "\f".join(page.text for page in result.pages) == result.text
    assert result.pages[1].words[-1][0] == REPORT[1][-1].split()[-1]  # all its words


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


LEDGER = [
    ["Lieferant", "Rechnung", "Betrag"],
    ["Café Müller", "RE-17", "1.234,50 €"],
    ["Weiß & Söhne", "RE-18", "99,00 €"],
]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252", "utf-16"])
@pytest.mark.parametrize("delimiter", [",", ";", "\t"], ids=["comma", "semicolon", "tab"])
def test_a_csv_reads_the_same_in_each_common_encoding_and_dialect(
    tmp_path: Path, encoding: str, delimiter: str
) -> None:
    data = csv_bytes(LEDGER, encoding=encoding, delimiter=delimiter)

    result = read_bytes(tmp_path, "ledger.csv", data, CSV)

    assert result.text == (
        "Lieferant: Café Müller | Rechnung: RE-17 | Betrag: 1.234,50 €\n"
        "Lieferant: Weiß & Söhne | Rechnung: RE-18 | Betrag: 99,00 €"
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


INVOICE_BOOK = {
    "Invoice": [
        ["Invoice number", "INV-17"],
        ["Date", datetime.datetime(2024, 1, 3)],
        [],
        ["Total", 1250.5],
    ],
    "Lines": [["Item", "Quantity", "Unit price"], ["Paper", 3, 4.2], ["Ink", None, 12]],
}


def test_each_xlsx_sheet_is_a_page_headed_by_its_name(tmp_path: Path) -> None:
    result = read_bytes(tmp_path, "invoice.xlsx", xlsx_bytes(INVOICE_BOOK), XLSX)
    assert result == ReadResult(
        text="Sheet: Invoice\nInvoice number: INV-17\nDate: 2024-01-03\nTotal: 1250.5\n"
        "\fSheet: Lines\nItem: Paper | Quantity: 3 | Unit price: 4.2\nItem: Ink | Unit price: 12",
        page_count=2,
        truncated=False,
    )


def test_an_xlsx_that_unpacks_past_the_guard_is_too_large_before_inflating(
    tmp_path: Path,
) -> None:
    bomb = declare_uncompressed_size(
        xlsx_bytes(INVOICE_BOOK), "xl/worksheets/sheet1.xml", 4_000_000_000
    )
    error = failure(read_bytes, tmp_path, "bomb.xlsx", bomb, XLSX)
    assert (error.code, error.message) == (
        "too_large",
        "bomb.xlsx is too large to read: it unpacks to 3,815 MB and the limit is 200 MB.",
    )


def test_a_sheet_declaring_the_largest_dimension_costs_only_its_real_cells(
    tmp_path: Path,
) -> None:
    saved = xlsx_bytes({"Rows": [[f"Row {n}", n] for n in range(5000)]})
    source = zipfile.ZipFile(io.BytesIO(saved))
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
    result = read_bytes(tmp_path, "invoice.xlsx", xlsx_bytes(INVOICE_BOOK), XLSX)
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
        "slides.pptx: application/zip files cannot be read; use PDF, CSV, XLSX, TXT, PNG, JPEG, "
        "TIFF or an XML e-invoice (UBL, CII).",
    )
