"""Originals in whatever Django storage holds them (a local volume, or a remote backend).

Readers need a filesystem path (the PDF reader opens the file in a child process), so a storage
without one (S3 and the like) is copied to a temporary file for the length of the read.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.db.models.fields.files import FieldFile


@contextmanager
def local_path(file: FieldFile) -> Iterator[str]:
    """A filesystem path to the stored file, valid inside the `with` block."""
    try:
        path = file.storage.path(file.name)
    except NotImplementedError:
        path = None
    if path is not None:
        yield path
        return
    with (
        tempfile.NamedTemporaryFile(suffix=Path(file.name).suffix) as copy,
        file.storage.open(file.name, "rb") as source,
    ):
        shutil.copyfileobj(source, copy)
        copy.flush()
        yield copy.name


def read_bytes(file: FieldFile) -> bytes:
    with file.storage.open(file.name, "rb") as source:
        return source.read()
