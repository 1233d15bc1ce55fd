"""Where the shared corpus of real PDFs is (`../shared/corpus/`, not in this repository).

The corpus is an extra: tests marked `corpus` read it and are skipped when it is not found, and
nothing reads it while tests are collected.
"""

from __future__ import annotations

import os
import subprocess
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MISSING = (
    "the shared real-world corpus is not beside this checkout; set SHEAF_CORPUS to its folder "
    "(shared/corpus) to run the corpus tests"
)


def _origin() -> Path | None:
    """The checkout this one was cloned from, when that is a folder on this machine."""
    try:
        url = subprocess.run(  # noqa: S603 (a fixed git command)
            ["git", "-C", str(REPO), "config", "--get", "remote.origin.url"],  # noqa: S607
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    path = Path(url.removeprefix("file://"))
    return path if url and path.is_absolute() and path.is_dir() else None


def find_corpus() -> Path | None:
    """SHEAF_CORPUS when it is set (None when that folder does not exist: an explicit setting is
    never second-guessed); else `shared/corpus` beside the checkout or one of its parents; else
    beside the checkout it was cloned from (a fresh clone in a temporary folder finds the shared
    corpus of the project it came from); else None."""
    if os.environ.get("SHEAF_CORPUS"):
        chosen = Path(os.environ["SHEAF_CORPUS"])
        return chosen if chosen.is_dir() else None
    roots = [REPO]
    origin = _origin()
    if origin is not None:
        roots.append(origin)
    for root in roots:
        for parent in root.parents:
            if (parent / "shared" / "corpus").is_dir():
                return parent / "shared" / "corpus"
    return None


@cache
def corpus() -> Path | None:
    """The corpus folder for this test session (looked up once)."""
    return find_corpus()


def corpus_file(relative: str) -> Path:
    """A file of the corpus; only tests marked `corpus` call this, so the corpus is there."""
    root = corpus()
    if root is None:
        raise FileNotFoundError(MISSING)
    path = root / relative
    if not path.is_file():
        raise FileNotFoundError(f"corpus file {path} is missing")
    return path
