"""The contract every extraction engine follows, and the one error type engines and readers raise.

An engine turns a document's text, the batch's prompt and its field list into a result of the
shape ``{"engine", "model", "fields": {name: {"value", "quote", "page", "verified", "source"}}}``
(``source`` is "text" for what an engine read; "xml" marks values filled from an e-invoice's XML
before the engine ran, see `extraction.einvoice`).
Document text separates pages with a form feed (``\\f``), so page numbers can be recovered.

The pipeline asks an engine what it can do through the attributes of `Engine`; it never probes
for methods. An engine that subclasses `Engine` inherits the answers of a free, offline engine
and overrides what differs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar, Protocol, runtime_checkable

from extraction.fields import FieldSpec

PAGE_BREAK = "\f"


class ValueStatus(StrEnum):
    """How sure Sheaf is of one value (DESIGN.md "Results"), from least to most checked."""

    MISSING = "missing"  # no value: the document does not hold it, or nothing was found
    INVALID = "invalid"  # an answer that did not validate: value null, `raw` and `reason` kept
    UNVERIFIED = "unverified"  # a value whose quote was not located in the document
    FOUND = "found"  # its quote was located on its page
    CHECKED = "checked"  # found, and passed at least one check beyond its type, failed none


class ErrorKind(StrEnum):
    TRANSIENT = "transient"  # retry later with backoff (network, 429, 529)
    PERMANENT = "permanent"  # fail this document only (bad file, refused content)
    CRITICAL = "critical"  # stop dispatching for this engine (bad key, no credit)


# The code of a transient error that is the provider's rate limit (a 429): the pipeline gives
# the attempt back and bounds the wait by time (SHEAF_RATE_LIMIT_GIVE_UP_SECONDS) instead, since
# the document is not at fault and a busy account would otherwise spend every attempt.
RATE_LIMITED = "provider_rate_limited"


class ExtractionError(Exception):
    """Raised by readers and engines; the pipeline decides what to do from `kind`.

    `cost_usd` and `usage`: what the failed attempt already paid for (a call whose answer could
    not be used), recorded with the failure so that a document's cost shows every paid call.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        kind: ErrorKind = ErrorKind.PERMANENT,
        retry_after: float | None = None,
        page_count: int | None = None,
        cost_usd: Decimal | None = None,
        usage: dict[str, int] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.kind = kind
        self.retry_after = retry_after
        self.page_count = page_count  # when a reader counted the pages before failing
        self.cost_usd = cost_usd
        self.usage = usage


@dataclass(frozen=True)
class Word:
    """A word on a page and its box, in points from the page's top-left corner."""

    text: str
    x0: float
    top: float
    x1: float
    bottom: float


@dataclass(frozen=True)
class PageLayout:
    """Where a page's words are: what a layout-aware engine reads beside the plain text."""

    number: int  # 1-based
    width: float
    height: float
    words: tuple[Word, ...]
    ocr_confidence: float | None = None  # mean word confidence (0-100) when OCR read the page


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
    # Word boxes per page, where the reader found them (PDF text layers, OCR); empty otherwise.
    layout: tuple[PageLayout, ...] = ()
    # A re-run that only adds fields asks the engine for those (`fields`); the earlier run's
    # fields and their result cells are kept as they were (never sent to an engine).
    kept_fields: tuple[FieldSpec, ...] = ()
    kept_cells: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExtractionResult:
    result: dict[str, Any]
    cost_usd: Decimal | None = None
    usage: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class EconomyOutcome:
    """One request's outcome in a provider's batch of requests."""

    custom_id: str
    message: Any | None  # the provider's answer when the request succeeded
    error: str | None  # "errored: …", "expired", "canceled" otherwise


@dataclass(frozen=True)
class ProviderBatch:
    """One of the provider's batches of requests, as its list of batches shows it."""

    id: str
    created_at: datetime
    requests: int  # how many requests it holds


@runtime_checkable
class EconomyLane(Protocol):
    """The same requests sent in bulk to a provider's batch API: cheaper, answered within a day."""

    def params(self, request: ExtractionRequest) -> dict[str, Any]:
        """The provider's request parameters for one document."""
        ...

    def submit_batch(self, requests: list[tuple[str, dict[str, Any]]]) -> str:
        """Send (custom_id, params) pairs as one provider batch; returns the provider's id."""
        ...

    def batch_results(self, batch_id: str) -> list[EconomyOutcome] | None:
        """The outcomes of an ended provider batch, or None while it still runs."""
        ...

    def recent_batches(self, *, since: datetime) -> list[ProviderBatch]:
        """The account's batches created at or after `since` (by the provider's clock), so that
        a submission whose outcome was lost can be found instead of sent again."""
        ...

    def economy_result(self, message: Any, request: ExtractionRequest) -> ExtractionResult:
        """A batch answer as a result, at the batch price; an ExtractionError that carries the
        answer's cost when it does not fit."""
        ...


class Engine(Protocol):
    """An extraction engine. The defaults describe a free engine that runs in the worker."""

    name: ClassVar[str]
    # How messages name it: "… took too long to extract with the offline engine".
    title: ClassVar[str] = "extraction engine"
    # Its work is CPU in the worker's own process: the pipeline runs `extract` in the reader
    # sandbox under a deadline (SHEAF_LOCAL_ENGINE_SECONDS), so that one slow document can
    # neither run for ever nor hold the interpreter lock against every other in flight.
    sandboxed: ClassVar[bool] = False
    # Reads a PDF's pages itself, so a scan without a text layer can still be sent.
    reads_pdfs: ClassVar[bool] = False
    # Each call is paid: worth checking for an identical earlier result before calling.
    costs_money: ClassVar[bool] = False

    @property
    def model(self) -> str | None:
        """The provider's model, recorded with results (None for an engine without one)."""
        return None

    @property
    def economy(self) -> EconomyLane | None:
        """The engine's batch lane, when it has one."""
        return None

    def extract(self, request: ExtractionRequest) -> ExtractionResult:
        """Extract the request's fields; raise ExtractionError on failure."""
        ...

    def estimate(self, *, characters: int, pages: int | None, fields: int) -> Decimal:
        """What a document of this size will probably cost, before it is sent."""
        return Decimal(0)

    def probe(self) -> None:
        """Succeed when the provider works again (closes an open circuit); raise
        ExtractionError while it does not."""
        return None


def page_of(text: str, offset: int) -> int | None:
    """1-based page number of a character offset in page-separated text (None if no pages)."""
    if offset < 0:
        return None
    return text.count(PAGE_BREAK, 0, offset) + 1
