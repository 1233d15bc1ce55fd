"""Batch use cases. The dashboard, the API and the CLI all come through these functions."""

from __future__ import annotations

import functools
import logging
import random
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, Count, F, Q, QuerySet, Value, When
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from accounts.models import User
from accounts.selectors import user_effective_plan
from accounts.services import (
    limits_check_files,
    limits_check_mode,
    limits_check_submission,
    limits_reserve_submission,
    quota_release,
    quota_reserve,
    submissions_prune,
)
from batches.extraction import engine_for_new_batch, get_engine
from batches.extraction.base import Engine, ErrorKind, ExtractionError, ExtractionRequest
from batches.fields import FieldSpec, fields_from_prompt
from batches.models import BatchProcess, EngineCircuit
from batches.selectors import documents_waiting
from batchsite.errors import Problem, Rejected
from documents.models import Document, result_value_counts
from documents.storage import local_path, read_bytes
from documents.uploads import InspectedUpload, inspect_upload
from notifications.services import outbox_batch_finished, outbox_documents_failed

logger = logging.getLogger(__name__)

MAX_PROMPT_LENGTH = 10_000
MAX_NAME_LENGTH = 200


def _default_name(uploads: Sequence[InspectedUpload]) -> str:
    first = Path(uploads[0].filename).stem or uploads[0].filename
    name = first if len(uploads) == 1 else f"{first} and {len(uploads) - 1} more"
    return name[:MAX_NAME_LENGTH]


def batch_create(
    *,
    user: User,
    files: Sequence[File],
    prompt: str,
    fields: list[FieldSpec] | None = None,
    name: str = "",
    description: str = "",
    mode: str = BatchProcess.Mode.STANDARD,
    idempotency_key: str = "",
) -> BatchProcess:
    """Validate a submission against the user's plan and store it whole, or store nothing.

    Raises `Rejected` with every problem found (each naming the file and the limit). On success
    the batch and all its documents exist, each file is stored under
    ``uploads/<user>/<batch>/<document>.<ext>``, and workers are kicked after commit.
    """
    plan = user_effective_plan(user).plan
    prompt = (prompt or "").strip()
    name = " ".join((name or "").split())
    problems: list[Problem] = []
    if not prompt:
        problems.append(
            Problem("invalid_prompt", 'Say what to extract, e.g. "invoice number, date, total".')
        )
    elif len(prompt) > MAX_PROMPT_LENGTH:
        problems.append(
            Problem("invalid_prompt", f"The prompt is longer than {MAX_PROMPT_LENGTH} characters.")
        )
    if len(name) > MAX_NAME_LENGTH:
        problems.append(
            Problem("invalid", f"The name is longer than {MAX_NAME_LENGTH} characters.")
        )
    if mode not in BatchProcess.Mode.values:
        problems.append(Problem("invalid", f"Unknown mode {mode!r}; use standard or economy."))
    problems += limits_check_mode(plan=plan, mode=mode)
    problems += limits_check_files(plan=plan, filenames=[f.name or "" for f in files])
    uploads: list[InspectedUpload] = []
    if not problems:
        for upload in files:
            inspected = inspect_upload(upload, max_size=plan.max_file_size)
            if isinstance(inspected, Problem):
                problems.append(inspected)
            else:
                uploads.append(inspected)
    if problems:
        raise Rejected(problems)

    # A read-only look at quota and rate first, so a refused submission stores no file at all;
    # the reservation in the transaction below is what really decides.
    limits_check_submission(user=user, plan=plan, documents=len(uploads))

    fields = fields or fields_from_prompt(prompt)
    batch_id = uuid.uuid4()
    documents: list[Document] = []
    stored: list[str] = []
    try:
        # Files are written before the transaction: on SQLite a transaction holds the database's
        # write lock, and copying up to 100 large files must not stall every worker.
        for upload in uploads:
            document_id = uuid.uuid4()
            path = Document.storage_path(
                user_id=user.pk,
                batch_id=batch_id,
                document_id=document_id,
                ext=upload.kind.extension,
            )
            upload.file.seek(0)
            stored.append(default_storage.save(path, upload.file))
            documents.append(
                Document(
                    id=document_id,
                    batch_id=batch_id,
                    user=user,
                    original_filename=upload.filename,
                    file=stored[-1],
                    size=upload.size,
                    sha256=upload.sha256,
                    content_type=upload.kind.content_type,
                )
            )
        with transaction.atomic():
            month = limits_reserve_submission(user=user, plan=plan, documents=len(uploads))
            batch = BatchProcess.objects.create(
                id=batch_id,
                user=user,
                name=name or _default_name(uploads),
                description=description.strip(),
                extraction_prompt=prompt,
                fields=fields,
                plan=plan.key,
                priority=plan.priority,
                mode=mode,
                engine=engine_for_new_batch(
                    settings.SHEAF_EXTRACTION_ENGINE, api_key=settings.ANTHROPIC_API_KEY
                ),
                total_documents=len(uploads),
                idempotency_key=idempotency_key,
            )
            for document in documents:
                document.quota_month = month
            Document.objects.bulk_create(documents)
            transaction.on_commit(kick_workers)
    except BaseException:
        # A crash before this line leaves files without rows; they live under the batch's own
        # folder, which no row points to.
        for path in stored:
            default_storage.delete(path)
        raise
    logger.info("batch %s created by user %s with %d documents", batch.pk, user.pk, len(uploads))
    return batch


