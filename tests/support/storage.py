"""A storage like S3's for tests: files live elsewhere (here, in memory) and have no local path."""

from __future__ import annotations

import os

from django.core.files.storage import InMemoryStorage


class NoLocalPathStorage(InMemoryStorage):
    def path(self, name: str) -> str:
        raise NotImplementedError("This backend doesn't support absolute paths.")

    def _relative_path(self, name: str) -> str:
        # InMemoryStorage finds its nodes through `path()`; keep that working inside.
        return os.path.relpath(InMemoryStorage.path(self, name), self.location)
