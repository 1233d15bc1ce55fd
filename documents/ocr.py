"""The sandbox's "ocr" operation: one page of a scan (an image-only PDF page, or a PNG, JPEG or
TIFF frame) read by Tesseract, with every word's box and confidence.

Runs in a child of `documents.sandbox`, one page per call, under the OCR limits
(`documents.ocr_reader` turns the settings into them), so nothing here imports Django. The engine
is libtesseract through `tesserocr` (its wheel ships the library) with the "Latin" script model
(Debian's tesseract-ocr-script-latn): measured on the development set's scans it was the one
candidate that read every character of Sheaf's languages (ä ö ü ß é è ç ñ € £) in one model, at
about 0.6 s of CPU per page (BENCHMARKS.md, "OCR choice"). The model is loaded once per child and
kept for its next pages.

How a page becomes an image, and why:

- A PDF page is rendered by pdfium at the resolution of the scan it holds (its largest image's
  pixels per inch), between 150 and 300 dpi: rendering a 150 dpi scan at 300 dpi only enlarges
  its noise, and read 3 points fewer words in a hundred on the development set. A page without
  such an image is rendered at 300 dpi.
- An image file is read at its own resolution, or scaled down to 300 dpi when finer; never
  scaled up (that, too, read fewer words). Its resolution is the one it declares, unless that is
  missing or a screen's (under 100 dpi, as phone photos declare 72): then the image is taken to
  be as wide as an A4 page, which is what a photographed invoice mostly is.
- Every page is greyscale and then median-filtered (3 x 3): scanner grain and specks otherwise
  come out as stray letters between the words (91 % of the twin's words read instead of 86 %).

Hostile input fails the page, never the worker: Pillow refuses more than `max_pixels` pixels
before it decodes anything (a decompression bomb, a 100,000-pixel-wide PNG), a PDF page is
rendered no larger than `max_pixels` (a huge page at a lower resolution, refused below 72 dpi),
a file with more pages than `max_pages` is refused before any page is read, and the sandbox's
CPU and memory limits bound the rest. Failures caused by the file raise `Refused` with code
encrypted, malformed or too_large.
"""

from __future__ import annotations

import math
import os
from typing import IO, Any

# libtesseract built with OpenMP would start a thread per core for every page, and the sandbox
# counts their CPU against the page; set before tesserocr loads the library.
os.environ.setdefault("OMP_THREAD_LIMIT", "1")

import pypdfium2
import pypdfium2.raw as pdfium_c
import tesserocr
from PIL import Image, ImageFilter

from documents.sandbox import Refused

FORMATS = ("pdf", "png", "jpeg", "tiff")
MAX_DPI = 300
MIN_PDF_DPI = 150
# A page shrunk below this is no longer legible; refuse it instead of reading noise.
MIN_DPI = 72
# An image that declares less is taken as a screen's or a camera's default, not a scan's.
MIN_DECLARED_DPI = 100
MAX_DECLARED_DPI = 2400
A4_WIDTH_INCHES = 8.27
# An image covering less of a page than this is a logo, not the scan of the page.
SCAN_COVERAGE = 0.25
_PILLOW_FORMATS = {"png": ["PNG"], "jpeg": ["JPEG"], "tiff": ["TIFF"]}
# EXIF orientation (a phone held sideways), and how to turn such an image upright.
_ORIENTATION = 0x0112
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

_engines: dict[tuple[str, str], tesserocr.PyTessBaseAPI] = {}


def ocr(arguments: dict[str, Any]) -> dict[str, Any]:
    """One page of the file at arguments["path"] (arguments["format"]: pdf, png, jpeg or tiff),
    page arguments["page"] (1-based), read with arguments["languages"] from
    arguments["tessdata"], within arguments["max_pages"] and arguments["max_pixels"].

    Returns {"page_count", "width", "height" (the page in points), "dpi" (the resolution read
    at), "text" (lines, blocks apart by a blank line), "words" ([text, x0, top, x1, bottom,
    confidence], in points from the page's top-left, confidence 0-100), "confidence" (the mean
    of the words', None when none was found)}.
    """
    image, dpi, page_count = page_image(
        arguments["path"],
        arguments["format"],
        arguments["page"],
        max_pages=arguments["max_pages"],
        max_pixels=arguments["max_pixels"],
    )
    width, height = image.width * 72 / dpi, image.height * 72 / dpi
    words, text = _recognise(image, dpi, arguments["tessdata"], arguments["languages"])
    scale = 72 / dpi
    boxes = [
        [word, *(round(edge * scale, 2) for edge in (x0, top, x1, bottom)), round(confidence, 1)]
        for word, x0, top, x1, bottom, confidence in words
    ]
    return {
        "page_count": page_count,
        "width": width,
        "height": height,
        "dpi": dpi,
        "text": text,
        "words": boxes,
        "confidence": sum(w[5] for w in words) / len(words) if words else None,
    }


