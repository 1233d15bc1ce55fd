"""Writes about documents that are not part of processing: keeping what a read gave, and retention
of uploaded originals with the files derived from them."""

from __future__ import annotations

import gzip
from datetime import datetime, timedelta

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from documents.models import Document
from documents.pages import pages_folder
from documents.readresults import ReadResult
from documents.sandbox import json_bytes

EXPIRE_CHUNK = 500


def read_result_store(*, document: Document, read: ReadResult) -> str:
    """Write `read` beside the document's original, as gzip JSON, and return its storage name
    for the caller to record on the row (`Document.read_result`) in the same update as the text.

    Stored, not in the database: words with boxes take about six times the text's size (a
    one-page invoice 3 KB of JSON, a dense page 30 KB, a 2,000-page upload tens of megabytes;
    gzip keeps a third), only the review page and later runs need them, and the row stays small
    for the lists and polls that read it.
    Writing again (a worker that lost its lease, a re-read) replaces the file.
    """
    name = document.read_result_path
    # mtime=0: the same read gives the same bytes.
    data = gzip.compress(json_bytes(read.as_json()), compresslevel=6, mtime=0)
    if default_storage.exists(name):
        default_storage.delete(name)
    return default_storage.save(name, ContentFile(data))


def document_stored_files(*, file: str, read_result: str) -> list[str]:
    """The storage names of a document's files (its original and what was derived from it: the
    read result, the pictures of its pages), for deleting them together."""
    names = [name for name in (file, read_result) if name]
    if file:
        folder = pages_folder(file)
        try:
            _, pictures = default_storage.listdir(folder)
        except (FileNotFoundError, NotImplementedError):
            pictures = []  # none drawn yet, or a storage that cannot list
        names += [f"{folder}/{picture}" for picture in pictures]
    return names


def originals_expire(*, days: int | None = None, now: datetime | None = None) -> int:
    """Delete uploaded originals older than `days` (default SHEAF_RETENTION_DAYS; None: keep
    everything) from storage with the read results kept beside them, keeping each document's
    row, text and result, and mark when.

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
                .select_for_update(skip_locked=True, no_key=True)
                .values_list("pk", "file", "read_result")[:EXPIRE_CHUNK]
            )
            if not rows:
                return removed
            Document.objects.filter(pk__in=[pk for pk, _, _ in rows]).update(
                file="", read_result="", file_removed_at=now
            )
            for _, file, read_result in rows:
                for name in document_stored_files(file=file, read_result=read_result):
                    default_storage.delete(name)
        removed += len(rows)
