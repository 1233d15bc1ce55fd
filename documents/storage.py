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


def _stored_name(file: FieldFile) -> str:
    if not file.name:  # callers check `document.file` first
        raise FileNotFoundError("The document has no stored file.")
    return file.name


@contextmanager
def local_path(file: FieldFile) -> Iterator[str]:
    """A filesystem path to the stored file, valid inside the `with` block."""
    name = _stored_name(file)
    try:
        path = file.storage.path(name)
    except NotImplementedError:
        path = None
    if path is not None:
        yield path
        return
    with (
        tempfile.NamedTemporaryFile(suffix=Path(name).suffix) as copy,
        file.storage.open(name, "rb") as source,
    ):
        shutil.copyfileobj(source, copy)
        copy.flush()
        yield copy.name


def read_bytes(file: FieldFile) -> bytes:
    with file.storage.open(_stored_name(file), "rb") as source:
        content: bytes = source.read()
    return content
