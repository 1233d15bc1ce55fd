"""A copy of what a slow fixture left (database rows and stored files), taken by the first test
of a module that asks for it and loaded into each later test's own freshly flushed database, so
that the slow part runs once and no test sees what another one did."""

from __future__ import annotations

import shutil
from pathlib import Path

from django.core.management import call_command

# Rows the migrations make, which every flushed database has again.
MADE_BY_MIGRATIONS = ["contenttypes", "auth.permission", "sessions", "admin.logentry"]


class Snapshot:
    def __init__(self, folder: Path) -> None:
        self.rows = folder / "rows.json"
        self.media = folder / "media"

    def restore(self, media_root: Path) -> bool:
        """Load the copy into this test's database and media folder; False when there is none
        yet (the caller makes what it needs, then `take`s it)."""
        if not self.rows.exists():
            return False
        shutil.copytree(self.media, media_root, dirs_exist_ok=True)
        call_command("loaddata", str(self.rows), verbosity=0)
        return True

    def take(self, media_root: Path) -> None:
        shutil.copytree(media_root, self.media)
        call_command("dumpdata", exclude=MADE_BY_MIGRATIONS, output=str(self.rows), verbosity=0)