def batch_create_once(
    *, user: User, idempotency_key: str, **submission: Any
) -> tuple[BatchProcess, bool]:
    """`batch_create` for a client that may send the same request twice: the same key from the
    same user returns the batch the first request made. Returns (batch, created).

    A repeat is answered before any limit is checked, so a retry after a lost response is never
    rate limited. Two requests racing with one key both get past that look-up; the unique
    constraint on (user, idempotency_key) lets exactly one insert win, the loser's transaction
    (quota, files) is undone by `batch_create`, and it answers with the winner's batch.
    """
    existing = BatchProcess.objects.filter(user=user, idempotency_key=idempotency_key).first()
    if existing is not None:
        return existing, False
    try:
        return batch_create(user=user, idempotency_key=idempotency_key, **submission), True
    except IntegrityError:
        existing = BatchProcess.objects.filter(user=user, idempotency_key=idempotency_key).first()
        if existing is None:
            raise
        return existing, False


def batch_delete(*, batch: BatchProcess) -> None:
    """Delete a batch, its documents and their stored files (files after the rows are gone).

    A running batch is canceled first, so its queued documents give their quota back.
    """
    paths = [p for p in batch.documents.values_list("file", flat=True) if p]
    with transaction.atomic():
        if not batch.is_terminal:
            batch_cancel(batch=batch)
        batch.delete()

    def remove_files() -> None:
        for path in paths:
            default_storage.delete(path)

    transaction.on_commit(remove_files)


# --- The life of a document: claim, read, extract, finish ---------------------------------------


@dataclass(frozen=True)
class Claim:
    """A document this worker holds under `lease_token` until `document_complete`/`_fail`.

    `document` is the row (with its batch) as the claim read it, so that processing does not
    read it again; code that builds a claim from elsewhere may leave it out.
    """

    document_id: uuid.UUID
    batch_id: uuid.UUID
    lease_token: uuid.UUID
    attempts: int
    document: Document | None = field(default=None, compare=False, repr=False)


# Round-robin between batches orders claims by the batch's `last_claimed_at`. Stamping it on
# every claim cost a write transaction per document; stamping it when it is older than this
# keeps the rotation (at this granularity) for a fraction of the writes.
ROUND_ROBIN_TICK = timedelta(milliseconds=250)


def document_claim(
    *,
    now: datetime | None = None,
    batch_id: uuid.UUID | None = None,
    document_ids: Collection[uuid.UUID] | None = None,
    known: dict[uuid.UUID, BatchProcess] | None = None,
) -> Claim | None:
    """Claim the next eligible document (of one batch, or among `document_ids`, when given),
    or None when nothing is due.

    Order: plan priority, then the batch served longest ago (round-robin, so one big batch never
    starves a small one), then age (`documents_waiting`). The claim is one conditional UPDATE of
    the first due document, so it is exclusive and costs one round trip: on PostgreSQL its
    candidate is locked with `SKIP LOCKED`, so concurrent workers pass over each other's
    candidates instead of queueing on them; on SQLite the statement holds the write lock.

    `known`: batches a caller that claims many documents keeps between claims (the runner, for
    one run), so that each claim does not read its batch again. What processing reads of a
    batch (engine, fields, prompt, mode) never changes once it is created, and a known batch's
    `last_claimed_at` is this caller's own last stamp.
    """
    if document_ids is not None and not document_ids:
        return None  # narrowed to nothing (a runner whose limit is reserved by other threads)
    now = now or timezone.now()
    token = uuid.uuid4()
    if batch_id is None and document_ids is None:
        candidate, params, at = _candidate_template(connection.vendor)
        params = (*params[:at], _db_now(now), *params[at + 1 :])
    else:
        waiting = documents_waiting(batch_id=batch_id, document_ids=document_ids)
        candidate, params = _candidate_sql(waiting, now)
    document = _lease_first(candidate, params, token=token, now=now)
    if document is None:
        return None
    known = {} if known is None else known
    batch = known.get(document.batch_id)
    if batch is None:
        batch = BatchProcess.objects.filter(pk=document.batch_id).first()
    if batch is None:
        # The batch was deleted meanwhile, with our document; processing will say "lost".
        return Claim(document.pk, document.batch_id, token, document.attempts)
    stamped = batch.last_claimed_at
    if batch.status == BatchProcess.Status.QUEUED or (
        stamped is None or stamped < now - ROUND_ROBIN_TICK
    ):
        # The batch row is touched after the document's statement, never while holding its
        # lock: waiting for the batch lock with a document locked would deadlock a cancel.
        BatchProcess.objects.filter(pk=batch.pk).update(
            last_claimed_at=now,
            started_at=Coalesce(F("started_at"), Value(now)),
            status=Case(
                When(
                    status=BatchProcess.Status.QUEUED,
                    then=Value(BatchProcess.Status.PROCESSING),
                ),
                default=F("status"),
            ),
        )
        batch.last_claimed_at, batch.status = now, BatchProcess.Status.PROCESSING
    known[batch.pk] = batch
    document.batch = batch
    return Claim(document.pk, batch.pk, token, document.attempts, document)


# The claim as one statement. Names are Django's defaults for these models (the tables are
# filled in from their meta); every value is a parameter.
_LEASE_FIRST_SQL = """
UPDATE {documents} SET status = %s, lease_token = %s, lease_expires_at = %s,
    attempts = attempts + 1, started_at = COALESCE(started_at, %s), updated_at = %s
WHERE id = ({candidate}) AND status = %s
RETURNING {columns}
"""


