"""Batch use cases. The dashboard, the API and the CLI all come through these functions."""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import User
from accounts.selectors import user_effective_plan
from accounts.services import (
    limits_check_files,
    limits_check_mode,
    limits_check_submission,
    limits_reserve_submission,
    quota_reserve,
)
from batches.models import BatchProcess, FieldTemplate
from batches.pipeline.budgets import budget_set
from batches.pipeline.claims import kick_workers
from batches.pipeline.finishing import batch_refresh
from batches.runs import queued_again, run_abandon, run_first, run_reopened, run_start
from batches.shipped_templates import SHIPPED_TEMPLATES
from batchsite.errors import Problem, Rejected
from documents.models import VALUE_STATUSES, Document
from documents.services import document_stored_files
from documents.uploads import InspectedUpload, display_filename, file_sha256, inspect_upload
from extraction import engine_for_new_batch
from extraction.fields import FieldSpec, fields_from_prompt
from notifications.models import EventKind
from notifications.services import outbox_batch_state

logger = logging.getLogger(__name__)

MAX_PROMPT_LENGTH = 10_000
MAX_NAME_LENGTH = 200
# How far ahead a batch may be scheduled (`start_at`).
MAX_START_AHEAD = timedelta(days=90)
MAX_BUDGET_USD = Decimal(1_000_000)


def _default_name(uploads: Sequence[InspectedUpload]) -> str:
    first = Path(uploads[0].filename).stem or uploads[0].filename
    name = first if len(uploads) == 1 else f"{first} and {len(uploads) - 1} more"
    return name[:MAX_NAME_LENGTH]


def start_at_parse(value: str | datetime | None, *, now: datetime) -> datetime | Problem | None:
    """When a batch asked to start (`start_at`, ISO 8601 with a time zone) should start: None
    for at once (nothing asked, or a time already past), else the moment; a Problem
    (`invalid_start_at`) for a time that does not parse, has no zone or is over
    `MAX_START_AHEAD` away."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    example = "e.g. 2026-12-24T09:00:00+01:00 or 2026-12-24T08:00:00Z"
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().upper())  # RFC 3339 allows "t", "z"
        except ValueError:
            return Problem(
                "invalid_start_at",
                f"start_at “{value.strip()}” is not an ISO 8601 date and time ({example}).",
            )
    else:
        moment = value
    if moment.utcoffset() is None:
        return Problem(
            "invalid_start_at",
            f"start_at “{value}” has no time zone, so it could mean any of 24 hours: add one "
            f"({example}).",
        )
    if moment <= now:
        return None
    latest = now + MAX_START_AHEAD
    if moment > latest:
        return Problem(
            "invalid_start_at",
            f"start_at “{value}” is more than {MAX_START_AHEAD.days} days ahead; the latest "
            f"start is {latest:%Y-%m-%d %H:%M} UTC.",
        )
    return moment.astimezone(UTC)


def request_fingerprint(
    *,
    prompt: str,
    fields: list[FieldSpec] | None,
    name: str,
    description: str,
    mode: str,
    files: Sequence[tuple[str, str]],
    start_at: str | datetime | None = None,
    budget_usd: Decimal | None = None,
) -> str:
    """What makes two submissions the same request, as a SHA-256: the parsed form values
    (normalised as `batch_create` stores them) and the files in order, each as (shown filename,
    SHA-256). Never the raw multipart bytes: their boundary changes on every honest retry.
    `start_at` as it was asked (a retry may come after the time, which then means "now")."""
    canonical: dict[str, object] = {
        "prompt": (prompt or "").strip(),
        "fields": fields or [],
        "name": " ".join((name or "").split()),
        "description": (description or "").strip(),
        "mode": mode,
        "files": [list(pair) for pair in files],
    }
    if start_at:
        # Only when given, so that the requests made before it existed keep their fingerprint.
        asked = start_at.isoformat() if isinstance(start_at, datetime) else start_at.strip()
        canonical["start_at"] = asked
    if budget_usd is not None:  # left out without one: keys sent before budgets still match
        canonical["budget_usd"] = str(budget_usd)
    text = json.dumps(canonical, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def batch_create(
    *,
    user: User,
    files: Sequence[File[bytes]],
    prompt: str,
    fields: list[FieldSpec] | None = None,
    name: str = "",
    description: str = "",
    mode: str = BatchProcess.Mode.STANDARD,
    idempotency_key: str = "",
    trial: bool = False,
    sample: bool = False,
    start_at: str | datetime | None = None,
    budget_usd: Decimal | None = None,
) -> BatchProcess:
    """Validate a submission against the user's plan and store it whole, or store nothing.

    Raises `Rejected` with every problem found (each naming the file and the limit). On success
    the batch and all its documents exist, each file is stored under
    ``uploads/<user>/<batch>/<document>.<ext>``, and workers are kicked after commit. A `trial`
    (see `batch_trial_create`) reserves its documents but is no submission of the hour.

    `start_at` (see `start_at_parse`) schedules the batch: it stays queued and its documents
    are not due until then; quota, submission rate and plan are still taken now.

    Without a `budget_usd` the batch gets the plan's `default_budget_usd`, if any.

    A `sample` (see `batch_sample_create`) is outside the plan's limits: no count of files, no
    quota, no submission rate, no default budget.
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
    starts = start_at_parse(start_at, now=timezone.now())
    if isinstance(starts, Problem):
        problems.append(starts)
        starts = None
    problems += limits_check_mode(plan=plan, mode=mode)
    if budget_usd is not None and (problem := budget_problem(budget_usd)) is not None:
        problems.append(problem)
    if not sample:
        problems += limits_check_files(plan=plan, filenames=[f.name or "" for f in files])
    uploads: list[InspectedUpload] = []
    if not problems:
        for given in files:
            inspected = inspect_upload(given, max_size=plan.max_file_size)
            if isinstance(inspected, Problem):
                problems.append(inspected)
            else:
                uploads.append(inspected)
    if problems:
        raise Rejected(problems)

    # A read-only look at quota and rate first, so a refused submission stores no file at all;
    # the reservation in the transaction below is what really decides.
    if not sample:
        limits_check_submission(user=user, plan=plan, documents=len(uploads), rate=not trial)

    fingerprint = request_fingerprint(
        prompt=prompt,
        fields=fields,
        name=name,
        description=description,
        mode=mode,
        files=[(upload.filename, upload.sha256) for upload in uploads],
        start_at=start_at,
        budget_usd=budget_usd,
    )
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
                    # Not due before the batch's start (the claim's and health's "due").
                    **({"next_attempt_at": starts} if starts else {}),
                )
            )
        with transaction.atomic():
            month: date | None = None
            if not sample:
                reserve = quota_reserve if trial else limits_reserve_submission
                month = reserve(user=user, plan=plan, documents=len(uploads))
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
                request_fingerprint=fingerprint,
                is_trial=trial,
                is_sample=sample,
                start_at=starts,
                budget_usd=budget_usd
                if budget_usd is not None or sample
                else plan.default_budget_usd,
            )
            run = run_first(batch=batch)
            for document in documents:
                document.quota_month = month
                document.run = run
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


