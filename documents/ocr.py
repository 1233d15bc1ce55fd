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

How its words are read (`_recognise`; figures from the development set's 30 scans, the bench's
quality block): Tesseract's automatic page segmentation, the blocks it takes for pictures read
again as text, each word given its line's font box and the boxes turned level with the page.
Measured against the alternatives: a single uniform block (PSM 6) read 1 point more of the twins'
words but read ruled tables' rules as letters and lost the label row above a boxed table's
values; sparse text (PSM 11) drops lone digits (quantities); one column (PSM 4) loses lines as
PSM 3 does; Otsu binarisation read 82 % of the words, upscaling to 300 dpi 87 %, rendering
PDF scans at 300 dpi the same words more slowly; turning the image itself level read fewer words
than turning the boxes. The text is built from the boxes, a line per row of words.

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
from dataclasses import dataclass, field
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
    at), "text" (a line per row of words, top to bottom; a blank line where rows are further
    apart than a line), "words" ([text, x0, top, x1, bottom, confidence] in reading order: font
    boxes in points from the top-left of the page straightened, confidence 0-100),
    "confidence" (the mean of the words', None when none was found)}.
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


Word = tuple[str, float, float, float, float, float]

# Tesseract's block types for what its layout analysis takes for a picture (PolyBlockType).
_PICTURES = frozenset({9, 10, 11})  # flowing, heading and pull-out image
# A word's box is its line's type (ink from the descenders to the ascenders) this many times
# over: the font box a text layer gives (pdfium's loose boxes measured 1.22 times Tesseract's
# row height on the development set), so the offline engine's geometry reads both alike.
_FONT_BOX = 1.2
# Each side of a word's ink box is widened by this share of its font box's height: the letters'
# side bearings, which a text layer's boxes include (ink boxes came out narrower by 0.08 of the
# height, median). Without it one space between words of a monospaced receipt looks wider
# than a text layer's, and "Lombard Conseil SARL" reads as two cells.
_BEARING = 0.04
# Lines shorter than this (inches) say little about the page's skew.
_SKEW_LINE_INCHES = 0.75
# A page straighter than this (radians, about 0.1°) is left as it is.
_STRAIGHT = 0.002
# A line steeper than this (radians, about 6°) is not a scan's skew: a vertical line of text
# (a margin note, a code up the side) or a misread line; it does not vote.
_MAX_SKEW = 0.1
# Rows of the page's text: words whose middles are closer than this share of the smaller height.
_SAME_ROW = 0.4
# Words of one row closer than this share of their height are one word (see _rows); a space
# between words is about 0.6 of it.
_TOUCHING = 0.3


@dataclass
class _Read:
    """What Tesseract gave for a page, in pixels: each word's ink box, its line's baseline at the
    word and its line's ascent and descent from it; and each line's slope."""

    words: list[tuple[str, int, int, int, int, float, float, float, float, int]] = field(
        default_factory=list
    )  # text, x0, top, x1, bottom, confidence, baseline y, ascent, descent, line number
    slopes: list[float] = field(default_factory=list)
    lines: int = 0


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
    """The page's words (pixel boxes, confidences) and its text, a line per row of words.

    Tesseract's automatic layout analysis finds the page's columns, tables and ruling lines;
    what it takes for a picture it skips, and on a grainy scan that is often a bold line of text,
    as likely as not the total. So every such block is read once more as a block of text: a
    logo's words are little harm, a lost total is.

    Each word's box is then the font box of its line (see _FONT_BOX, _BEARING), turned with the
    page so that its lines run level: a scan a degree off straight drops a value at the right
    margin half a line below its label at the left, and the offline engine, which pairs labels
    and values by their rows, would lose it. Boxes are therefore those of the page straightened
    about its centre, at most a few points off the image near its edges.

    The text is built from those boxes rather than taken in Tesseract's order, so that every word
    of it has its box and a label stays on the line of its value even when Tesseract read them in
    two blocks ("Total" and "1.234,56 EUR" across the page).
    """
    engine = _engine(tessdata, languages)
    pixels = image.tobytes()  # must outlive Recognize: Tesseract does not copy it
    engine.SetImageBytes(pixels, image.width, image.height, 1, image.width)
    engine.SetSourceResolution(dpi)
    read = _Read()
    try:
        if not engine.Recognize():
            raise RuntimeError("Tesseract could not recognise the page")
        pictures = _read_words(engine, read, dpi)
        engine.SetPageSegMode(tesserocr.PSM.SINGLE_BLOCK)
        for left, top, right, bottom in pictures:
            engine.SetRectangle(left, top, right - left, bottom - top)
            if engine.Recognize():
                _read_words(engine, read, dpi)
    finally:
        engine.SetPageSegMode(tesserocr.PSM.AUTO)
        engine.Clear()
    rows = _rows(_straightened(read, image.width / 2, image.height / 2))
    return [word for row in rows for word in row], _text(rows)


def _read_words(
    engine: tesserocr.PyTessBaseAPI, read: _Read, dpi: int
) -> list[tuple[int, int, int, int]]:
    """Adds the words and line slopes of the last recognition to `read`; returns the boxes of
    the blocks taken for pictures."""
    pictures: list[tuple[int, int, int, int]] = []
    iterator = engine.GetIterator()
    if iterator is None:
        return pictures
    level, line = tesserocr.RIL.WORD, tesserocr.RIL.TEXTLINE
    for result in tesserocr.iterate_level(iterator, level):
        if result.IsAtBeginningOf(tesserocr.RIL.BLOCK) and result.BlockType() in _PICTURES:
            pictures.append(result.BoundingBox(tesserocr.RIL.BLOCK))
        if result.IsAtBeginningOf(line):
            read.lines += 1
            baseline = result.Baseline(line)
            if baseline:
                (x0, y0), (x1, y1) = baseline
                slope = math.atan2(y1 - y0, x1 - x0)
                if x1 - x0 > _SKEW_LINE_INCHES * dpi and abs(slope) <= _MAX_SKEW:
                    read.slopes.append(slope)
        try:
            text = " ".join(result.GetUTF8Text(level).split())
        except RuntimeError:  # "No text returned": a picture, or the one element of an empty page
            continue
        if not text:
            continue
        x0, top, x1, bottom = result.BoundingBox(level)
        confidence = float(result.Confidence(level))
        baseline, row = result.Baseline(level), result.RowAttributes()
        if baseline and row and row["row_height"] > 0:
            (_bx0, by0), (_bx1, by1) = baseline
            descent = -float(row["descenders"])
            ascent = float(row["row_height"]) - descent
            middle = (by0 + by1) / 2
        else:
            middle, ascent, descent = float(bottom), float(bottom - top), 0.0
        read.words.append(
            (text, x0, top, x1, bottom, confidence, middle, ascent, descent, read.lines)
        )
    return pictures


def _straightened(read: _Read, centre_x: float, centre_y: float) -> list[tuple[Word, int]]:
    """Each word's font box, turned about the page's centre by the page's skew (the median
    slope of its lines)."""
    slopes = sorted(read.slopes)
    skew = slopes[len(slopes) // 2] if slopes else 0.0
    if abs(skew) < _STRAIGHT:
        skew = 0.0
    cos, sin = math.cos(skew), math.sin(skew)
    words: list[tuple[Word, int]] = []
    for text, x0, _top, x1, _bottom, confidence, baseline, ascent, descent, line in read.words:
        top, bottom = baseline - _FONT_BOX * ascent, baseline + _FONT_BOX * descent
        pad = _BEARING * (bottom - top)
        left, right = x0 - pad, x1 + pad
        # The box's centre turned back by the skew (y grows downwards); its size kept.
        dx, dy = (left + right) / 2 - centre_x, (top + bottom) / 2 - centre_y
        x, y = centre_x + dx * cos + dy * sin, centre_y - dx * sin + dy * cos
        half_width, half_height = (right - left) / 2, (bottom - top) / 2
        box = (
            max(x - half_width, 0.0),
            max(y - half_height, 0.0),
            min(x + half_width, 2 * centre_x),
            min(y + half_height, 2 * centre_y),
        )
        words.append(((text, *box, confidence), line))
    return words


def _rows(words: list[tuple[Word, int]]) -> list[list[Word]]:
    """The words in rows, top to bottom, each left to right: words whose middles are about
    level share a row. Two words of a row that Tesseract read in different lines and that all
    but touch are one word: its column finder splits aligned figures at their decimal point
    ("139." and "20" for 139.20), which a receipt's monospaced amounts often are."""
    rows: list[list[tuple[Word, int]]] = []
    for placed in sorted(words, key=lambda w: (_middle(w[0]), w[0][1])):
        if rows:
            first = rows[-1][0][0]
            if abs(_middle(placed[0]) - _middle(first)) <= _SAME_ROW * min(
                _height(first), _height(placed[0])
            ):
                rows[-1].append(placed)
                continue
        rows.append([placed])
    joined: list[list[Word]] = []
    for row in rows:
        row.sort(key=lambda w: w[0][1])
        out: list[tuple[Word, int]] = [row[0]]
        for word, line in row[1:]:
            last, last_line = out[-1]
            if line != last_line and word[1] - last[3] < _TOUCHING * min(
                _height(last), _height(word)
            ):
                text = last[0] + word[0]
                box = (last[1], min(last[2], word[2]), word[3], max(last[4], word[4]))
                out[-1] = ((text, *box, min(last[5], word[5])), line)
            else:
                out.append((word, line))
        joined.append([word for word, _line in out])
    return joined


def _middle(word: Word) -> float:
    return (word[2] + word[4]) / 2


def _height(word: Word) -> float:
    return max(word[4] - word[2], 1.0)


def _text(rows: list[list[Word]]) -> str:
    """The rows as lines; a blank line where a row is more than a line's height below the
    last."""
    lines: list[str] = []
    for number, row in enumerate(rows):
        if number:
            previous = rows[number - 1]
            gap = min(w[2] for w in row) - max(w[4] for w in previous)
            if gap > max(_height(w) for w in previous):
                lines.append("")
        lines.append(" ".join(word[0] for word in row))
    return "\n".join(lines)


def _reason(error: BaseException) -> str:
    lines = str(error).strip().splitlines() or [type(error).__name__]
    return lines[0][:200].rstrip(".")
