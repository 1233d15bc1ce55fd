"""OCR of scans and photos (documents/ocr.py in the sandbox, documents/ocr_reader.py around it):
generated invoices, scanned with noise and a slight rotation by `samples.scans`, read back with
their numbers, totals and accents; hostile images and oversized scans fail their document with a
clear error; limits apply per page."""

from __future__ import annotations

import io
import random
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from fpdf import FPDF
from PIL import Image, ImageFilter
from pypdf import PdfReader, PdfWriter

from documents.ocr_reader import OcrResult, ocr_document
from documents.readers import read_document
from extraction.contract import ExtractionError
from samples.drawing import draw
from samples.invoices import InvoiceLabels, Layout
from samples.layouts import render
from samples.scans import ScanFormat, rasterise, scan
from samples.writing import Style

pytestmark = pytest.mark.usefixtures("fresh_sandbox", "requires_ocr")


def _invoice(seed: int, locale: str = "de-DE") -> tuple[InvoiceLabels, Style, bytes]:
    labels, style = draw(seed, locale=locale, layout=Layout.BLOCK, lines=3)
    return labels, style, render(labels, style)[0]


@pytest.fixture(scope="module")
def german_invoice() -> tuple[InvoiceLabels, Style, bytes]:
    return _invoice(11)


def _written(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def _compact(text: str) -> str:
    return "".join(text.split())


@pytest.mark.parametrize("form", list(ScanFormat), ids=str)
def test_a_scanned_invoice_reads_with_its_number_and_total(
    form: ScanFormat, german_invoice: tuple[InvoiceLabels, Style, bytes], tmp_path: Path
) -> None:
    labels, style, pdf = german_invoice
    path = _written(tmp_path, f"scan.{form.extension}", scan(pdf, random.Random(5), form))

    result = ocr_document(path, extension=form.extension, filename=path.name)

    assert result.page_count == 1
    assert labels.invoice_number in result.text
    # Spaces inside an amount ("1 234,56") are the one liberty OCR may take with it.
    assert _compact(style.amount(labels.total)) in _compact(result.text)
    page = result.pages[0].layout
    assert page.number == 1 and page.ocr_confidence is not None and page.ocr_confidence > 70
    # An A4 page, in points, whatever resolution the scan was made at.
    assert (round(page.width), round(page.height)) == pytest.approx((595, 842), abs=3)
    number = next(word for word in page.words if labels.invoice_number in word.text)
    assert 0 <= number.x0 < number.x1 <= page.width
    assert 0 <= number.top < number.bottom <= page.height


def test_an_image_upload_is_read_by_ocr(
    german_invoice: tuple[InvoiceLabels, Style, bytes], tmp_path: Path
) -> None:
    labels, _style, pdf = german_invoice
    path = _written(tmp_path, "photo.png", scan(pdf, random.Random(6), ScanFormat.PNG))

    read = read_document(path, content_type="image/png", filename="photo.png")

    assert labels.invoice_number in read.text
    assert (read.page_count, read.truncated) == (1, False)


def test_a_photo_taken_sideways_is_turned_upright_and_a_transparent_one_put_on_white(
    german_invoice: tuple[InvoiceLabels, Style, bytes], tmp_path: Path
) -> None:
    labels, _style, pdf = german_invoice
    upright = Image.open(io.BytesIO(scan(pdf, random.Random(9), ScanFormat.PNG)))
    sideways = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to show it"
    sideways.save(tmp_path / "sideways.jpg", quality=90, exif=exif, dpi=(200, 200))
    # Ink opaque, paper transparent: read as it comes, a transparent pixel is black.
    ink = Image.new("RGBA", upright.size, (0, 0, 0, 0))
    ink.putalpha(upright.point(lambda value: 255 - value))
    ink.save(tmp_path / "transparent.png", dpi=(200, 200))

    for name, extension in (("sideways.jpg", "jpg"), ("transparent.png", "png")):
        result = ocr_document(tmp_path / name, extension=extension, filename=name)
        page = result.pages[0].layout
        assert labels.invoice_number in result.text, name
        assert page.width < page.height, name  # portrait, as the invoice is


ACCENTED = (
    "Müller Bäckerei Straße Größe Grüße März",
    "Ärger Öffnung Übersicht Österreich",
    "café crème façade garçon élève Reçu",
    "niño España año señor mañana",
    "Total €1.234,56 Betrag 45,00 €",
    "Amount £1,234.56 paid £12.00",
)


def _characters_png(folder: Path, dpi: int, degrade: bool) -> Path:
    from samples.scans import degrade as scanned

    pdf = FPDF(unit="pt", format="A4")
    pdf.core_fonts_encoding = "windows-1252"
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    for line in ACCENTED:
        pdf.cell(0, 22, line, new_x="LMARGIN", new_y="NEXT")
    image = rasterise(bytes(pdf.output()), dpi)[0]
    if degrade:
        image = scanned(image, random.Random(7))
    path = folder / "characters.png"
    image.save(path, dpi=(dpi, dpi))
    return path


@pytest.mark.parametrize(("dpi", "degrade"), [(300, False), (200, True)], ids=["clean", "scanned"])
def test_umlauts_accents_and_currency_signs_are_read(
    dpi: int, degrade: bool, tmp_path: Path
) -> None:
    path = _characters_png(tmp_path, dpi, degrade)

    text = ocr_document(path, extension="png", filename=path.name).text

    read = set(text.split())
    for line in ACCENTED:
        for word in line.split():
            if not word.isascii():
                assert word in read, (word, text)


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares `width` x `height` pixels in a few dozen bytes: a decompression bomb
    as a decoder meets it (the pixel data would be inflated from almost nothing)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit grey
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
        + chunk(b"IEND", b"")
    )


