"""A page of a stored PDF or image as a PNG a person looks at, in the reader sandbox.

The "render" operation (`documents.sandbox`): pypdfium2 draws a PDF page, Pillow opens an image
(a TIFF's frames are its pages), turned upright by its EXIF orientation; the picture is at most
`width` pixels wide and never larger than `max_pixels` before it is drawn, so a hostile file
fails its page, never the worker.
"""

from __future__ import annotations

import base64
import io
import math
from typing import Any

import pypdfium2
from PIL import Image, ImageOps, UnidentifiedImageError

from documents.sandbox import Refused

_PILLOW_FORMATS = {"png": ["PNG"], "jpeg": ["JPEG"], "tiff": ["TIFF"]}


def render(arguments: dict[str, Any]) -> dict[str, Any]:
    """Page arguments["page"] (1-based) of the file at arguments["path"] (arguments["format"]:
    pdf, png, jpeg or tiff) as a PNG at most arguments["width"] pixels wide.

    Returns {"page_count", "png" (base64), "width", "height" (the PNG's pixels)}.
    """
    kind, number = arguments["format"], arguments["page"]
    width, max_pixels = arguments["width"], arguments["max_pixels"]
    with open(arguments["path"], "rb") as stream:
        if kind == "pdf":
            image, page_count = _pdf_page(stream, number, width, max_pixels)
        elif kind in _PILLOW_FORMATS:
            image, page_count = _image_page(stream, kind, number, width, max_pixels)
        else:
            raise ValueError(f"no pages to render in a {kind!r} file")
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return {
        "page_count": page_count,
        "png": base64.b64encode(out.getvalue()).decode("ascii"),
        "width": image.width,
        "height": image.height,
    }


def _pdf_page(
    stream: io.BufferedReader, number: int, width: int, max_pixels: int
) -> tuple[Image.Image, int]:
    try:
        document = pypdfium2.PdfDocument(stream)
    except pypdfium2.PdfiumError as error:
        code = "encrypted" if "password" in str(error).lower() else "malformed"
        raise Refused(code, str(error)) from None
    try:
        page_count = len(document)
        if not 1 <= number <= page_count:
            raise Refused("malformed", f"it has no page {number}")
        page = document[number - 1]
        points_wide, points_high = page.get_size()
        scale = width / max(points_wide, 1.0)
        # Never more pixels than the limit, whatever the page's shape.
        scale = min(scale, math.sqrt(max_pixels / max(points_wide * points_high, 1.0)))
        image = page.render(scale=scale).to_pil().convert("RGB")
    except pypdfium2.PdfiumError as error:
        raise Refused("malformed", str(error)) from None
    finally:
        document.close()
    return image, page_count


def _image_page(
    stream: io.BufferedReader, kind: str, number: int, width: int, max_pixels: int
) -> tuple[Image.Image, int]:
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with Image.open(stream, formats=_PILLOW_FORMATS[kind]) as opened:
            page_count = getattr(opened, "n_frames", 1) if kind == "tiff" else 1
            if not 1 <= number <= page_count:
                raise Refused("malformed", f"it has no page {number}")
            opened.seek(number - 1)
            if opened.width * opened.height > max_pixels:
                raise Refused("too_large", f"it has more than {max_pixels:,} pixels")
            image = ImageOps.exif_transpose(opened).convert("RGBA")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as error:
        raise Refused("malformed", str(error)) from None
    white = Image.new("RGB", image.size, "white")
    white.paste(image, mask=image.getchannel("A"))
    if white.width > width:
        white = white.resize((width, round(white.height * width / white.width)))
    return white, page_count
