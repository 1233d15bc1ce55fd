"""Upload drafts: the upload page sends each chosen file as soon as it is chosen, so a file the
server refuses is refused alone and the others stay chosen, and submits the form once all are in.

A draft file is checked as an upload is (`inspect_upload`: type by content, empty, size against
the plan) and stored as an original is, but a draft is not a batch: it reserves no quota, counts
for nothing and no list or API shows it. Submitting goes through the caller's `batch_create`, so
plan, quota and submission rate are checked then, exactly as for a multipart upload; a refused
submission keeps the draft. A draft expires with its files a day after it was started.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta

from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from accounts.selectors import user_effective_plan
from accounts.services import limits_check_files
from batches.models import BatchProcess, DraftFile, UploadDraft
from batchsite.errors import Problem, Rejected
from documents.uploads import inspect_upload

logger = logging.getLogger(__name__)

DRAFT_LIFETIME = timedelta(days=1)
# Every page load starts a draft, so drafts abandoned by reloads or closed tabs are bounded:
# starting one more than this deletes the user's oldest.
MAX_DRAFTS_PER_USER = 5
DRAFT_GONE = (
    "The files uploaded for this batch are no longer kept (they are kept for a day, until the "
    "batch is started); choose them again."
)


def draft_get_for_user(*, user: User, draft_id: uuid.UUID | str) -> UploadDraft:
    """The user's draft, still open and not expired; another user's draft does not exist for
    them. Raises Rejected (`not_found`)."""
    try:
        return UploadDraft.objects.get(
            pk=draft_id,
            user=user,
            submitted_at__isnull=True,
            created_at__gte=timezone.now() - DRAFT_LIFETIME,
        )
    except (UploadDraft.DoesNotExist, ValueError, TypeError):
        raise Rejected.one("not_found", DRAFT_GONE) from None


def draft_files_for_user(*, user: User, draft_id: uuid.UUID | str | None) -> list[DraftFile]:
    """The files of the user's open draft in the order they arrived; none for no such draft."""
    if not draft_id:
        return []
    try:
        draft = draft_get_for_user(user=user, draft_id=draft_id)
    except Rejected:
        return []
    return list(draft.files.order_by("id"))


def draft_file_add(*, user: User, draft_id: uuid.UUID | None, file: File[bytes]) -> DraftFile:
    """Check one file as `batch_create` checks each upload and keep it in the user's draft
    (`draft_id`, or a new draft when None). A draft holds at most the plan's files per batch.

    Raises Rejected with the file's problem (`unsupported_type`, `empty_file`,
    `file_too_large`, `too_many_files`; `not_found` for a draft that is gone), storing nothing.
    Quota and submission rate are not checked: a draft reserves nothing until it is submitted.
    """
    plan = user_effective_plan(user).plan
    draft = draft_get_for_user(user=user, draft_id=draft_id) if draft_id else None
    if draft is not None:
        names = list(draft.files.values_list("original_filename", flat=True))
        problems = limits_check_files(plan=plan, filenames=[*names, file.name or ""])
        if problems:
            raise Rejected(problems)
    inspected = inspect_upload(file, max_size=plan.max_file_size)
    if isinstance(inspected, Problem):
        raise Rejected([inspected])
    if draft is None:
        draft = _draft_start(user=user)
    inspected.file.seek(0)
    stored = default_storage.save(
        DraftFile.storage_path(user_id=user.pk, draft_id=draft.pk, ext=inspected.kind.extension),
        inspected.file,
    )
    try:
        return DraftFile.objects.create(
            draft=draft,
            file=stored,
            original_filename=inspected.filename,
            size=inspected.size,
            content_type=inspected.kind.content_type,
            sha256=inspected.sha256,
        )
    except BaseException:
        default_storage.delete(stored)
        raise


def _draft_start(*, user: User) -> UploadDraft:
    older = UploadDraft.objects.filter(user=user, submitted_at__isnull=True).order_by(
        "-created_at", "-pk"
    )
    _drafts_delete(list(older[MAX_DRAFTS_PER_USER - 1 :].values_list("pk", flat=True)))
    return UploadDraft.objects.create(user=user)


def draft_file_remove(*, user: User, file_id: int) -> None:
    """Take one file out of the user's open draft and delete it from storage. Raises Rejected
    (`not_found`) for a file that is not in one of their open drafts."""
    deleted = DraftFile.objects.filter(
        pk=file_id, draft__user=user, draft__submitted_at__isnull=True
    ).first()
    if deleted is None:
        raise Rejected.one("not_found", "No such file in this upload.")
    name = deleted.file.name or ""
    deleted.delete()
    transaction.on_commit(lambda: default_storage.delete(name))


def draft_submit(
    *,
    user: User,
    draft_id: uuid.UUID,
    create: Callable[[Sequence[File[bytes]]], BatchProcess],
) -> BatchProcess:
    """Make a batch of the draft's files, in the order they arrived, by calling `create` with
    them (the caller's `batch_create` with the form's values, so a draft meets every check a
    multipart upload does, at submission time), then delete the draft and its files.

    A Rejected from `create` (or any error) leaves the draft as it was, so nothing needs
    choosing again. The draft is claimed first with a conditional update: a second submission
    of the same draft is refused (`conflict`) rather than making a second batch.
    """
    draft = draft_get_for_user(user=user, draft_id=draft_id)
    claimed = UploadDraft.objects.filter(pk=draft.pk, submitted_at__isnull=True).update(
        submitted_at=timezone.now()
    )
    if not claimed:
        raise Rejected.one("conflict", "These files are already being submitted.")
    opened: list[File[bytes]] = []
    try:
        for row in draft.files.order_by("id"):
            stored = default_storage.open(row.file.name or "", "rb")
            opened.append(File(stored, name=row.original_filename))
        batch = create(opened)
    except BaseException:
        UploadDraft.objects.filter(pk=draft.pk).update(submitted_at=None)
        raise
    finally:
        for handle in opened:
            handle.close()
    _drafts_delete([draft.pk])
    logger.info("batch %s made from upload draft %s", batch.pk, draft.pk)
    return batch


def drafts_expire(*, now: datetime | None = None) -> int:
    """Delete drafts started more than a day ago, with their files (a draft being submitted
    right now is left to finish). Part of the recovery sweep; returns how many went."""
    now = now or timezone.now()
    expired = (
        UploadDraft.objects.filter(created_at__lt=now - DRAFT_LIFETIME)
        .exclude(submitted_at__gte=now - timedelta(hours=1))
        .values_list("pk", flat=True)
    )
    return _drafts_delete(expired)


def _drafts_delete(draft_ids: Iterable[uuid.UUID]) -> int:
    ids = list(draft_ids)
    if not ids:
        return 0
    with transaction.atomic():
        paths = list(DraftFile.objects.filter(draft__in=ids).values_list("file", flat=True))
        UploadDraft.objects.filter(pk__in=ids).delete()
        transaction.on_commit(lambda: _files_delete(paths))
    return len(ids)


def _files_delete(paths: Sequence[str]) -> None:
    for path in paths:
        try:
            default_storage.delete(path)
        except Exception:
            logger.exception("upload drafts: could not delete %s; it is unreachable", path)