def test_a_decompression_bomb_fails_clearly_and_the_next_image_is_read(
    german_invoice: tuple[InvoiceLabels, Style, bytes], tmp_path: Path
) -> None:
    bomb = _written(tmp_path, "bomb.png", _png_header_only(100_000, 100_000))

    with pytest.raises(ExtractionError) as refused:
        read_document(bomb, content_type="image/png", filename="bomb.png")

    assert refused.value.code == "too_large"
    assert refused.value.message.startswith("bomb.png is too large to OCR: ")
    assert "10000000000 pixels" in refused.value.message.replace(",", "")
    labels, _style, pdf = german_invoice
    path = _written(tmp_path, "next.jpg", scan(pdf, random.Random(8), ScanFormat.JPEG))
    assert labels.invoice_number in ocr_document(path, extension="jpg", filename="next.jpg").text


def test_an_image_over_the_pixel_limit_is_refused_before_it_is_decoded(
    settings, tmp_path: Path
) -> None:
    settings.SHEAF_OCR_MAX_MEGAPIXELS = 1
    buffer = io.BytesIO()
    Image.new("L", (1500, 1000), 255).save(buffer, "TIFF")  # 1.5 MP: Pillow alone only warns
    path = _written(tmp_path, "wide.tif", buffer.getvalue())

    with pytest.raises(ExtractionError) as refused:
        ocr_document(path, extension="tif", filename="wide.tif")

    assert (refused.value.code, refused.value.message) == (
        "too_large",
        "wide.tif is too large to OCR: page 1 is 1,500 x 1,000 pixels and OCR reads at most "
        "1,000,000.",
    )


def test_a_pdf_page_too_large_to_render_legibly_is_refused(tmp_path: Path) -> None:
    pdf = FPDF(unit="pt", format=(14_400, 14_400))  # 200 x 200 inches, PDF's largest page
    pdf.add_page()
    path = _written(tmp_path, "poster.pdf", bytes(pdf.output()))

    with pytest.raises(ExtractionError) as refused:
        ocr_document(path, extension="pdf", filename="poster.pdf")

    assert refused.value.code == "too_large"
    assert "page 1 is 200 x 200 inches" in refused.value.message


