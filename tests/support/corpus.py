"""Where the shared corpus of real PDFs is (`../shared/corpus/`, not in this repository)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


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


def find_corpus() -> Path:
    """SHEAF_CORPUS; else `shared/corpus` beside the checkout or one of its parents; else beside
    the checkout it was cloned from (a fresh clone in a temporary folder finds the shared corpus
    of the project it came from). The first candidate when none exists, for error messages."""
    if os.environ.get("SHEAF_CORPUS"):
        return Path(os.environ["SHEAF_CORPUS"])
    roots = [REPO]
    origin = _origin()
    if origin is not None:
        roots.append(origin)
    for root in roots:
        for parent in root.parents:
            if (parent / "shared" / "corpus").is_dir():
                return parent / "shared" / "corpus"
    return REPO.parent / "shared" / "corpus"