# ---- pages as images ----------------------------------------------------------------------------


def page_image(
    path: str, kind: str, number: int, *, max_pages: int, max_pixels: int
) -> tuple[Image.Image, int, int]:
    """Page `number` of the file as the image Tesseract is given (greyscale, median-filtered),
    the resolution it is at, and the file's page count."""
    if kind not in FORMATS:
        raise ValueError(f"no OCR for the format {kind!r}")
    # Opened here, outside the handlers below, so a stored file that cannot be opened stays an
    # OSError (the caller's problem) while what the decoders raise is the file's fault.
    with open(path, "rb") as stream:
        if kind == "pdf":
            image, dpi, page_count = _pdf_page(stream, number, max_pages, max_pixels)
        else:
            image, dpi, page_count = _image_page(stream, kind, number, max_pages, max_pixels)
    return image.filter(ImageFilter.MedianFilter(3)), dpi, page_count


def _check_count(page_count: int, number: int, max_pages: int) -> None:
    if page_count > max_pages:
        raise Refused(
            "too_large", f"it has {page_count:,} pages to OCR and the limit is {max_pages:,}"
        )
    if not 1 <= number <= page_count:
        raise ValueError(f"page {number} asked of a file with {page_count} pages")


def _pdf_page(
    stream: IO[bytes], number: int, max_pages: int, max_pixels: int
) -> tuple[Image.Image, int, int]:
    try:
        document = pypdfium2.PdfDocument(stream)
    except pypdfium2.PdfiumError as error:
        if "password" in str(error).lower():
            raise Refused("encrypted") from None
        raise Refused("malformed", _reason(error)) from None
    try:
        page_count = len(document)
        if page_count == 0:
            raise Refused("malformed", "it has no pages")
        _check_count(page_count, number, max_pages)
        page = document[number - 1]
        width, height = page.get_size()
        dpi = _scan_dpi(page, width * height)
        # The largest resolution that keeps the bitmap within max_pixels.
        fitting = math.floor(72 * math.sqrt(max_pixels / max(width * height, 1.0)))
        if fitting < MIN_DPI:
            raise Refused(
                "too_large",
                f"page {number} is {width / 72:,.0f} x {height / 72:,.0f} inches, too large to "
                f"OCR within {max_pixels:,} pixels",
            )
        dpi = min(dpi, fitting)
        image = page.render(scale=dpi / 72, grayscale=True).to_pil().convert("L")
    except pypdfium2.PdfiumError as error:
        raise Refused("malformed", _reason(error)) from None
    finally:
        document.close()
    return image, dpi, page_count


def _scan_dpi(page: pypdfium2.PdfPage, area: float) -> int:
    """The resolution of the scan a page holds: its largest image's pixels per inch across,
    within MIN_PDF_DPI and MAX_DPI; MAX_DPI when no image covers much of the page."""
    best, dpi = 0.0, MAX_DPI
    for image in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=2):
        left, bottom, right, top = image.get_bounds()
        covered = (right - left) * (top - bottom)
        if covered > best and covered >= SCAN_COVERAGE * area:
            pixels_across = image.get_px_size()[0]
            best, dpi = covered, round(pixels_across / max((right - left) / 72, 1e-3))
    return max(MIN_PDF_DPI, min(dpi, MAX_DPI))