def _candidate_sql(waiting: QuerySet[Document], now: datetime) -> tuple[str, tuple[Any, ...]]:
    """The first of `waiting` that is due at `now`, as SQL for the claim's subquery."""
    return waiting.filter(next_attempt_at__lte=now).values("pk")[:1].query.sql_with_params()


def _db_now(now: datetime) -> Any:
    return Document._meta.get_field("next_attempt_at").get_db_prep_value(now, connection)


@functools.cache
def _candidate_template(vendor: str) -> tuple[str, tuple[Any, ...], int]:
    """The drain's candidate query (nothing narrowed), compiled once per process: building it
    with the ORM took a third of a claim's CPU, and only its `now` parameter ever changes.
    Returns the SQL, its parameters, and the position of `now` among them."""
    marker = datetime(2000, 1, 1, tzinfo=UTC)
    sql, params = _candidate_sql(documents_waiting(), marker)
    (at,) = [n for n, param in enumerate(params) if param == _db_now(marker)]
    return sql, params, at


def _lease_first(
    candidate: str, candidate_params: Sequence[Any], *, token: uuid.UUID, now: datetime
) -> Document | None:
    """Lease the first document the `candidate` query selects to `token` and return it as it
    is now, or None.

    `UPDATE … WHERE id = (SELECT id … LIMIT 1 [FOR UPDATE OF document SKIP LOCKED])
    RETURNING …`: in autocommit, one round trip and no read-then-write transaction. The ORM
    compiles the candidate query (the order lives in `documents_waiting`), and `raw()` turns
    the returned row into a model with the fields' converters applied.
    """
    meta, ops = Document._meta, connection.ops
    documents = ops.quote_name(meta.db_table)
    if connection.features.has_select_for_update_skip_locked:
        candidate += " " + ops.for_update_sql(skip_locked=True, of=(documents,))
    sql = _LEASE_FIRST_SQL.format(
        documents=documents,
        candidate=candidate,
        columns=", ".join(ops.quote_name(f.column) for f in meta.concrete_fields),
    )

    def prep(name: str, value: Any) -> Any:
        return meta.get_field(name).get_db_prep_save(value, connection)

    params = (
        prep("status", Document.Status.PROCESSING),
        prep("lease_token", token),
        prep("lease_expires_at", now + timedelta(seconds=settings.SHEAF_LEASE_SECONDS)),
        prep("started_at", now),
        prep("updated_at", now),
        *candidate_params,
        prep("status", Document.Status.QUEUED),
    )
    return next(iter(Document.objects.raw(sql, params)), None)


def document_renew_leases(*, tokens: list[uuid.UUID], now: datetime | None = None) -> int:
    """Extend the leases this worker still holds (its heartbeat); returns how many it holds."""
    if not tokens:
        return 0
    now = now or timezone.now()
    return Document.objects.filter(
        status=Document.Status.PROCESSING, lease_token__in=tokens
    ).update(lease_expires_at=now + timedelta(seconds=settings.SHEAF_LEASE_SECONDS))


def _held(claim: Claim) -> QuerySet[Document]:
    """The document, only while this worker's lease on it is current."""
    return Document.objects.filter(
        pk=claim.document_id, status=Document.Status.PROCESSING, lease_token=claim.lease_token
    )


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
    try:
        engine = get_engine(batch.engine)
        paid = getattr(engine, "costs_money", False)
        request = _extraction_request(document, engine, claim, pending=None if paid else read)
        if request is None:
            return "lost"
        # A free engine is cheaper to run again than these two checks.
        if paid:
            twin = _earlier_identical(document, engine)
            if twin is not None:
                return document_complete(claim=claim, result=twin.result, reused_from=twin)
            if _economy(document, engine):
                return _defer_to_economy(claim=claim)
            if not _held(claim).exists():
                return "lost"  # never pay for a call whose result could not be stored
        outcome = engine.extract(request)
    except ExtractionError as error:
        return document_fail(claim=claim, error=error, read=read, max_attempts=max_attempts)
    except Exception as exc:
        # A bug, not the document's fault: retry with backoff, bounded by the attempt limit.
        logger.exception("document %s: unexpected error", claim.document_id)
        error = ExtractionError(
            "internal_error",
            f"{document.original_filename}: an unexpected error stopped processing "
            f"({type(exc).__name__}); it will be retried.",
            kind=ErrorKind.TRANSIENT,
        )
        return document_fail(claim=claim, error=error, read=read, max_attempts=max_attempts)
    return document_complete(
        claim=claim,
        result=outcome.result,
        cost_usd=outcome.cost_usd,
        usage=outcome.usage,
        read=read,
    )


