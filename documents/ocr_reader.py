"""OCR of a stored scan or photo, page by page, in the reader sandbox.

`ocr_document` calls the sandbox's "ocr" operation (`documents.ocr`) once per page, each page
under its own CPU and memory limits (SHEAF_OCR_PAGE_SECONDS, SHEAF_OCR_MEMORY_MB), so a
ten-page scan gets ten pages' worth of time, while all its pages together stay within
SHEAF_OCR_DOCUMENT_SECONDS of wall clock and SHEAF_OCR_MAX_PAGES pages. Refusals become
`ExtractionError`s naming the file, as `documents.readers` words them.

OCR needs Tesseract's model on the server (`ocr_available`): `make run` and `make test` install
Debian's tesseract-ocr-script-latn where they can (root or passwordless sudo). Without it a
scan cannot be read, and `ocr_document` says so.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

from documents import sandbox
from extraction.contract import PAGE_BREAK, ExtractionError, PageLayout, Word

# Upload kinds (documents.uploads.KINDS) OCR can read, as the operation names their formats.
FORMATS = {"pdf": "pdf", "png": "png", "jpg": "jpeg", "jpeg": "jpeg", "tif": "tiff", "tiff": "tiff"}

_MESSAGES = {
    "encrypted": "{file} is a password-protected PDF; remove the password and upload it again.",
    "too_large": "{file} is too large to OCR: {reason}.",
    "timeout": "{file} took too long to OCR: {reason}.",
    "malformed": "{file} is not a readable {label}: {reason}.",
}
_LABELS = {"pdf": "PDF", "png": "PNG image", "jpeg": "JPEG image", "tiff": "TIFF image"}


@dataclass(frozen=True)
class OcrPage:
    """One page as OCR read it: its words with boxes (points from the top-left) and their mean
    confidence in `layout`, and its text (a line per row of words; a blank line where rows are
    further apart than a line)."""

    layout: PageLayout
    text: str
    confidences: tuple[float, ...]  # of each word of layout.words, 0-100
    dpi: int  # the resolution it was read at

    @property
    def legible(self) -> bool:
        """Whether OCR found any text on the page at all."""
        return bool(self.layout.words)


@dataclass(frozen=True)
class OcrResult:
    pages: tuple[OcrPage, ...]  # the pages asked for, in order
    page_count: int  # pages in the file

    @property
    def text(self) -> str:
        """The pages' texts joined with form feeds."""
        return PAGE_BREAK.join(page.text for page in self.pages)

    @property
    def confidence(self) -> float | None:
        """The mean confidence (0-100) of every word read, None when none was."""
        confidences = [
            page.layout.ocr_confidence * len(page.layout.words)
            for page in self.pages
            if page.layout.ocr_confidence is not None
        ]
        words = sum(len(page.layout.words) for page in self.pages)
        return sum(confidences) / words if words else None


def ocr_available() -> bool:
    """Whether this server can OCR: tesserocr installed and every model of SHEAF_OCR_LANGUAGES
    in SHEAF_OCR_TESSDATA. Checked without loading either into this process."""
    import importlib.util

    if importlib.util.find_spec("tesserocr") is None:
        return False
    folder = Path(settings.SHEAF_OCR_TESSDATA)
    languages = [name for name in settings.SHEAF_OCR_LANGUAGES.split("+") if name]
    return bool(languages) and all((folder / f"{name}.traineddata").is_file() for name in languages)


