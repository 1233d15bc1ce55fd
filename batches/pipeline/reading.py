"""Reading a claimed document once, and the engine request built from what was read (the text is
kept on the document and the whole read result beside its original, so a retry never reads
again)."""

from __future__ import annotations

import functools
import logging
from typing import Any

from django.utils import timezone

from batches.models import Run
from batches.pipeline.claims import Claim, held
from batches.runs import run_fields
from documents.models import Document
from documents.readresults import ReadResult
from documents.selectors import document_read_result
from documents.services import read_result_store
from documents.storage import local_path, read_bytes
from extraction.contract import Engine, ExtractionError, ExtractionRequest, PageLayout

# The originals an engine may read itself: a PDF without a text layer (sent as a document),
# a scan or photo (its images sent beside the OCR text).
ORIGINAL_FOR_ENGINES = ("application/pdf", "image/png", "image/jpeg", "image/tiff")

logger = logging.getLogger(__name__)


def extraction_request(
    document: Document,
    engine: Engine,
    claim: Claim,
    *,
    pending: dict[str, Any] | None = None,
    run: Run | None = None,
) -> ExtractionRequest | None:
    """The engine's input, reading the file first if it was never read (the text is kept, so
    a retry does not read again). None when the lease was lost meanwhile.

    The read is stored under the lease before the engine runs, or, with `pending`, added to it
    for the caller to store together with the outcome (one write instead of two, for an engine
    whose call costs nothing; every outcome stores it, so a retry still does not read again).
    The read result (pages, words with boxes) is written beside the original first, so the row
    never names a file that is not there; the request's `layout` comes from it, read back from
    storage on a later attempt. `run` is the document's run (`document_run`) when the caller
    has read it already.
    """
    from documents.readers import read_document

    run = run or document_run(document)
    fields = run_fields(run)
    layout: tuple[PageLayout, ...] | None = None
    if document.read_at is None:
        if not document.file:
            raise ExtractionError(
                "file_removed",
                f"{document.original_filename} cannot be read: "
                f"{document.original_removed_notice or 'the original was removed'}.",
            )
        try:
            with local_path(document.file) as path:
                outcome = read_document(
                    path, content_type=document.content_type, filename=document.original_filename
                )
        except ExtractionError as error:
            # Claude reads a scanned PDF itself; other engines fail with the reader's error.
            if error.code != "no_text_layer" or not engine.reads_pdfs:
                raise
            outcome = ReadResult("", error.page_count, truncated=False)
            stored = ""
        else:
            stored = read_result_store(document=document, read=outcome)
        text, pages = outcome.text, outcome.page_count
        layout = outcome.layout
        estimate = engine.estimate(characters=len(text), pages=pages, fields=len(fields))
        read: dict[str, Any] = {
            "text": text,
            "page_count": pages,
            "text_truncated": outcome.truncated,
            "einvoice_xml": outcome.einvoice_xml,
            "read_result": stored,
            "ocr_confidence": outcome.ocr_confidence,
            "read_at": timezone.now(),
            "estimated_cost_usd": estimate,
        }
        if pending is not None:
            pending.update(read)
        elif not held(claim).update(**read):
            return None
        document.text, document.page_count = text, pages
        document.einvoice_xml = outcome.einvoice_xml
        document.read_result.name = stored
    if layout is None:
        kept = document_read_result(document=document)
        layout = kept.layout if kept is not None else ()
    keep = _kept_cells(document, run)
    return ExtractionRequest(
        text=document.text,
        prompt=run.prompt,
        fields=[spec for spec in fields if spec["name"] not in keep],
        filename=document.original_filename,
        content_type=document.content_type,
        page_count=document.page_count,
        document_id=str(document.pk),
        read_original=functools.partial(read_bytes, document.file)
        if document.file and document.content_type in ORIGINAL_FOR_ENGINES
        else None,
        layout=layout,
        kept_fields=tuple(spec for spec in fields if spec["name"] in keep),
        kept_cells=keep,
    )


def document_run(document: Document) -> Run:
    """The run the document was sent to (its prompt and fields are what is asked). Read for
    every document, not cached by id: an id can come back after a rollback (SQLite), and a
    cached run would then ask another run's fields."""
    run = Run.objects.filter(pk=document.run_id).first() if document.run_id else None
    if run is None:  # sent before documents named their run: the batch's current run
        batch = document.batch
        run = batch.current_run or Run(prompt=batch.extraction_prompt, fields=batch.fields)
    return run


def _kept_cells(document: Document, run: Run) -> dict[str, Any]:
    """The result cells a run that only adds fields keeps from the document's current result
    (by field name); empty when every field is asked, and when the document has no earlier
    result (a new original or a retry after a failure clear it), so all are asked."""
    if not run.asked:
        return {}
    cells = (document.result or {}).get("fields") or {}
    keep = [spec["name"] for spec in run_fields(run) if spec["name"] not in run.asked]
    if not all(name in cells for name in keep):
        return {}
    return {name: cells[name] for name in keep}
