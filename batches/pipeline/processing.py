"""Processing one claimed document: read, fill what an e-invoice's XML carries, extract the rest (or
reuse an identical earlier result, or hand it to the economy lane), and record the outcome under
the lease."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import connection

from batches.models import Run
from batches.pipeline.claims import Claim, held
from batches.pipeline.economy import defer_to_economy, wants_economy
from batches.pipeline.finishing import document_complete, document_fail, settled
from batches.pipeline.reading import document_run, extraction_request
from documents import sandbox
from documents.models import Document
from extraction import get_engine, running
from extraction.contract import (
    Engine,
    ErrorKind,
    ExtractionError,
    ExtractionRequest,
    ExtractionResult,
)

if TYPE_CHECKING:
    from extraction.einvoice import XmlFirst

logger = logging.getLogger(__name__)


def document_process(*, claim: Claim, max_attempts: int | None = None) -> str:
    """Read (once) and extract one claimed document, then record the outcome under the lease.

    Never raises for a document's own failure: that is recorded on the document. Returns the
    document's new status, or "lost" when the lease was no longer ours. `max_attempts`
    overrides SHEAF_MAX_ATTEMPTS for this document's transient failures (see `document_fail`).
    """
    document = claim.document
    if document is None:
        document = Document.objects.select_related("batch").filter(pk=claim.document_id).first()
    if document is None:
        return "lost"  # the batch was deleted while we held the document
    batch = document.batch
    # What the reader found, stored with the outcome when the engine costs nothing.
    read: dict[str, Any] = {}
    xml_first: XmlFirst | None = None
    try:
        engine = get_engine(batch.engine)
        paid = engine.costs_money
        run = document_run(document)
        request = extraction_request(
            document, engine, claim, pending=None if paid else read, run=run
        )
        if request is None:
            return "lost"
        asked = request
        # An e-invoice's XML fills the fields it carries, exactly, before any engine runs; the
        # engine is asked only for the rest, and not at all when nothing is left.
        if document.einvoice_xml:
            # The XML reader (lxml, 5 MB) comes with the first e-invoice, not into every
            # process of the cluster.
            from extraction.einvoice import prefill, stored_invoice

            xml_first = prefill(request, stored_invoice(document.einvoice_xml))
        if xml_first is not None:
            if not xml_first.rest.fields:
                result = settled(xml_first.result(None, engine=engine.name), asked)
                return document_complete(claim=claim, result=result, cost_usd=Decimal(0), read=read)
            request = xml_first.rest
        # A free engine is cheaper to run again than these two checks.
        if paid:
            twin = _earlier_identical(document, engine, run)
            if twin is not None and twin.result is not None:
                return document_complete(
                    claim=claim, result=settled(twin.result, asked), reused_from=twin
                )
            # The economy lane collects answers without this step's XML values, so an
            # e-invoice's few remaining fields take the standard path.
            if xml_first is None and wants_economy(document, engine):
                return defer_to_economy(claim=claim)
            if not held(claim).exists():
                return "lost"  # never pay for a call whose result could not be stored
            _release_connection()
        outcome = (
            _extract_sandboxed(engine, request) if engine.sandboxed else engine.extract(request)
        )
    except ExtractionError as error:
        return document_fail(claim=claim, error=error, read=read, max_attempts=max_attempts)
    except Exception as exc:
        # A bug, not the document's fault: retry with backoff, bounded by the attempt limit.
        logger.exception("document %s: unexpected error", claim.document_id)
        bug = ExtractionError(
            "internal_error",
            f"{document.original_filename}: an unexpected error stopped processing "
            f"({type(exc).__name__}); it will be retried.",
            kind=ErrorKind.TRANSIENT,
        )
        return document_fail(claim=claim, error=bug, read=read, max_attempts=max_attempts)
    return document_complete(
        claim=claim,
        result=settled(
            outcome.result
            if xml_first is None
            else xml_first.result(outcome.result, engine=engine.name),
            asked,
        ),
        cost_usd=outcome.cost_usd,
        usage=outcome.usage,
        read=read,
    )


def _release_connection() -> None:
    """On SQLite, close this thread's database connection while a provider answers (seconds):
    a worker with SHEAF_CONCURRENCY documents in flight then holds connections, and their page
    and statement caches (17 MB at 64), only for the moments it reads and records. The next
    query connects again, which on SQLite is opening a file. A PostgreSQL connection is a
    server process, whose start per call cost more than the connection held (BENCHMARKS.md,
    "Claude engine at 1 x 64"): a thread keeps it. A caller's transaction (a test, a shell)
    keeps its connection."""
    if connection.vendor == "sqlite" and not connection.in_atomic_block:
        connection.close()


def _earlier_identical(document: Document, engine: Engine, run: Run) -> Document | None:
    """A completed document of the same user with the same bytes, prompt, fields and model
    (those of `run`, the run the document was sent to), whose result can be reused instead of
    paying for the same extraction twice. A candidate's result is its batch's current run's."""
    # Only the columns the comparison needs: before every paid call, and nearly always empty.
    candidates = (
        Document.objects.filter(
            user_id=document.user_id,
            sha256=document.sha256,
            status=Document.Status.COMPLETED,
            batch__extraction_prompt=run.prompt,
            batch__engine=document.batch.engine,
        )
        .exclude(pk=document.pk)
        .exclude(result=None)
        .order_by("completed_at")
        .values_list("pk", "batch__fields", "result")
    )
    for pk, fields, result in candidates[:20]:
        if fields == run.fields and (result or {}).get("model") == engine.model:
            return Document.objects.select_related("batch").filter(pk=pk).first()
    return None


_STOPPED = {"timeout": "took too long to extract", "too_large": "is too large to extract"}


def _extract_sandboxed(engine: Engine, request: ExtractionRequest) -> ExtractionResult:
    """`engine.extract` in a reader sandbox child, under SHEAF_LOCAL_ENGINE_SECONDS of CPU (and
    half as much again of wall clock) and the readers' memory limit."""
    seconds = settings.SHEAF_LOCAL_ENGINE_SECONDS
    limits = sandbox.Limits(
        cpu_seconds=seconds, memory_mb=settings.SHEAF_READER_MEMORY_MB, wall_seconds=1.5 * seconds
    )
    try:
        answer = sandbox.run("extract", running.arguments_for(engine, request), limits)
    except sandbox.SandboxError as error:
        raise ExtractionError(
            error.code,
            f"{request.filename} {_STOPPED.get(error.code, 'could not be extracted')} with the "
            f"{engine.title}: {error.reason}. Split it into smaller documents, or use the "
            "Claude engine.",
        ) from None
    return running.outcome_of(answer)