def ocr_document(
    path: str | Path, *, extension: str, filename: str, pages: Iterable[int] | None = None
) -> OcrResult:
    """OCR of the stored file at `path` (upload extension pdf, png, jpg, jpeg, tif or tiff):
    the 1-based `pages` asked for (at most SHEAF_OCR_MAX_PAGES), or every page. Thread-safe.

    Raises ExtractionError (permanent) with code encrypted, malformed, too_large or timeout, or
    with no_text_layer (a PDF) or unsupported_type (an image) when this server has no OCR;
    OSError if the stored file itself cannot be opened.
    """
    kind = FORMATS.get(extension.lower())
    if kind is None:
        raise ValueError(f"OCR does not read .{extension} files")
    if not ocr_available():
        what = "has no text layer" if kind == "pdf" else "is an image"
        raise ExtractionError(
            "no_text_layer" if kind == "pdf" else "unsupported_type",
            f"{filename} {what}, and OCR is not installed on this server (Tesseract's "
            f"{settings.SHEAF_OCR_LANGUAGES!r} model in {settings.SHEAF_OCR_TESSDATA}).",
        )
    wanted = list(pages) if pages is not None else None
    if wanted is not None and len(wanted) > settings.SHEAF_OCR_MAX_PAGES:
        raise ValueError(f"{len(wanted)} pages asked, more than SHEAF_OCR_MAX_PAGES")
    deadline = time.monotonic() + settings.SHEAF_OCR_DOCUMENT_SECONDS
    arguments: dict[str, Any] = {
        "path": os.path.abspath(path),
        "format": kind,
        # A whole file is refused beyond the OCR page limit; chosen pages of a PDF are within
        # it already, and the PDF within the reader's page limit.
        "max_pages": settings.SHEAF_OCR_MAX_PAGES
        if wanted is None
        else max(settings.SHEAF_OCR_MAX_PAGES, settings.SHEAF_MAX_PDF_PAGES),
        "max_pixels": settings.SHEAF_OCR_MAX_MEGAPIXELS * 1_000_000,
        "languages": settings.SHEAF_OCR_LANGUAGES,
        "tessdata": settings.SHEAF_OCR_TESSDATA,
    }
    read: list[OcrPage] = []
    page_count = 0
    # The first page asked tells how many there are; until then only page 1 is known to exist.
    queue = list(wanted) if wanted is not None else [1]
    while queue:
        number = queue.pop(0)
        answer = _ocr_page(arguments, number, deadline, filename, kind)
        if not page_count:
            page_count = answer["page_count"]
            if wanted is None:
                queue = list(range(2, page_count + 1))
        read.append(_page(number, answer))
    return OcrResult(pages=tuple(read), page_count=page_count)


def _ocr_page(
    arguments: dict[str, Any], number: int, deadline: float, filename: str, kind: str
) -> dict[str, Any]:
    cpu = settings.SHEAF_OCR_PAGE_SECONDS
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        seconds = settings.SHEAF_OCR_DOCUMENT_SECONDS
        raise ExtractionError(
            "timeout",
            _MESSAGES["timeout"].format(
                file=filename, reason=f"its pages took more than {seconds} s together"
            ),
        )
    # Wall clock beyond the CPU time: a page waits for a core on a busy machine.
    wall = min(3 * cpu, remaining)
    limits = sandbox.Limits(
        cpu_seconds=cpu, memory_mb=settings.SHEAF_OCR_MEMORY_MB, wall_seconds=wall
    )
    try:
        return sandbox.run(
            "ocr", {**arguments, "page": number}, limits, recycle_mb=settings.SHEAF_OCR_RECYCLE_MB
        )
    except sandbox.SandboxError as error:
        reason = error.reason
        if error.code == "timeout" and wall < 3 * cpu and "CPU" not in reason:
            seconds = settings.SHEAF_OCR_DOCUMENT_SECONDS
            reason = f"its pages took more than {seconds} s together"
        elif error.code in ("timeout", "too_large") and "page" not in reason:
            # The sandbox's own words ("it needs more than 20 s of CPU time"), placed.
            reason = f"on page {number}, {reason}"
        template = _MESSAGES.get(error.code, _MESSAGES["malformed"])
        raise ExtractionError(
            error.code, template.format(file=filename, reason=reason, label=_LABELS[kind])
        ) from None


def _page(number: int, answer: dict[str, Any]) -> OcrPage:
    words = tuple(
        Word(text=text, x0=x0, top=top, x1=x1, bottom=bottom)
        for text, x0, top, x1, bottom, _confidence in answer["words"]
    )
    confidences = tuple(float(word[5]) for word in answer["words"])
    layout = PageLayout(
        number=number,
        width=answer["width"],
        height=answer["height"],
        words=words,
        ocr_confidence=answer["confidence"],
    )
    return OcrPage(layout=layout, text=answer["text"], confidences=confidences, dpi=answer["dpi"])