def batch_trial_create(
    *, user: User, files: Sequence[File[bytes]], prompt: str, fields: list[FieldSpec] | None
) -> Document:
    """ "Try on one document": run a prompt and field list on one file before the batch is
    submitted, through the normal pipeline, as a hidden one-document batch (`is_trial`). It
    counts as one document of the month and not as a submission (the hourly rate). Raises
    `Rejected` as `batch_create` does, and when not exactly one file is given."""
    if len(files) != 1:
        raise Rejected.one("no_files", "Choose the one document to try the prompt on.")
    batch = batch_create(
        user=user,
        files=files,
        prompt=prompt,
        fields=fields,
        name=f"Try: {display_filename(files[0].name)}",
        trial=True,
    )
    return batch.documents.get()


# The sample batch: invoices Sheaf draws itself (samples.invoices, seeded, so every user gets
# the same three), in three languages and both classic layouts, read with the shipped Invoice
# template's prompt and fields. Each is (seed, language, `samples.invoices.Layout` value).
SAMPLE_NAME = "Sample: example invoices"
SAMPLE_DESCRIPTION = "Three invoices Sheaf made up, to show what a batch does."
SAMPLE_INVOICES = (
    (20261, "en-US", "block"),
    (20262, "en-GB", "table"),
    (20263, "de-DE", "block"),
)


def sample_files() -> list[ContentFile[bytes]]:
    """The sample batch's documents: PDF invoices with a text layer, named by their numbers."""
    # The PDF writer (fpdf2 and fontTools, 50 MB) comes with the sample, not with this module,
    # which every worker imports.
    from samples.invoices import Layout, invoice

    made = [
        invoice(seed, language=language, layout=Layout(layout), serial=seed % 1000)
        for seed, language, layout in SAMPLE_INVOICES
    ]
    return [ContentFile(one.pdf, name=one.filename) for one in made]


