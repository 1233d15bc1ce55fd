"""Reads about documents that other code reuses: the kept read result."""

from __future__ import annotations

import gzip
import logging

from django.core.files.storage import default_storage

from documents.models import Document
from documents.readresults import ReadResult
from documents.sandbox import from_json_bytes

logger = logging.getLogger(__name__)


def document_read_result(*, document: Document) -> ReadResult | None:
    """What reading `document` gave: every page's size, text and words with boxes, and the
    e-invoice XML. None when nothing is kept: not read yet, read before read results were kept,
    refused by the reader, or removed with the original (retention).

    Not scoped to a user: the caller got `document` through an owner-scoped selector
    (`batches.selectors.document_read_result_for_user`) or is the pipeline.
    """
    name = document.read_result.name
    if not name:
        return None
    try:
        with default_storage.open(name, "rb") as stored:
            data = stored.read()
    except FileNotFoundError:
        # The row names a file that is gone (deleted by hand, a restored database): the
        # document still has its text, so its callers carry on without boxes.
        logger.warning("document %s: its read result %s is missing", document.pk, name)
        return None
    return ReadResult.from_json(from_json_bytes(gzip.decompress(data)))
