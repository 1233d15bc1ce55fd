"""The protocol every extraction engine follows, and the one error type they raise.

An engine turns a document's text, the batch's prompt and its field list into a result of the
shape ``{"engine", "model", "fields": {name: {"value", "quote", "page", "verified"}}}``.
Document text separates pages with a form feed (``\\f``), so page numbers can be recovered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol

from batches.fields import FieldSpec

PAGE_BREAK = "\f"


class ErrorKind(StrEnum):
    TRANSIENT = "transient"  # retry later with backoff (network, 429, 529)
    PERMANENT = "permanent"  # fail this document only (bad file, refused content)
    CRITICAL = "critical"  # stop dispatching for this engine (bad key, no credit)


class ExtractionError(Exception):
    """Raised by readers and engines; the pipeline decides what to do from `kind`."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        kind: ErrorKind = ErrorKind.PERMANENT,
        retry_after: float | None = None,
        page_count: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.kind = kind
        self.retry_after = retry_after
        self.page_count = page_count  # when a reader counted the pages before failing


@dataclass(frozen=True)
class ExtractionRequest:
    text: str
    prompt: str
    fields: list[FieldSpec]
    filename: str
    content_type: str
    page_count: int | None = None
    document_id: str = ""  # for logs and idempotency keys; engines must not depend on it
    # The original's bytes, for engines that read scanned PDFs themselves.
    read_original: Callable[[], bytes] | None = None


@dataclass(frozen=True)
class ExtractionResult:
    result: dict[str, Any]
    cost_usd: Decimal | None = None
    usage: dict[str, int] = field(default_factory=dict)


class Engine(Protocol):
    name: str

    def extract(self, request: ExtractionRequest) -> ExtractionResult:
        """Extract the request's fields; raise ExtractionError on failure."""
        ...


def page_of(text: str, offset: int) -> int | None:
    """1-based page number of a character offset in page-separated text (None if no pages)."""
    if offset < 0:
        return None
    return text.count(PAGE_BREAK, 0, offset) + 1
