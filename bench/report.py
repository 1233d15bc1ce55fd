"""The results page in Markdown: the machine and code measured, the wording the benchmarks'
sections share, and the writer that replaces one database's block of BENCHMARKS.md."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

from batchsite.release import digest, source_files
from bench.harness import Bench
from bench.processes import REPO


def verdict(passed: bool) -> str:
    return "pass" if passed else "**FAIL**"


def mb(kb: int) -> str:
    return f"{kb / 1024:.0f} MB"


def counts(counter: Counter[Any]) -> str:
    """`key: count` pairs in key order, such as HTTP answers by status."""
    return ", ".join(f"{key}: {n}" for key, n in sorted(counter.items(), key=str))


def workers(bench: Bench) -> str:
    count = bench.args.workers
    return f"{count} worker process" + ("es" if count > 1 else "")


def server_note(bench: Bench) -> str:
    if bench.args.database != "postgres":
        return ""
    return (
        " On PostgreSQL the database server's processes are not in the cluster's tree: their "
        "CPU is counted under other processes."
    )


def code_version(label: str | None) -> str:
    """The commit measured (and whether the tree had changes), plus a digest of the app's Python
    sources, so a figure can be tied to the code it came from."""
    sources = digest(source_files(suffixes=(".py",)))
    if label is None:
        git = shutil.which("git")
        describe = subprocess.run(  # noqa: S603
            [git or "git", "-C", str(REPO), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
        )
        label = describe.stdout.strip() or "not a git checkout"
    return f"{label}; app sources sha256 {sources[:12]}"


def machine(database: str, code: str, command: str) -> list[tuple[str, str]]:
    from importlib.metadata import version

    import django

    cpu = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    free = shutil.which("free")
    try:
        out = subprocess.run([free or "free", "-h"], capture_output=True, text=True, check=True)  # noqa: S603
        mem = out.stdout.splitlines()[1].split()[1]
    except (OSError, subprocess.CalledProcessError, IndexError):
        mem = "unknown"
    nproc = str(len(os.sched_getaffinity(0)))
    return [
        ("command", f"`{command}`"),
        ("code", code),
        ("date", dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")),
        ("CPUs (`nproc`)", nproc),
        ("CPU model", cpu),
        ("memory (`free -h` total)", mem),
        ("OS", platform.platform()),
        ("Python", platform.python_version()),
        ("Django", django.get_version()),
        ("django-q2", version("django-q2")),
        ("database", database),
    ]


def _machine_table(bench: Bench, elapsed: float, *, leave_out: frozenset[str]) -> list[str]:
    code = code_version(bench.args.code_label)
    lines = ["| | |", "|---|---|"]
    lines += [
        f"| {key} | {value} |"
        for key, value in machine(bench.database, code, bench.args.command)
        if key not in leave_out
    ]
    lines += [
        f"| load average (1 min) at start / end | {bench.load[0]:.2f} / {os.getloadavg()[0]:.2f} |",
        f"| bench wall time | {elapsed:.0f} s |",
        "",
    ]
    return lines


def results_page(bench: Bench, sections: list[str], elapsed: float, title: str = "Results") -> str:
    """One database's results: the machine and code measured, then the benchmarks' sections."""
    lines = [f"## {title} on {bench.database}", ""]
    lines += _machine_table(bench, elapsed, leave_out=frozenset())
    return "\n".join(lines + sections)


def standalone_page(bench: Bench, title: str, sections: list[str], elapsed: float) -> str:
    """A benchmark that needs no database: its title, the machine and code, its sections."""
    lines = [f"## {title}", ""]
    lines += _machine_table(bench, elapsed, leave_out=frozenset({"database", "django-q2"}))
    return "\n".join(lines + sections)


def write_report(path: Path, results: str, block: str) -> None:
    """Replace a results block in `path` (a database's, or a standalone benchmark's), keeping
    everything written around it."""
    start, end = f"<!-- bench:{block}:start -->", f"<!-- bench:{block}:end -->"
    written = f"{start}\n{results}\n{end}"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if start in text and end in text:
        head, _, rest = text.partition(start)
        _, _, tail = rest.partition(end)
        text = head + written + tail
    else:
        text = text.rstrip() + "\n\n" + written + "\n"
    path.write_text(text)