def _extraction_request(
    document: Document, engine: Engine, claim: Claim, *, pending: dict[str, Any] | None = None
) -> ExtractionRequest | None:
    """The engine's input, reading the file first if it was never read (the text is kept, so
    a retry does not read again). None when the lease was lost meanwhile.

    The read is stored under the lease before the engine runs, or, with `pending`, added to it
    for the caller to store together with the outcome (one write instead of two, for an engine
    whose call costs nothing; every outcome stores it, so a retry still does not read again).
    """
    from documents.readers import read_document

    batch = document.batch
    fields = batch.fields or fields_from_prompt(batch.extraction_prompt)
    if document.read_at is None:
        if not document.file:
            raise ExtractionError(
                "file_removed",
                f"{document.original_filename} cannot be read: "
                f"{document.original_removed_notice or 'the original was removed'}.",
            )
        try:
            with local_path(document.file) as path:
                read = read_document(
                    path, content_type=document.content_type, filename=document.original_filename
                )
            text, pages, truncated = read.text, read.page_count, read.truncated
        except ExtractionError as error:
            # Claude reads a scanned PDF itself; other engines fail with the reader's error.
            if error.code != "no_text_layer" or not getattr(engine, "reads_pdfs", False):
                raise
            text, pages, truncated = "", error.page_count, False
        estimate = _estimate(engine, characters=len(text), pages=pages, fields=len(fields))
        read = {
            "text": text,
            "page_count": pages,
            "text_truncated": truncated,
            "read_at": timezone.now(),
            "estimated_cost_usd": estimate,
        }
        if pending is not None:
            pending.update(read)
        elif not _held(claim).update(**read):
            return None
        document.text, document.page_count = text, pages
    return ExtractionRequest(
        text=document.text,
        prompt=batch.extraction_prompt,
        fields=fields,
        filename=document.original_filename,
        content_type=document.content_type,
        page_count=document.page_count,
        document_id=str(document.pk),
        read_original=functools.partial(read_bytes, document.file)
        if document.file and document.content_type == "application/pdf"
        else None,
    )


# --- Economy lane: documents wait for the provider's Message Batches API ------------------------

ECONOMY_LEASE = timedelta(hours=26)  # message batches end within 24 hours
ECONOMY_CHUNK = 500
SUBMITTING = "submitting:"
FALLBACK = "fallback"


def _economy(document: Document, engine: Engine) -> bool:
    return (
        document.batch.mode == BatchProcess.Mode.ECONOMY
        and hasattr(engine, "submit_batch")
        and document.provider_batch_id != FALLBACK
    )


def _defer_to_economy(*, claim: Claim) -> str:
    """Keep the document (read, in `processing`) under a day-long lease until the sweep sends
    it in a message batch and later collects its result."""
    held = _held(claim).update(lease_expires_at=timezone.now() + ECONOMY_LEASE)
    return "deferred" if held else "lost"


def economy_submit(*, now: datetime | None = None) -> int:
    """Send waiting economy documents to the provider in message batches; returns how many.

    Documents are first marked with a token by a conditional UPDATE, so two sweeps never send
    the same document; a sweep that dies between marking and storing the batch id leaves the
    mark, which `economy_recover` clears after ten minutes.
    """
    now = now or timezone.now()
    waiting = Document.objects.filter(
        status=Document.Status.PROCESSING,
        batch__mode=BatchProcess.Mode.ECONOMY,
        provider_batch_id="",
        read_at__isnull=False,
    ).exclude(batch__engine__in=EngineCircuit.objects.values("engine"))
    sent = 0
    for engine_name in set(waiting.values_list("batch__engine", flat=True)):
        mark = f"{SUBMITTING}{uuid.uuid4().hex}"
        ids = list(
            waiting.filter(batch__engine=engine_name)
            .order_by("created_at")
            .values_list("pk", flat=True)[:ECONOMY_CHUNK]
        )
        Document.objects.filter(pk__in=ids, provider_batch_id="").update(
            provider_batch_id=mark, updated_at=now
        )
        marked = list(Document.objects.filter(provider_batch_id=mark).select_related("batch"))
        if not marked:
            continue
        engine = get_engine(engine_name)
        requests = []
        for document in marked:
            claim = Claim(document.pk, document.batch_id, document.lease_token, document.attempts)
            request = _extraction_request(document, engine, claim)
            if request is not None:
                requests.append((document.pk.hex, engine.params(request)))
        try:
            batch_id = engine.submit_batch(requests)
        except ExtractionError as error:
            Document.objects.filter(provider_batch_id=mark).update(provider_batch_id="")
            logger.warning("economy submission failed: %s", error.message)
            if error.kind == ErrorKind.CRITICAL:
                circuit_open(engine=engine_name, reason=error.message, now=now)
            continue
        Document.objects.filter(provider_batch_id=mark).update(provider_batch_id=batch_id)
        sent += len(requests)
    return sent


def economy_collect(*, now: datetime | None = None) -> int:
    """Poll the provider's message batches; store results (matched by custom_id, in any order)
    and send errored or expired documents back to the standard path. Returns how many ended."""
    now = now or timezone.now()
    pending = (
        Document.objects.filter(status=Document.Status.PROCESSING)
        .exclude(provider_batch_id__in=["", FALLBACK])
        .exclude(provider_batch_id__startswith=SUBMITTING)
        .values_list("provider_batch_id", "batch__engine")
        .distinct()
    )
    ended = 0
    for provider_batch_id, engine_name in set(pending):
        engine = get_engine(engine_name)
        try:
            outcomes = engine.batch_results(provider_batch_id)
        except ExtractionError as error:
            logger.warning("economy batch %s: %s", provider_batch_id, error.message)
            continue
        if outcomes is None:
            continue
        documents = {
            d.pk.hex: d
            for d in Document.objects.filter(
                provider_batch_id=provider_batch_id, status=Document.Status.PROCESSING
            ).select_related("batch")
        }
        for outcome in outcomes:
            document = documents.pop(outcome.custom_id, None)
            if document is None:
                continue
            ended += 1
            claim = Claim(document.pk, document.batch_id, document.lease_token, document.attempts)
            if outcome.message is not None:
                request = _extraction_request(document, engine, claim)
                try:
                    result = engine.economy_result(outcome.message, request)
                except ValueError:
                    _economy_fallback(claim=claim, reason="invalid answer", now=now)
                    continue
                document_complete(
                    claim=claim, result=result.result, cost_usd=result.cost_usd, usage=result.usage
                )
            else:
                _economy_fallback(claim=claim, reason=outcome.error or "no result", now=now)
        for document in documents.values():  # the provider returned nothing for these
            claim = Claim(document.pk, document.batch_id, document.lease_token, document.attempts)
            _economy_fallback(claim=claim, reason="missing from the batch results", now=now)
    return ended


