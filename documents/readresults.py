"""What reading a file gives, as it is kept: the text, and for a PDF every page's size, text and
words with boxes, where they came from (the text layer or OCR), and the e-invoice XML.

The sandbox's "read" operation answers pages as `PageRecord`s (JSON); `ReadResult` holds them as
`ReadPage`s, and `ReadResult.as_json` is what `documents.services.read_result_store` keeps beside
the original. Light to import: no PDF library, so the web process can load a kept result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypedDict, cast

from extraction.contract import PageLayout, Word

if TYPE_CHECKING:
    from documents.layout import WordBox


class PageRecord(TypedDict):
    """One page as read, in JSON: what the read operation answers and the stored result holds."""

    number: int  # 1-based
    width: float  # points
    height: float
    text: str  # no form feed; "\f".join of the pages' texts is the document's text
    # [text, x0, top, x1, bottom]: points from the page's top-left corner, to 1/100 pt
    words: list[WordBox]
    text_layer: bool  # the PDF holds text for this page (else it is an image, for OCR)
    source: str | None  # where text and words came from: "text" (layer), "ocr", None (nothing)
    ocr_confidence: float | None  # mean word confidence (0-100) when OCR read the page


_Source = Literal["text", "ocr"] | None  # built once: a cast's type is evaluated at run time

# The version of the stored shape (`ReadResult.as_json`); a reader of an older one converts it.
READ_RESULT_FORMAT = 1


@dataclass(frozen=True)
class ReadPage:
    """One page as read: its size, its text and its words with their boxes (points from the
    page's top-left corner), and where they came from."""

    number: int  # 1-based
    width: float
    height: float
    text: str
    words: tuple[WordBox, ...]
    text_layer: bool  # the PDF holds text for this page; False: an image, to be OCRed
    source: Literal["text", "ocr"] | None  # None: nothing legible was found on it
    ocr_confidence: float | None = None  # mean word confidence (0-100) when OCR read it

    @classmethod
    def from_record(cls, record: PageRecord) -> ReadPage:
        return cls(
            number=record["number"],
            width=record["width"],
            height=record["height"],
            text=record["text"],
            # JSON gives lists; tuple() per word is the cheapest way back to tuples.
            words=tuple(map(tuple, record["words"])),  # type: ignore[arg-type]
            text_layer=record["text_layer"],
            source=cast(_Source, record["source"]),
            ocr_confidence=record["ocr_confidence"],
        )

    def as_record(self) -> PageRecord:
        return {
            "number": self.number,
            "width": self.width,
            "height": self.height,
            "text": self.text,
            "words": list(self.words),
            "text_layer": self.text_layer,
            "source": self.source,
            "ocr_confidence": self.ocr_confidence,
        }

    @property
    def layout(self) -> PageLayout:
        """The page as the engine contract has it."""
        return PageLayout(
            number=self.number,
            width=self.width,
            height=self.height,
            words=tuple(Word(*word) for word in self.words),
            ocr_confidence=self.ocr_confidence,
        )


@dataclass(frozen=True)
class ReadResult:
    """What reading a file gives, kept so it is never read again (`documents.services.
    read_result_store`, `documents.selectors.document_read_result`)."""

    text: str  # pages joined with "\f"
    page_count: int | None  # PDF: pages; XLSX: sheets (one "page" each); CSV and TXT: None
    truncated: bool  # text was cut at SHEAF_MAX_TEXT_CHARS
    # PDF: every page read, in order; their texts joined with "\f" are `text`. Other formats
    # have no pages to show.
    pages: tuple[ReadPage, ...] = ()
    einvoice_xml: str = ""  # the e-invoice XML the file is or carries ("": none)

    @property
    def ocr_confidence(self) -> float | None:
        """The lowest of its OCR-read pages' mean word confidences (0-100), None when no page
        was read by OCR: one hard page is what makes a document worth a second look."""
        read = [page.ocr_confidence for page in self.pages if page.ocr_confidence is not None]
        return round(min(read), 1) if read else None

    @property
    def layout(self) -> tuple[PageLayout, ...]:
        """Word boxes per page, for `ExtractionRequest.layout` (built on each use)."""
        return tuple(page.layout for page in self.pages)

    def as_json(self) -> dict[str, Any]:
        return {
            "format": READ_RESULT_FORMAT,
            "text": self.text,
            "page_count": self.page_count,
            "truncated": self.truncated,
            "pages": [page.as_record() for page in self.pages],
            "einvoice_xml": self.einvoice_xml,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReadResult:
        """A result as `as_json` kept it."""
        if data.get("format") != READ_RESULT_FORMAT:
            raise ValueError(f"unknown read result format {data.get('format')!r}")
        return cls.from_answer(data)

    @classmethod
    def from_answer(cls, data: dict[str, Any]) -> ReadResult:
        """A result as the sandbox's "read" operation answers it (`documents.formats.Text`)."""
        return cls(
            text=data["text"],
            page_count=data["page_count"],
            truncated=data["truncated"],
            pages=tuple(ReadPage.from_record(record) for record in data["pages"]),
            einvoice_xml=data["einvoice_xml"],
        )