def batch_sample_create(*, user: User) -> tuple[BatchProcess, bool]:
    """ "Try it with example invoices": a batch of `sample_files()` extracted with the shipped
    Invoice template, marked `is_sample`, outside every plan limit and quota, on every plan.
    A user has one sample at a time (a unique constraint): while it exists, this returns it.
    Returns (batch, created)."""
    existing = BatchProcess.objects.filter(user=user, is_sample=True).first()
    if existing is not None:
        return existing, False
    template = next(t for t in SHIPPED_TEMPLATES if t.name == "Invoice")
    try:
        batch = batch_create(
            user=user,
            files=sample_files(),
            prompt=template.prompt,
            fields=template.fields,
            name=SAMPLE_NAME,
            description=SAMPLE_DESCRIPTION,
            sample=True,
        )
    except IntegrityError:  # two clicks at once: the other one made it
        existing = BatchProcess.objects.filter(user=user, is_sample=True).first()
        if existing is None:
            raise
        return existing, False
    return batch, True


def batch_create_once(
    *,
    user: User,
    idempotency_key: str,
    files: Sequence[File[bytes]],
    prompt: str,
    fields: list[FieldSpec] | None = None,
    name: str = "",
    description: str = "",
    mode: str = BatchProcess.Mode.STANDARD,
    start_at: str | datetime | None = None,
    budget_usd: Decimal | None = None,
) -> tuple[BatchProcess, bool]:
    """`batch_create` for a client that may send the same request twice: the same key with the
    same request (`request_fingerprint`) from the same user returns the batch the first request
    made; with a different request it is refused as `idempotency_mismatch`, as Stripe does,
    rather than answered with a batch that is not what was asked for. Returns (batch, created).

    A repeat is answered before any limit is checked, so a retry after a lost response is never
    rate limited. Two requests racing with one key both get past that look-up; the unique
    constraint on (user, idempotency_key) lets exactly one insert win, the loser's transaction
    (quota, files) is undone by `batch_create`, and it answers as a repeat of the winner.
    """

    def repeat_of(existing: BatchProcess) -> tuple[BatchProcess, bool]:
        fingerprint = request_fingerprint(
            prompt=prompt,
            fields=fields,
            name=name,
            description=description,
            mode=mode,
            files=[(display_filename(f.name), file_sha256(f)) for f in files],
            start_at=start_at,
            budget_usd=budget_usd,
        )
        if existing.request_fingerprint and existing.request_fingerprint != fingerprint:
            raise Rejected.one(
                "idempotency_mismatch",
                f"Idempotency-Key {idempotency_key!r} was already used for a different request "
                f"(batch {existing.pk}). Send a new key for a new batch, or the same prompt, "
                "fields, name, description, mode, budget_usd, start_at and files to get that batch "
                "again.",
            )
        return existing, False

    existing = BatchProcess.objects.filter(user=user, idempotency_key=idempotency_key).first()
    if existing is not None:
        return repeat_of(existing)
    try:
        batch = batch_create(
            user=user,
            files=files,
            prompt=prompt,
            fields=fields,
            name=name,
            description=description,
            mode=mode,
            idempotency_key=idempotency_key,
            start_at=start_at,
            budget_usd=budget_usd,
        )
    except IntegrityError:
        existing = BatchProcess.objects.filter(user=user, idempotency_key=idempotency_key).first()
        if existing is None:
            raise
        return repeat_of(existing)
    return batch, True


def budget_problem(budget_usd: Decimal) -> Problem | None:
    """Why a budget cannot be taken, or None: more than $0, at most MAX_BUDGET_USD, cents."""
    if not budget_usd.is_finite() or budget_usd <= 0:
        return Problem("invalid", f"A budget is a number of dollars above 0, not {budget_usd}.")
    if budget_usd > MAX_BUDGET_USD:
        return Problem("invalid", f"A budget is at most ${MAX_BUDGET_USD:,} per batch.")
    if budget_usd != budget_usd.quantize(Decimal("0.01")):
        return Problem("invalid", f"A budget is in whole cents, e.g. 5.00, not {budget_usd}.")
    return None


def batch_budget_set(*, batch: BatchProcess, budget_usd: Decimal | None) -> BatchProcess:
    """Set, raise or lower a batch's budget (None removes it). Raising it above what the batch
    spent and has in flight resumes a batch its budget paused; below, it stays paused. A
    finished or canceled batch keeps its budget for its next run. Raises Rejected `invalid`."""
    if budget_usd is not None and (problem := budget_problem(budget_usd)) is not None:
        raise Rejected([problem])
    budget_set(batch_id=batch.pk, budget_usd=budget_usd, now=timezone.now())
    batch.refresh_from_db()
    return batch