def _economy_fallback(*, claim: Claim, reason: str, now: datetime) -> None:
    """Back to the queue for the standard path, without spending an attempt."""
    changed = _held(claim).update(
        status=Document.Status.QUEUED,
        provider_batch_id=FALLBACK,
        attempts=Greatest(F("attempts") - 1, Value(0)),
        next_attempt_at=now,
        lease_token=None,
        lease_expires_at=None,
        error_code="",
        error_message=f"Economy lane: {reason}; processed at the standard price instead.",
    )
    if changed:
        transaction.on_commit(kick_workers)


def economy_recover(*, now: datetime | None = None) -> int:
    """Clear submission marks left by a sweep that died mid-submission."""
    now = now or timezone.now()
    return Document.objects.filter(
        status=Document.Status.PROCESSING,
        provider_batch_id__startswith=SUBMITTING,
        updated_at__lt=now - timedelta(minutes=10),
    ).update(provider_batch_id="")


def _estimate(engine: Engine, *, characters: int, pages: int | None, fields: int) -> Decimal:
    model = getattr(engine, "model", None)
    if model is None:
        return Decimal(0)
    from batches.extraction.anthropic import estimate_cost

    return estimate_cost(characters=characters, pages=pages, fields=fields, model=model)


def _earlier_identical(document: Document, engine: Engine) -> Document | None:
    """A completed document of the same user with the same bytes, prompt, fields and model,
    whose result can be reused instead of paying for the same extraction twice."""
    batch = document.batch
    candidates = (
        Document.objects.filter(
            user_id=document.user_id,
            sha256=document.sha256,
            status=Document.Status.COMPLETED,
            batch__extraction_prompt=batch.extraction_prompt,
            batch__engine=batch.engine,
        )
        .exclude(pk=document.pk)
        .exclude(result=None)
        .select_related("batch")
        .order_by("completed_at")
    )
    model = getattr(engine, "model", None)
    for candidate in candidates[:20]:
        if candidate.batch.fields == batch.fields and candidate.result.get("model") == model:
            return candidate
    return None


def document_complete(
    *,
    claim: Claim,
    result: dict[str, Any],
    cost_usd: Decimal | None = None,
    usage: dict[str, int] | None = None,
    reused_from: Document | None = None,
    read: dict[str, Any] | None = None,
) -> str:
    """Store a result under the lease (with the read, when it was not stored before)."""
    now = timezone.now()
    if reused_from is not None:
        result = {**result, "reused_from": str(reused_from.pk)}
        cost_usd, usage = Decimal(0), {}
    found, verified = result_value_counts(result)
    done = _held(claim).update(
        status=Document.Status.COMPLETED,
        result=result,
        values_found=found,
        values_verified=verified,
        cost_usd=cost_usd,
        usage=usage or None,
        reused_from=reused_from,
        error_code="",
        error_message="",
        lease_token=None,
        lease_expires_at=None,
        completed_at=now,
        updated_at=now,
        **(read or {}),
    )
    if not done:
        return "lost"
    _settle_batch(batch_id=claim.batch_id, now=now)
    return Document.Status.COMPLETED


def retry_delay(*, attempts: int, retry_after: float | None = None) -> float:
    """Exponential backoff with full jitter, at least `retry-after` (capped) when one was given."""
    base = settings.SHEAF_RETRY_BASE_SECONDS
    cap = settings.SHEAF_RETRY_MAX_SECONDS
    delay = random.uniform(base, min(cap, base * 2 ** max(attempts - 1, 0)))  # noqa: S311
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap))
    return delay


def document_fail(
    *,
    claim: Claim,
    error: ExtractionError,
    read: dict[str, Any] | None = None,
    max_attempts: int | None = None,
) -> str:
    """Record a failed attempt: requeue a transient failure with backoff while attempts remain
    (the document's attempts in all, against `max_attempts`, by default SHEAF_MAX_ATTEMPTS),
    otherwise fail the document for good (and give its quota back)."""
    now = timezone.now()
    if error.kind == ErrorKind.CRITICAL:
        return _pause_for_provider(claim=claim, error=error, now=now)
    max_attempts = max_attempts or settings.SHEAF_MAX_ATTEMPTS
    retry = error.kind != ErrorKind.PERMANENT and claim.attempts < max_attempts
    with transaction.atomic():
        if retry:
            delay = retry_delay(attempts=claim.attempts, retry_after=error.retry_after)
            changed = _held(claim).update(
                status=Document.Status.QUEUED,
                next_attempt_at=now + timedelta(seconds=delay),
                error_code=error.code,
                error_message=error.message,
                lease_token=None,
                lease_expires_at=None,
                updated_at=now,
                **(read or {}),
            )
            status = Document.Status.QUEUED
        else:
            message = error.message
            if error.kind != ErrorKind.PERMANENT:
                message = f"{message} (gave up after {claim.attempts} attempts)"
            changed = _held(claim).update(
                status=Document.Status.FAILED,
                error_code=error.code,
                error_message=message,
                lease_token=None,
                lease_expires_at=None,
                completed_at=now,
                updated_at=now,
                **(read or {}),
            )
            status = Document.Status.FAILED
        if not changed:
            return "lost"
        if status == Document.Status.FAILED:
            _refund(document_ids=[claim.document_id])
            outbox_documents_failed(document_ids=[claim.document_id], failed_at=now)
    _settle_batch(batch_id=claim.batch_id, now=now)
    return status


