"""The machine's live processes, read from /proc, for tests that watch workers and children."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Process:
    pid: int
    parent: int
    group: int
    cmdline: bytes


def live_processes() -> Iterator[Process]:
    """Every process that is running now (zombies left out)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        state, parent, group = stat.rpartition(")")[2].split()[:3]
        if state != "Z":
            yield Process(int(entry.name), int(parent), int(group), cmdline)
