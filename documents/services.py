"""Writes about documents that are not part of processing: retention of uploaded originals."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from documents.models import Document

EXPIRE_CHUNK = 500


def originals_expire(*, days: int | None = None, now: datetime | None = None) -> int:
    """Delete uploaded originals older than `days` (default SHEAF_RETENTION_DAYS; None: keep
    everything) from storage, keeping each document's row, text and result, and mark when.

    Only documents in a terminal state lose their file, whatever their batch's state, so nothing
    a worker is reading (or may read again soon) disappears. Rows are marked before their files
    are deleted, inside one transaction per chunk: a storage error rolls the marks back and the
    next run tries again. Running twice deletes nothing more. Returns how many were removed.
    """
    days = settings.SHEAF_RETENTION_DAYS if days is None else days
    if days is None:
        return 0
    now = now or timezone.now()
    expired = Document.objects.filter(
        status__in=Document.TERMINAL_STATUSES,
        created_at__lt=now - timedelta(days=days),
    ).exclude(file="")
    removed = 0
    while True:
        with transaction.atomic():
            # Locked rows are skipped: a re-run taking one back into the queue wins, and the
            # next day's run sees it again once it is finished.
            rows = list(
                expired.order_by("created_at")
                .select_for_update(skip_locked=True)
                .values_list("pk", "file")[:EXPIRE_CHUNK]
            )
            if not rows:
                return removed
            Document.objects.filter(pk__in=[pk for pk, _ in rows]).update(
                file="", file_removed_at=now
            )
            for _, path in rows:
                default_storage.delete(path)
        removed += len(rows)
