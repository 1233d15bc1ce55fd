"""Scans of generated invoices: each page of the born-digital PDF rendered by pypdfium2, then made
to look scanned with Pillow (a slight rotation, blur, grain and specks of dust, uneven contrast,
JPEG artefacts), and written as an image-only PDF or as PNG, JPEG or (multi-page) TIFF files.

A scan shows exactly what its born-digital twin shows, so it carries the same labels. Every
choice comes from the caller's seeded generator: the same seed gives the same bytes.
"""

from __future__ import annotations

import io
import random
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum

import pypdfium2
from fpdf import FPDF
from PIL import Image, ImageChops, ImageEnhance, ImageFilter


class ScanFormat(StrEnum):
    PDF = "pdf"  # image-only PDF: every page a JPEG, no text layer
    PNG = "png"
    JPEG = "jpeg"
    TIFF = "tiff"

    @property
    def extension(self) -> str:
        return {"jpeg": "jpg", "tiff": "tif"}.get(self.value, self.value)

    @property
    def multi_page(self) -> bool:
        return self in (ScanFormat.PDF, ScanFormat.TIFF)


def rasterise(pdf: bytes, dpi: int) -> list[Image.Image]:
    """Every page of `pdf` as a greyscale image at `dpi`."""
    document = pypdfium2.PdfDocument(pdf)
    try:
        return [
            page.render(scale=dpi / 72, grayscale=True).to_pil().convert("L") for page in document
        ]
    finally:
        document.close()


def degrade(page: Image.Image, rng: random.Random) -> Image.Image:
    """One page made to look scanned: within ±1.5° of straight, a little blurred, grainy, with
    dark specks, its contrast and brightness off, and JPEG artefacts."""
    image = page.rotate(rng.uniform(-1.5, 1.5), resample=Image.Resampling.BICUBIC, fillcolor=255)
    image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.2, 0.8)))
    # Noise from the seeded generator (Pillow's own noise does not take a seed): most pixels get
    # a little grain, about one in 400 a dark speck.
    grain = rng.randint(8, 28)
    lookup = [150 if value < 1 else value % grain for value in range(256)]
    noise = Image.frombytes("L", image.size, rng.randbytes(image.width * image.height))
    image = ImageChops.subtract(image, noise.point(lookup))
    image = ImageEnhance.Contrast(image).enhance(rng.uniform(0.75, 1.1))
    image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.92, 1.05))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=rng.randint(35, 75))
    return Image.open(io.BytesIO(buffer.getvalue())).convert("L")


def scan(pdf: bytes, rng: random.Random, form: ScanFormat) -> bytes:
    """`pdf` scanned into `form`. PNG and JPEG hold one page: callers give them one-page PDFs."""
    dpi = rng.choice((150, 200, 200, 240))
    pages = [degrade(page, rng) for page in rasterise(pdf, dpi)]
    if not form.multi_page and len(pages) > 1:
        raise ValueError(f"a {form} file holds one page; this PDF has {len(pages)}")
    if form is ScanFormat.PDF:
        return _image_pdf(pages, dpi, rng)
    buffer = io.BytesIO()
    if form is ScanFormat.PNG:
        pages[0].save(buffer, "PNG", dpi=(dpi, dpi), optimize=False)
    elif form is ScanFormat.JPEG:
        pages[0].save(buffer, "JPEG", quality=rng.randint(60, 90), dpi=(dpi, dpi))
    else:
        pages[0].save(
            buffer,
            "TIFF",
            save_all=True,
            append_images=pages[1:],
            compression="tiff_deflate",
            dpi=(dpi, dpi),
        )
    return buffer.getvalue()


def _image_pdf(pages: Sequence[Image.Image], dpi: int, rng: random.Random) -> bytes:
    """An image-only PDF, as scanners write them: each page one JPEG at the page's size."""
    pdf = FPDF(unit="pt")
    # Fixed metadata keeps the bytes a function of the seed.
    pdf.set_creation_date(datetime(2024, 1, 1, tzinfo=UTC))
    pdf.set_producer("Scanner")
    quality = rng.randint(50, 80)
    for page in pages:
        width, height = page.width * 72 / dpi, page.height * 72 / dpi
        pdf.add_page(format=(width, height))
        buffer = io.BytesIO()
        page.save(buffer, "JPEG", quality=quality)
        pdf.image(io.BytesIO(buffer.getvalue()), x=0, y=0, w=width, h=height)
    return bytes(pdf.output())