def _image_page(
    stream: IO[bytes], kind: str, number: int, max_pages: int, max_pixels: int
) -> tuple[Image.Image, int, int]:
    # Pillow refuses images above twice its limit and warns (the sandbox silences warnings)
    # above it; the explicit check below refuses anything above the limit itself.
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with Image.open(stream, formats=_PILLOW_FORMATS[kind]) as opened:
            page_count = getattr(opened, "n_frames", 1) if kind == "tiff" else 1
            _check_count(page_count, number, max_pages)
            opened.seek(number - 1)
            if opened.width * opened.height > max_pixels:
                raise Refused(
                    "too_large",
                    f"page {number} is {opened.width:,} x {opened.height:,} pixels and OCR "
                    f"reads at most {max_pixels:,}",
                )
            dpi = _declared_dpi(opened)
            if kind == "jpeg" and dpi > MAX_DPI:
                # Decodes at 1/2, 1/4 or 1/8 of the size directly: less memory and time for a
                # camera's 50-megapixel photo.
                full_width, factor = opened.width, dpi / MAX_DPI
                opened.draft("L", (int(opened.width / factor), int(opened.height / factor)))
                dpi = max(MIN_DPI, round(dpi * opened.width / full_width))
            orientation = opened.getexif().get(_ORIENTATION, 1)
            image = _greyscale(opened)
            # Turned after the conversion to grey, a quarter of the memory of a colour photo.
            if orientation in _TRANSPOSE:
                image = image.transpose(_TRANSPOSE[orientation])
    except Image.DecompressionBombError as error:
        raise Refused("too_large", _reason(error)) from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        # Pillow's decoders report a broken file as any of these.
        raise Refused("malformed", _reason(error)) from None
    if dpi > MAX_DPI:
        size = (round(image.width * MAX_DPI / dpi), round(image.height * MAX_DPI / dpi))
        image, dpi = image.resize(size, Image.Resampling.LANCZOS), MAX_DPI
    return image, dpi, page_count


def _declared_dpi(image: Image.Image) -> int:
    declared = image.info.get("dpi")
    try:
        dpi = float(declared[0]) if declared else 0.0
    except (TypeError, ValueError, IndexError):
        dpi = 0.0
    if MIN_DECLARED_DPI <= dpi <= MAX_DECLARED_DPI:
        return round(dpi)
    return max(MIN_DPI, round(min(image.width, image.height) / A4_WIDTH_INCHES))


def _greyscale(image: Image.Image) -> Image.Image:
    """8-bit grey, transparency on white (a transparent pixel's colour is often black). Grey and
    alpha are taken apart, never as a second full-colour copy: a 50-megapixel RGBA PNG is
    200 MB decoded."""
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        return image.convert("I").point(lambda value: value * (1 / 256)).convert("L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        alpha = image.getchannel("A")
        grey = image.convert("L")
        return Image.composite(grey, Image.new("L", image.size, 255), alpha)
    return image.convert("L")


# ---- recognition ------------------------------------------------------------------------------


Word = tuple[str, int, int, int, int, float]


def _engine(tessdata: str, languages: str) -> tesserocr.PyTessBaseAPI:
    key = (tessdata, languages)
    if key not in _engines:
        try:
            _engines[key] = tesserocr.PyTessBaseAPI(path=tessdata, lang=languages)
        except RuntimeError:
            # Not the file's fault: the server lacks the model. The caller checks for it first,
            # so this is a deployment that changed under a running worker.
            raise RuntimeError(f"Tesseract cannot load {languages!r} from {tessdata}") from None
    return _engines[key]


def _recognise(
    image: Image.Image, dpi: int, tessdata: str, languages: str
) -> tuple[list[Word], str]:
    """The page's words in reading order (pixel boxes, confidences), and its text built from
    them: a line per line, a blank line between paragraphs. Built from the words rather than
    taken from Tesseract's own text, so that every word of the text has its box."""
    engine = _engine(tessdata, languages)
    pixels = image.tobytes()  # must outlive Recognize: Tesseract does not copy it
    engine.SetImageBytes(pixels, image.width, image.height, 1, image.width)
    engine.SetSourceResolution(dpi)
    words: list[Word] = []
    parts: list[str] = []
    try:
        if not engine.Recognize():
            raise RuntimeError("Tesseract could not recognise the page")
        level = tesserocr.RIL.WORD
        for result in tesserocr.iterate_level(engine.GetIterator(), level):
            try:
                text = " ".join(result.GetUTF8Text(level).split())
            except RuntimeError:  # "No text returned": the one element of an empty page
                continue
            if not text:
                continue
            x0, top, x1, bottom = result.BoundingBox(level)
            words.append((text, x0, top, x1, bottom, float(result.Confidence(level))))
            if len(words) > 1:
                if result.IsAtBeginningOf(tesserocr.RIL.PARA):
                    parts.append("\n\n")
                elif result.IsAtBeginningOf(tesserocr.RIL.TEXTLINE):
                    parts.append("\n")
                else:
                    parts.append(" ")
            parts.append(text)
    finally:
        engine.Clear()
    return words, "".join(parts)


def _reason(error: BaseException) -> str:
    lines = str(error).strip().splitlines() or [type(error).__name__]
    return lines[0][:200].rstrip(".")