def test_a_broken_image_is_malformed(tmp_path: Path) -> None:
    path = _written(tmp_path, "cut.png", _png_header_only(400, 300)[:40])

    with pytest.raises(ExtractionError) as refused:
        ocr_document(path, extension="png", filename="cut.png")

    assert refused.value.code == "malformed"
    assert refused.value.message.startswith("cut.png is not a readable PNG image: ")


def _tilted_scan(folder: Path, pdf: bytes, *, dpi: int, degrees: float) -> Path:
    """`pdf`'s first page scanned at `dpi`, `degrees` off straight, a little blurred."""
    page = rasterise(pdf, dpi)[0]
    page = page.rotate(degrees, resample=Image.Resampling.BICUBIC, fillcolor=255)
    path = folder / "tilted.png"
    page.filter(ImageFilter.GaussianBlur(0.5)).save(path, dpi=(dpi, dpi))
    return path


def _lines_with(text: str, value: str) -> list[str]:
    """The lines of `text` holding `value` (spaces aside)."""
    return [line for line in text.splitlines() if _compact(value) in _compact(line)]


@pytest.mark.parametrize(
    ("locale", "layout", "degrees"),
    [("en-US", Layout.LETTERHEAD, 1.5), ("de-DE", Layout.TOTALS_ROW, -1.5)],
    ids=["letterhead", "totals-row"],
)
def test_a_150_dpi_scan_off_straight_reads_each_value_on_the_line_of_its_label(
    locale: str, layout: Layout, degrees: float, tmp_path: Path
) -> None:
    labels, style = draw(21, locale=locale, layout=layout, lines=3)
    path = _tilted_scan(tmp_path, render(labels, style)[0], dpi=150, degrees=degrees)

    result = ocr_document(path, extension="png", filename=path.name)

    total = style.amount(labels.total)
    total_label = style.word("total_row" if layout is Layout.TOTALS_ROW else "total")
    for label, value in (
        (style.word("number"), labels.invoice_number),
        (style.word("date"), style.date(labels.date)),
        (total_label, total),
    ):
        assert any(label in line for line in _lines_with(result.text, value)), (label, result.text)
    # The words' boxes say so too: the label's first word and the amount stand level, as the
    # offline engine pairs them.
    words = result.pages[0].layout.words
    label = next(w for w in words if w.text == total_label.split()[0])
    middle, height = (label.top + label.bottom) / 2, label.bottom - label.top
    amounts = [w for w in words if _compact(total) in _compact(w.text)]
    assert any(abs((w.top + w.bottom) / 2 - middle) < 0.4 * height for w in amounts), amounts


def test_a_receipts_monospaced_amounts_are_read_whole(tmp_path: Path) -> None:
    labels, style = draw(30, locale="en-GB", layout=Layout.RECEIPT, lines=12)
    pdf = render(labels, style)[0]
    path = _written(tmp_path, "receipt.tif", scan(pdf, random.Random(30), ScanFormat.TIFF))

    text = ocr_document(path, extension="tif", filename=path.name).text

    words = {word.strip("£$€") for word in text.split()}
    amounts = [style.amount(item.amount) for item in labels.line_items]
    read = [amount for amount in amounts if amount in words]
    # OCR may misread a digit or two on a grainy scan, but an amount is never cut in two.
    assert len(read) >= 0.8 * len(amounts), text
    assert style.amount(labels.total) in words, text


def test_a_page_without_writing_is_read_as_no_text(tmp_path: Path) -> None:
    from tests.support.documents import image_only_pdf

    path = _written(tmp_path, "shapes.pdf", image_only_pdf(seed=3, pages=2))

    result = ocr_document(path, extension="pdf", filename="shapes.pdf")

    assert result.page_count == 2
    assert [page.legible for page in result.pages] == [False, False]
    assert (result.text, result.confidence) == ("\f", None)