PAUSED_REASON = "provider unavailable"


def _pause_for_provider(*, claim: Claim, error: ExtractionError, now: datetime) -> str:
    """A critical error (bad key, no credit) is not the document's fault: put it back without
    spending an attempt, and open the engine's circuit so nothing more is sent until a probe
    succeeds. Its batches keep their status and say why they wait."""
    engine = BatchProcess.objects.values_list("engine", flat=True).filter(pk=claim.batch_id).first()
    if engine is None:
        return "lost"  # the batch was deleted (with its account, say) while we held it
    with transaction.atomic():
        changed = _held(claim).update(
            status=Document.Status.QUEUED,
            attempts=Greatest(F("attempts") - 1, Value(0)),
            next_attempt_at=now,
            error_code=error.code,
            error_message=error.message,
            lease_token=None,
            lease_expires_at=None,
            updated_at=now,
        )
        if not changed:
            return "lost"
        circuit_open(engine=engine, reason=error.message, now=now)
    return Document.Status.QUEUED


def circuit_open(*, engine: str, reason: str, now: datetime | None = None) -> None:
    now = now or timezone.now()
    _, created = EngineCircuit.objects.get_or_create(
        engine=engine,
        defaults={"reason": reason, "next_probe_at": now + timedelta(seconds=PROBE_FIRST_SECONDS)},
    )
    BatchProcess.objects.filter(
        engine=engine, status__in=[BatchProcess.Status.QUEUED, BatchProcess.Status.PROCESSING]
    ).update(paused_reason=PAUSED_REASON)
    if created:
        logger.error("engine %s paused: %s", engine, reason)


PROBE_FIRST_SECONDS = 30
PROBE_MAX_SECONDS = 600


def circuits_probe_soon(*, engines: Collection[str]) -> int:
    """Make these open circuits due for a probe at the next sweep (staff asked for one)."""
    return EngineCircuit.objects.filter(engine__in=engines).update(next_probe_at=timezone.now())


def circuits_probe(*, now: datetime | None = None) -> int:
    """Try every open circuit that is due; a working provider closes it and resumes its batches.
    Returns how many circuits closed."""
    now = now or timezone.now()
    closed = 0
    for circuit in EngineCircuit.objects.filter(next_probe_at__lte=now):
        try:
            engine = get_engine(circuit.engine)
            probe = getattr(engine, "probe", None)
            if probe is not None:
                probe()
        except ExtractionError as error:
            delay = min(PROBE_FIRST_SECONDS * 2 ** (circuit.probes + 1), PROBE_MAX_SECONDS)
            EngineCircuit.objects.filter(pk=circuit.pk).update(
                probes=F("probes") + 1,
                reason=error.message,
                next_probe_at=now + timedelta(seconds=delay),
            )
            continue
        with transaction.atomic():
            EngineCircuit.objects.filter(pk=circuit.pk).delete()
            BatchProcess.objects.filter(engine=circuit.engine, paused_reason=PAUSED_REASON).update(
                paused_reason=""
            )
        logger.info("engine %s resumed after %d probes", circuit.engine, circuit.probes + 1)
        closed += 1
    if closed:
        transaction.on_commit(kick_workers)
    return closed


def _refund(*, document_ids: list[uuid.UUID]) -> None:
    # Only documents that really ended failed or canceled: one that completed in the meantime
    # keeps its reservation.
    refundable = Document.objects.filter(
        pk__in=document_ids, status__in=Document.REFUNDED_STATUSES, quota_month__isnull=False
    )
    rows = refundable.values("user_id", "quota_month").annotate(n=Count("id"))
    for row in rows:
        quota_release(user_id=row["user_id"], month=row["quota_month"], documents=row["n"])
    refundable.update(quota_month=None)


# --- Batch state ---------------------------------------------------------------------------------


OPEN_STATUSES = (Document.Status.QUEUED, Document.Status.PROCESSING)
COUNTERS_EVERY = timedelta(seconds=1)


_SETTLE_SQL = """
SELECT status, updated_at < %s, EXISTS(
    SELECT 1 FROM {documents} WHERE batch_id = %s AND status IN (%s, %s)
)
FROM {batches} WHERE id = %s
"""