def batch_delete(*, batch: BatchProcess) -> None:
    """Delete a batch, its documents and their stored files (files after the rows are gone).

    A running batch is canceled first, so its queued documents give their quota back.
    """
    paths = [
        name
        for file, read_result in batch.documents.values_list("file", "read_result")
        for name in document_stored_files(file=file, read_result=read_result)
    ]
    with transaction.atomic():
        if not batch.is_terminal:
            batch_cancel(batch=batch)
        batch.delete()

    transaction.on_commit(lambda: _files_delete(paths))


def _files_delete(paths: Sequence[str]) -> None:
    for path in paths:
        default_storage.delete(path)


def batch_cancel(*, batch: BatchProcess) -> BatchProcess:
    """Cancel a running batch: queued documents become canceled (quota given back); documents in
    flight finish but do not reopen it. A re-run is canceled alone: the batch goes back to the
    run it served, as it was."""
    now = timezone.now()
    with transaction.atomic():
        if run_abandon(batch=batch) is not None:
            batch.refresh_from_db()
            return batch
        changed = BatchProcess.objects.filter(
            pk=batch.pk, status__in=[BatchProcess.Status.QUEUED, BatchProcess.Status.PROCESSING]
        ).update(
            status=BatchProcess.Status.CANCELED,
            completed_at=now,
            paused_reason="",
            budget_paused_at=None,
        )
        if not changed:
            raise Rejected.one("conflict", f"Batch “{batch.name}” has already finished.")
        batch_refresh(batch_id=batch.pk)  # cancels the queued documents and refunds them
        outbox_batch_state(batch_id=batch.pk, kind=EventKind.BATCH_CANCELED)
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
            .select_for_update(no_key=True)
            .values_list("pk", flat=True)
        )
        if not ids:
            return 0
        # Every re-extraction counts against this month; a completed document's first
        # reservation was used and stays used.
        month = quota_reserve(user=batch.user, plan=plan, documents=len(ids))
        Document.objects.filter(pk__in=ids).update(
            **queued_again(run_id=batch.current_run_id, month=month, now=now),
            # Extracted again within the current run: its old result goes.
            result=None,
            values_total=None,
            values_found=None,
            values_verified=None,
            **{f"count_{status}": None for status in VALUE_STATUSES},
        )
        BatchProcess.objects.filter(pk=batch.pk).update(
            status=BatchProcess.Status.PROCESSING, completed_at=None
        )
        run_reopened(batch_id=batch.pk)
        batch_refresh(batch_id=batch.pk)
        transaction.on_commit(kick_workers)
    return len(ids)


# What fixes a document whose failure a retry cannot (error.kind permanent), by error code.
RETRY_CANNOT_FIX = {
    "encrypted": "remove the password and upload it again",
    "no_text_layer": "upload a clearer scan, or a PDF with its text",
    "malformed": "upload a copy that opens",
    "too_large": "split it, or upload a smaller file",
    "unsupported_type": "upload it as PDF, CSV, XLSX, TXT, XML or an image",
    "file_removed": "upload it again",
}


def batch_unretryable(*, batch: BatchProcess) -> list[str]:
    """The batch's failed documents a retry would fail again (error.kind permanent), each said
    with its error and its fix: "scan.pdf (no_text_layer: upload a clearer scan, …)"."""
    failed = batch.documents.filter(
        status=Document.Status.FAILED, error_kind=Document.ErrorKind.PERMANENT
    ).order_by("created_at", "id")
    return [
        f"{document.original_filename} ({document.error_code}: "
        f"{RETRY_CANNOT_FIX.get(document.error_code, 'replace its original or re-run it alone')})"
        for document in failed.only("original_filename", "error_code")
    ]


def batch_retry_failed(*, batch: BatchProcess, include_permanent: bool = False) -> int:
    """Requeue the batch's failed documents that a retry can fix (every error kind but
    `permanent`, which fails the same way again, see `batch_unretryable`; staff may include
    them); the batch reopens and finishes again, once. Raises Rejected (conflict) when there is
    nothing to retry."""
    failed = batch.documents.filter(status=Document.Status.FAILED)
    retryable = (
        failed if include_permanent else failed.exclude(error_kind=Document.ErrorKind.PERMANENT)
    )
    if not retryable.exists():
        if not failed.exists():
            message = f"Batch “{batch.name}” has no failed documents to retry."
        else:
            message = (
                f"A retry cannot fix the failed documents of “{batch.name}”: "
                + "; ".join(batch_unretryable(batch=batch))
                + "."
            )
        raise Rejected.one("conflict", message)
    return _requeue(batch=batch, documents=retryable)