@pytest.fixture(scope="module")
def six_page_scan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[str]]]:
    """Six scanned invoices in one image-only PDF, and their invoice numbers."""
    writer = PdfWriter()
    numbers = []
    for seed in range(21, 27):
        labels, _style, pdf = _invoice(seed, locale="fr-FR")
        numbers.append(labels.invoice_number)
        writer.append(PdfReader(io.BytesIO(scan(pdf, random.Random(seed), ScanFormat.PDF))))
    path = tmp_path_factory.mktemp("scans") / "six.pdf"
    with path.open("wb") as out:
        writer.write(out)
    yield path, numbers


def test_each_page_has_its_own_cpu_limit(settings, six_page_scan: tuple[Path, list[str]]) -> None:
    # Six pages need several seconds of CPU together (the model's loading and about half a
    # second a page), more than the two seconds each page is given.
    settings.SHEAF_OCR_PAGE_SECONDS = 2
    path, numbers = six_page_scan

    result = ocr_document(path, extension="pdf", filename="six.pdf")

    assert [page.layout.number for page in result.pages] == [1, 2, 3, 4, 5, 6]
    assert [number in page.text for page, number in zip(result.pages, numbers, strict=True)] == [
        True
    ] * 6
    assert result.text.count("\f") == 5


def test_the_pages_asked_for_are_the_pages_read(six_page_scan: tuple[Path, list[str]]) -> None:
    path, numbers = six_page_scan

    result = ocr_document(path, extension="pdf", filename="six.pdf", pages=[2, 5])

    assert isinstance(result, OcrResult)
    assert result.page_count == 6
    assert [page.layout.number for page in result.pages] == [2, 5]
    assert numbers[1] in result.pages[0].text and numbers[4] in result.pages[1].text


@pytest.mark.parametrize(
    ("setting", "value", "code", "message"),
    [
        (
            "SHEAF_OCR_DOCUMENT_SECONDS",
            1,
            "timeout",
            "six.pdf took too long to OCR: its pages took more than 1 s together.",
        ),
        (
            # Refused before any page is read: the page count comes with the first page asked.
            "SHEAF_OCR_MAX_PAGES",
            5,
            "too_large",
            "six.pdf is too large to OCR: it has 6 pages to OCR and the limit is 5.",
        ),
    ],
    ids=["document-budget", "page-cap"],
)
def test_a_scan_past_the_document_limits_fails_with_a_clear_error(
    settings,
    six_page_scan: tuple[Path, list[str]],
    setting: str,
    value: int,
    code: str,
    message: str,
) -> None:
    setattr(settings, setting, value)
    path, _numbers = six_page_scan

    with pytest.raises(ExtractionError) as refused:
        ocr_document(path, extension="pdf", filename="six.pdf")

    assert (refused.value.code, refused.value.message) == (code, message)


def test_without_the_model_a_scan_says_ocr_is_not_installed(settings, tmp_path: Path) -> None:
    settings.SHEAF_OCR_TESSDATA = str(tmp_path)
    path = _written(tmp_path, "scan.png", _png_header_only(10, 10))

    with pytest.raises(ExtractionError) as refused:
        read_document(path, content_type="image/png", filename="scan.png")

    assert refused.value.code == "unsupported_type"
    assert "scan.png is an image, and OCR is not installed on this server" in str(refused.value)


# ---- PDFs whose pages are scans, read through documents.readers ------------------------------

PDF = "application/pdf"


@pytest.fixture(scope="module")
def born_digital_then_scanned(
    german_invoice: tuple[InvoiceLabels, Style, bytes],
) -> tuple[bytes, list[str]]:
    """A born-digital invoice with a scanned invoice as its second page (a signed copy, say)."""
    first, _style, pdf = german_invoice
    second, _style, other = _invoice(12, locale="fr-FR")
    writer = PdfWriter()
    writer.append(PdfReader(io.BytesIO(pdf)))
    writer.append(PdfReader(io.BytesIO(scan(other, random.Random(12), ScanFormat.PDF))))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue(), [first.invoice_number, second.invoice_number]