def _settle_batch(*, batch_id: uuid.UUID, now: datetime) -> None:
    """After one of its documents changed state: finish the batch when nothing is left open,
    else refresh its counters at most once a second (a full refresh per document serialised
    busy batches on the batch row).

    This runs after the document's own commit, so when two workers finish a batch's last two
    documents at once, the later of the two checks sees both and finishes the batch.
    """
    # Raw SQL because this runs after every document: the ORM took three times the CPU.
    sql = _SETTLE_SQL.format(
        batches=connection.ops.quote_name(BatchProcess._meta.db_table),
        documents=connection.ops.quote_name(Document._meta.db_table),
    )
    pk = BatchProcess._meta.pk.get_db_prep_value(batch_id, connection)
    stale = connection.ops.adapt_datetimefield_value(now - COUNTERS_EVERY)
    with connection.cursor() as cursor:
        cursor.execute(sql, (stale, pk, *OPEN_STATUSES, pk))
        row = cursor.fetchone()
    if row is None:
        return
    status, counters_due, open_documents = row
    if not open_documents or status == BatchProcess.Status.CANCELED:
        with transaction.atomic():
            batch_refresh(batch_id=batch_id)
    elif counters_due:
        # Only counters are due: when another worker is refreshing them right now, its
        # refresh will do, and waiting for its lock would hold up this worker and the claims.
        with transaction.atomic():
            batch_refresh(batch_id=batch_id, unless_busy=True)
    if open_documents and transaction.get_connection().in_atomic_block:
        # Called inside a caller's transaction, our document is not committed yet: another
        # worker finishing the last document now would count ours as open. Look again once
        # ours is committed.
        transaction.on_commit(lambda: _settle_batch(batch_id=batch_id, now=timezone.now()))


def batch_refresh(*, batch_id: uuid.UUID, unless_busy: bool = False) -> str | None:
    """Recompute a batch's counters from its documents, and finish it when nothing is left.

    The move to a terminal status is a conditional UPDATE from a running status, so however many
    workers call this at once, the batch finishes exactly once and only that caller notifies.
    `unless_busy`: do nothing (and return None) when another transaction holds the batch row.
    """
    # Lock the batch first: two workers finishing its last two documents at once would each
    # count the other's as still open (PostgreSQL), and neither would finish the batch.
    status = (
        BatchProcess.objects.select_for_update(skip_locked=unless_busy)
        .filter(pk=batch_id)
        .values_list("status", flat=True)
        .first()
    )
    if status is None:
        return None
    if status == BatchProcess.Status.CANCELED:
        _cancel_leftovers(batch_id=batch_id)
    counts = Document.objects.filter(batch_id=batch_id).aggregate(
        total=Count("id"),
        open=Count("id", filter=Q(status__in=[Document.Status.QUEUED, Document.Status.PROCESSING])),
        completed=Count("id", filter=Q(status=Document.Status.COMPLETED)),
        failed=Count("id", filter=Q(status=Document.Status.FAILED)),
    )
    changes: dict[str, Any] = {
        "updated_at": timezone.now(),
        "total_documents": counts["total"],
        "processed_documents": counts["total"] - counts["open"],
        "failed_documents": counts["failed"],
    }
    running = status in (BatchProcess.Status.QUEUED, BatchProcess.Status.PROCESSING)
    if running and counts["open"] == 0 and counts["total"]:
        if counts["completed"] == counts["total"] - _canceled(counts):
            changes["status"] = BatchProcess.Status.COMPLETED
        elif counts["completed"] == 0:
            changes["status"] = BatchProcess.Status.FAILED
        else:
            changes["status"] = BatchProcess.Status.COMPLETED_WITH_ERRORS
        changes.update(
            completed_at=timezone.now(), paused_reason="", finish_seq=F("finish_seq") + 1
        )
    # The status condition keeps "finished exactly once" even without the row lock (SQLite).
    updated = BatchProcess.objects.filter(pk=batch_id, status=status).update(**changes)
    if updated and "status" in changes:
        outbox_batch_finished(batch_id=batch_id)  # in this transaction; dispatched after commit
    return changes.get("status", status)


def _cancel_leftovers(*, batch_id: uuid.UUID) -> None:
    """Documents that went back to the queue after their batch was canceled (a transient error
    or an expired lease of a document that was in flight) are canceled, not left waiting."""
    leftovers = list(
        Document.objects.filter(
            batch_id=batch_id,
            status=Document.Status.QUEUED,
            batch__status=BatchProcess.Status.CANCELED,
        ).values_list("pk", flat=True)
    )
    if leftovers:
        _cancel_documents(document_ids=leftovers)


def _cancel_documents(*, document_ids: list[uuid.UUID]) -> None:
    Document.objects.filter(pk__in=document_ids, status=Document.Status.QUEUED).update(
        status=Document.Status.CANCELED,
        error_code="canceled",
        error_message="Canceled before it was processed.",
        completed_at=timezone.now(),
    )
    _refund(document_ids=document_ids)


def _canceled(counts: dict[str, int]) -> int:
    return counts["total"] - counts["open"] - counts["completed"] - counts["failed"]


def batch_cancel(*, batch: BatchProcess) -> BatchProcess:
    """Cancel a running batch: queued documents become canceled (quota given back); documents in
    flight finish but do not reopen it."""
    now = timezone.now()
    with transaction.atomic():
        changed = BatchProcess.objects.filter(
            pk=batch.pk, status__in=[BatchProcess.Status.QUEUED, BatchProcess.Status.PROCESSING]
        ).update(status=BatchProcess.Status.CANCELED, completed_at=now, paused_reason="")
        if not changed:
            raise Rejected.one("conflict", f"Batch “{batch.name}” has already finished.")
        batch_refresh(batch_id=batch.pk)  # cancels the queued documents and refunds them
    batch.refresh_from_db()
    return batch


