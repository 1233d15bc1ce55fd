"""Batch use cases. The dashboard, the API and the CLI all come through these functions."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Count, Q

from accounts.models import User
from accounts.selectors import user_effective_plan
from accounts.services import limits_check_files, limits_check_mode, limits_reserve_submission
from batches.fields import FieldSpec, fields_from_prompt
from batches.models import BatchProcess
from batchsite.errors import Problem, Rejected
from documents.models import Document
from documents.uploads import InspectedUpload, inspect_upload

logger = logging.getLogger(__name__)

MAX_PROMPT_LENGTH = 10_000
MAX_NAME_LENGTH = 200


def engine_for_new_batch() -> str:
    """The engine a batch submitted now will use (SHEAF_EXTRACTION_ENGINE; auto = by API key)."""
    choice = settings.SHEAF_EXTRACTION_ENGINE
    if choice == "auto":
        return "anthropic" if settings.ANTHROPIC_API_KEY else "local"
    return choice


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

    fields = fields or fields_from_prompt(prompt)
    stored: list[str] = []
    try:
        with transaction.atomic():
            limits_reserve_submission(user=user, plan=plan, documents=len(uploads))
            batch = BatchProcess.objects.create(
                user=user,
                name=name or _default_name(uploads),
                description=description.strip(),
                extraction_prompt=prompt,
                fields=fields,
                plan=plan.key,
                priority=plan.priority,
                mode=mode,
                engine=engine_for_new_batch(),
                total_documents=len(uploads),
            )
            documents = []
            for upload in uploads:
                document_id = uuid.uuid4()
                path = Document.storage_path(
                    user_id=user.pk,
                    batch_id=batch.pk,
                    document_id=document_id,
                    ext=upload.kind.extension,
                )
                upload.file.seek(0)
                saved = default_storage.save(path, upload.file)
                stored.append(saved)
                documents.append(
                    Document(
                        id=document_id,
                        batch=batch,
                        user=user,
                        original_filename=upload.filename,
                        file=saved,
                        size=upload.size,
                        sha256=upload.sha256,
                        content_type=upload.kind.content_type,
                    )
                )
            Document.objects.bulk_create(documents)
    except BaseException:
        for path in stored:
            default_storage.delete(path)
        raise
    logger.info("batch %s created by user %s with %d documents", batch.pk, user.pk, len(uploads))
    return batch


def batch_refresh_counts(*, batch: BatchProcess) -> BatchProcess:
    """Recompute the batch's counters from its documents' states."""
    counts = batch.documents.aggregate(
        total=Count("id"),
        processed=Count("id", filter=Q(status__in=Document.TERMINAL_STATUSES)),
        failed=Count("id", filter=Q(status=Document.Status.FAILED)),
    )
    BatchProcess.objects.filter(pk=batch.pk).update(
        total_documents=counts["total"],
        processed_documents=counts["processed"],
        failed_documents=counts["failed"],
    )
    batch.refresh_from_db()
    return batch


def batch_delete(*, batch: BatchProcess) -> None:
    """Delete a batch, its documents and their stored files (files after the rows are gone)."""
    paths = [p for p in batch.documents.values_list("file", flat=True) if p]
    with transaction.atomic():
        batch.delete()

    def remove_files() -> None:
        for path in paths:
            default_storage.delete(path)

    transaction.on_commit(remove_files)
