"""The code that serves: a digest of the app's sources, the same in every process of one deploy
and different after any change to them (Python, templates, static files).

What a page or an API answer shows depends on the code as much as on the data: an ETag made of
the data alone would answer a poll after a deploy with 304 and keep the old page's HTML.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Not part of what is served.
_NOT_SERVED = {"bench", "tests", "examples"}


def source_files(*, suffixes: tuple[str, ...] = ()) -> list[Path]:
    """The app's packages' files and the project's templates and static files, in a stable
    order; only those ending in one of `suffixes` when given."""
    roots = [
        top
        for top in sorted(REPO.iterdir())
        if top.name not in _NOT_SERVED
        and ((top / "__init__.py").is_file() or top.name in {"templates", "static"})
    ]
    return [
        path
        for root in roots
        for path in sorted(root.rglob("*"))
        if path.is_file()
        and "__pycache__" not in path.parts
        and (not suffixes or path.name.endswith(suffixes))
    ]


def digest(paths: list[Path]) -> str:
    """sha256 over each file's path (from the checkout's root) and bytes. A file that cannot be
    read (gone in the middle of a deploy, no permission) counts by its name alone: a poll must
    not fail for it."""
    summary = hashlib.sha256()
    for path in paths:
        try:
            content = path.read_bytes()
        except OSError:
            content = b"\0unreadable"
        summary.update(str(path.relative_to(REPO)).encode() + b"\0" + content)
    return summary.hexdigest()


@cache
def release() -> str:
    """This deploy's digest, computed once per process (a few milliseconds)."""
    return digest(source_files())
