"""A document's pages as pictures for its review page, and where a quoted value stands on them.

Pages are drawn on first view in the reader sandbox (`documents.rendering`) and kept in storage
beside the original (`<original without extension>.pages/<n>.png`), so they go with it under
retention, batch and account deletion (`documents.services.document_stored_files`).
"""

from __future__ import annotations

import base64
import os
import re
from dataclasses import dataclass

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from documents import sandbox
from documents.models import Document
from documents.ocr_reader import FORMATS
from documents.readresults import ReadPage
from documents.storage import local_path

PAGE_WIDTH_PX = 1100
_SPACE = re.compile(r"\s+")


class PageUnavailable(Exception):
    """The page cannot be drawn: no such page, the original is gone, or it refused to render."""


def has_page_images(document: Document) -> bool:
    """Whether the document's pages are pictures (a PDF or an image), not text or a table."""
    return document.extension.lower() in FORMATS and bool(document.file)


def pages_folder(file_name: str) -> str:
    """Where the pictures of the original stored as `file_name` are kept."""
    return f"{os.path.splitext(file_name)[0]}.pages"


def page_png(document: Document, number: int) -> bytes:
    """Page `number` of the document's original as a PNG, drawn once and then read from storage.
    Raises PageUnavailable."""
    if not has_page_images(document) or not 1 <= number <= (document.page_count or 1):
        raise PageUnavailable(f"{document.original_filename} has no page {number} to show.")
    name = f"{pages_folder(document.file.name or '')}/{number}.png"
    if default_storage.exists(name):
        with default_storage.open(name, "rb") as kept:
            return bytes(kept.read())
    limits = sandbox.Limits(
        cpu_seconds=settings.SHEAF_READER_CPU_SECONDS,
        memory_mb=settings.SHEAF_READER_MEMORY_MB,
        wall_seconds=settings.SHEAF_READER_WALL_SECONDS,
    )
    try:
        with local_path(document.file) as path:
            answer = sandbox.run(
                "render",
                {
                    "path": os.path.abspath(path),
                    "format": FORMATS[document.extension.lower()],
                    "page": number,
                    "width": PAGE_WIDTH_PX,
                    "max_pixels": settings.SHEAF_OCR_MAX_MEGAPIXELS * 1_000_000,
                },
                limits,
            )
    except (sandbox.SandboxError, OSError) as error:
        raise PageUnavailable(f"Page {number} of {document.original_filename}: {error}") from None
    png = base64.b64decode(answer["png"])
    default_storage.save(name, ContentFile(png))
    return png


@dataclass(frozen=True)
class Box:
    """A rectangle on a page, in points from its top-left."""

    x: float
    y: float
    width: float
    height: float


def quote_boxes(page: ReadPage, quote: str | None) -> list[Box]:
    """The boxes of the words of `page` that spell `quote` (white space and case aside), one per
    word; empty when the quote is not found among the page's words."""
    if not quote or not quote.strip() or not page.words:
        return []
    needle = _SPACE.sub(" ", quote.strip()).casefold()
    texts = [_SPACE.sub(" ", word[0].strip()).casefold() for word in page.words]
    starts, position = [], 0
    for text in texts:
        starts.append(position)
        position += len(text) + 1
    at = " ".join(texts).find(needle)
    if at < 0:
        return []
    end = at + len(needle)
    return [
        Box(x=x0, y=top, width=x1 - x0, height=bottom - top)
        for start, text, (_, x0, top, x1, bottom) in zip(starts, texts, page.words, strict=True)
        if start < end and start + len(text) > at
    ]