def document_replace_original(*, document: Document, file: File[bytes]) -> Document:
    """Replace one finished document's original with `file` (checked as an upload is) and
    extract it again in its batch: what was read from the old file, its result and its reviews
    go, and its old files are deleted once the new one is queued. Raises Rejected (the upload's
    problem; conflict while the document is being processed or its batch was canceled; the
    month's quota), storing nothing."""
    if not document.is_terminal:
        raise Rejected.one("conflict", f"{document.original_filename} is still being processed.")
    if document.batch.status == BatchProcess.Status.CANCELED:
        raise Rejected.one("conflict", f"Batch “{document.batch.name}” was canceled.")
    plan = user_effective_plan(document.user).plan
    inspected = inspect_upload(file, max_size=plan.max_file_size)
    if isinstance(inspected, Problem):
        raise Rejected([inspected])
    path = Document.storage_path(
        user_id=document.user_id,
        batch_id=document.batch_id,
        document_id=uuid.uuid4(),
        ext=inspected.kind.extension,
    )
    inspected.file.seek(0)
    stored = default_storage.save(path, inspected.file)
    try:
        with transaction.atomic():
            old = Document.objects.select_for_update(no_key=True).get(pk=document.pk)
            if not old.is_terminal:
                raise Rejected.one(
                    "conflict", f"{document.original_filename} is still being processed."
                )
            Document.objects.filter(pk=document.pk).update(
                file=stored,
                original_filename=inspected.filename,
                size=inspected.size,
                sha256=inspected.sha256,
                content_type=inspected.kind.content_type,
                file_removed_at=None,
                text="",
                text_truncated=False,
                read_at=None,
                read_result="",
                page_count=None,
                einvoice_xml="",
                estimated_cost_usd=None,
                reused_from=None,
                reviews={},
                reviewed_at=None,
            )
            _requeue(batch=document.batch, documents=Document.objects.filter(pk=document.pk))
            stale = document_stored_files(
                file=old.file.name or "", read_result=old.read_result.name or ""
            )
            transaction.on_commit(lambda: _files_delete(stale))
    except BaseException:
        default_storage.delete(stored)
        raise
    logger.info("document %s original replaced; queued again", document.pk)
    document.refresh_from_db()
    return document


def document_rerun(*, document: Document) -> Document:
    """Extract one finished document again (its stored text is reused; a failed read is retried
    because nothing was stored); its reviews stay. Of a finished batch, a one-document run with
    the same prompt and fields; while the batch still runs, again within its current run."""
    if not document.is_terminal:
        raise Rejected.one("conflict", f"{document.original_filename} is still being processed.")
    batch = BatchProcess.objects.get(pk=document.batch_id)
    if batch.is_terminal:
        run_start(batch=batch, documents=[document])
    else:
        _requeue(batch=batch, documents=Document.objects.filter(pk=document.pk))
    document.refresh_from_db()
    return document


def field_template_create(
    *, user: User, name: str, prompt: str, fields: list[FieldSpec]
) -> FieldTemplate:
    """Save a prompt and field list under a name of the user's, to start new batches from.
    Raises Rejected when the name is empty, too long, or already one of the user's templates."""
    name = " ".join((name or "").split())
    if not name:
        raise Rejected.one("invalid", "Give the template a name, e.g. “Supplier invoices”.")
    if len(name) > FieldTemplate.NAME_MAX_LENGTH:
        raise Rejected.one(
            "invalid", f"The name is longer than {FieldTemplate.NAME_MAX_LENGTH} characters."
        )
    taken = f"You already have a template called “{name}”; choose another name."
    if FieldTemplate.objects.filter(user=user, name__iexact=name).exists():
        raise Rejected.one("conflict", taken)
    try:
        with transaction.atomic():
            return FieldTemplate.objects.create(user=user, name=name, prompt=prompt, fields=fields)
    except IntegrityError:
        raise Rejected.one("conflict", taken) from None


def field_template_delete(*, template: FieldTemplate) -> None:
    """Delete one of a user's templates; the ones Sheaf ships are not rows and cannot be."""
    if template.shipped:
        raise Rejected.one(
            "forbidden", f"“{template.name}” comes with Sheaf and cannot be deleted."
        )
    template.delete()