def _requeue(*, batch: BatchProcess, documents: QuerySet[Document]) -> int:
    """Put finished documents back in the queue with fresh attempts, each reserving quota again,
    and reopen the batch. A canceled batch stays canceled."""
    if batch.status == BatchProcess.Status.CANCELED:
        raise Rejected.one("conflict", f"Batch “{batch.name}” was canceled.")
    plan = user_effective_plan(batch.user).plan
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            documents.filter(status__in=Document.TERMINAL_STATUSES)
            .select_for_update()
            .values_list("pk", flat=True)
        )
        if not ids:
            return 0
        # Every re-extraction counts against this month; a completed document's first
        # reservation was used and stays used.
        month = quota_reserve(user=batch.user, plan=plan, documents=len(ids))
        Document.objects.filter(pk__in=ids).update(
            quota_month=month,
            status=Document.Status.QUEUED,
            attempts=0,
            next_attempt_at=now,
            error_code="",
            error_message="",
            result=None,
            values_found=None,
            values_verified=None,
            cost_usd=None,
            completed_at=None,
            updated_at=now,
        )
        BatchProcess.objects.filter(pk=batch.pk).update(
            status=BatchProcess.Status.PROCESSING, completed_at=None
        )
        batch_refresh(batch_id=batch.pk)
        transaction.on_commit(kick_workers)
    return len(ids)


def batch_retry_failed(*, batch: BatchProcess) -> int:
    """Requeue the batch's failed documents; the batch reopens and finishes again, once."""
    failed = batch.documents.filter(status=Document.Status.FAILED)
    if not failed.exists():
        raise Rejected.one("conflict", f"Batch “{batch.name}” has no failed documents to retry.")
    return _requeue(batch=batch, documents=failed)


def document_rerun(*, document: Document) -> Document:
    """Extract one finished document again (its stored text is reused; a failed read is retried
    because nothing was stored)."""
    if not document.is_terminal:
        raise Rejected.one("conflict", f"{document.original_filename} is still being processed.")
    _requeue(batch=document.batch, documents=Document.objects.filter(pk=document.pk))
    document.refresh_from_db()
    return document


# --- Recovery ------------------------------------------------------------------------------------


def sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Put expired leases back in the queue (or fail them once attempts are spent, so a document
    that kills its worker cannot loop), and finish batches left with nothing to do."""
    now = now or timezone.now()
    max_attempts = settings.SHEAF_MAX_ATTEMPTS
    expired = Document.objects.filter(status=Document.Status.PROCESSING, lease_expires_at__lt=now)
    batch_ids = set(expired.values_list("batch_id", flat=True))
    with transaction.atomic():
        spent_ids = list(expired.filter(attempts__gte=max_attempts).values_list("pk", flat=True))
        failed = Document.objects.filter(
            pk__in=spent_ids, status=Document.Status.PROCESSING, lease_expires_at__lt=now
        ).update(
            status=Document.Status.FAILED,
            error_code="timeout",
            error_message=(
                f"Processing stopped without finishing {max_attempts} times (the worker died "
                "or was killed); gave up."
            ),
            lease_token=None,
            lease_expires_at=None,
            completed_at=now,
        )
        _refund(document_ids=spent_ids)
        outbox_documents_failed(document_ids=spent_ids, failed_at=now)
        requeued = expired.filter(attempts__lt=max_attempts).update(
            status=Document.Status.QUEUED,
            lease_token=None,
            lease_expires_at=None,
            next_attempt_at=now,
            error_code="timeout",
            error_message="The worker processing this document stopped; it was requeued.",
        )
    stuck = BatchProcess.objects.filter(
        status__in=[BatchProcess.Status.QUEUED, BatchProcess.Status.PROCESSING]
    ).exclude(documents__status__in=[Document.Status.QUEUED, Document.Status.PROCESSING])
    batch_ids |= set(stuck.values_list("pk", flat=True))
    for batch_id in batch_ids:
        with transaction.atomic():
            batch_refresh(batch_id=batch_id)
    submissions_prune(now=now)
    resumed = circuits_probe(now=now)
    economy_recover(now=now)
    economy_submit(now=now)
    economy_collect(now=now)
    return {"requeued": requeued, "failed": failed, "batches": len(batch_ids), "resumed": resumed}


def work_remaining(*, now: datetime | None = None) -> bool:
    return documents_waiting().filter(next_attempt_at__lte=now or timezone.now()).exists()


def seconds_until_next_due(
    *,
    now: datetime | None = None,
    batch_id: uuid.UUID | None = None,
    document_ids: Collection[uuid.UUID] | None = None,
) -> float | None:
    """How long until a queued document (a retry in backoff) becomes due; None if none waits.
    `batch_id` and `document_ids` narrow it as in `document_claim`."""
    now = now or timezone.now()
    due = (
        documents_waiting(batch_id=batch_id, document_ids=document_ids)
        .order_by("next_attempt_at")
        .values_list("next_attempt_at", flat=True)
        .first()
    )
    if due is None:
        return None
    return max((due - now).total_seconds(), 0.0)


def kick_workers() -> None:
    """Ask the cluster for a drain (called after commit, so workers see the new rows)."""
    from batches.tasks import enqueue_drain

    # One drain per worker process, so a new batch is spread over all of them at once.
    enqueue_drain(settings.SHEAF_WORKERS)