def test_a_scanned_pdf_is_read_by_ocr_with_its_words_and_confidence(
    german_invoice: tuple[InvoiceLabels, Style, bytes], tmp_path: Path
) -> None:
    labels, _style, pdf = german_invoice
    path = _written(tmp_path, "scan.pdf", scan(pdf, random.Random(5), ScanFormat.PDF))

    result = read_document(path, content_type=PDF, filename="scan.pdf")

    assert result.page_count == 1 and labels.invoice_number in result.text
    (page,) = result.pages
    assert (page.text_layer, page.source) == (False, "ocr")
    assert page.text == result.text
    assert page.ocr_confidence is not None and page.ocr_confidence > 70
    assert result.ocr_confidence == round(page.ocr_confidence, 1)  # what the document keeps
    assert any(labels.invoice_number in word[0] for word in page.words)


def test_only_the_pages_without_a_text_layer_are_ocred(
    born_digital_then_scanned: tuple[bytes, list[str]], tmp_path: Path
) -> None:
    data, (first_number, second_number) = born_digital_then_scanned
    path = _written(tmp_path, "signed.pdf", data)

    result = read_document(path, content_type=PDF, filename="signed.pdf")

    typed, scanned = result.pages
    assert (typed.source, typed.ocr_confidence) == ("text", None)
    assert result.ocr_confidence == round(scanned.ocr_confidence, 1)
    assert (scanned.source, scanned.text_layer) == ("ocr", False)
    assert first_number in typed.text and second_number in scanned.text
    assert result.text == f"{typed.text}\f{scanned.text}"


def test_a_scanned_pdf_past_the_ocr_page_limit_reads_its_first_pages_and_says_the_text_is_cut(
    settings, six_page_scan: tuple[Path, list[str]]
) -> None:
    settings.SHEAF_OCR_MAX_PAGES = 2
    path, numbers = six_page_scan

    result = read_document(path, content_type=PDF, filename="six.pdf")

    assert (result.page_count, result.truncated) == (6, True)
    assert [page.source for page in result.pages] == ["ocr", "ocr", None, None, None, None]
    assert numbers[0] in result.text and numbers[1] in result.text
    assert numbers[2] not in result.text


def test_a_pdf_of_pictures_without_writing_has_no_text_layer(tmp_path: Path) -> None:
    from tests.support.documents import image_only_pdf

    path = _written(tmp_path, "shapes.pdf", image_only_pdf(seed=3, pages=2))

    with pytest.raises(ExtractionError) as refused:
        read_document(path, content_type=PDF, filename="shapes.pdf")

    assert (refused.value.code, refused.value.message, refused.value.page_count) == (
        "no_text_layer",
        "shapes.pdf has no text layer: its pages are images in which OCR found no text.",
        2,
    )


def test_without_the_model_a_scanned_pdf_says_so_and_a_partly_scanned_one_keeps_its_text(
    settings,
    german_invoice: tuple[InvoiceLabels, Style, bytes],
    born_digital_then_scanned: tuple[bytes, list[str]],
    tmp_path: Path,
) -> None:
    settings.SHEAF_OCR_TESSDATA = str(tmp_path)
    _labels, _style, pdf = german_invoice
    scanned = _written(tmp_path, "scan.pdf", scan(pdf, random.Random(5), ScanFormat.PDF))
    partly = _written(tmp_path, "signed.pdf", born_digital_then_scanned[0])

    with pytest.raises(ExtractionError) as refused:
        read_document(scanned, content_type=PDF, filename="scan.pdf")
    result = read_document(partly, content_type=PDF, filename="signed.pdf")

    assert refused.value.code == "no_text_layer"
    assert "scan.pdf has no text layer, and OCR is not installed" in refused.value.message
    assert [page.source for page in result.pages] == ["text", None]
    assert born_digital_then_scanned[1][0] in result.text
