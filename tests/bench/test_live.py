"""The live benchmark's verdicts: fast is not enough when a document's event never arrived, and
the memory a connection adds is judged at its peak, not only at the end of the hold. Its
measurements start daphne and a cluster (`bench/run.py --only live`), which no test does."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from bench.benchmarks import live
from bench.harness import Bench
from bench.measurement import MemoryPeak, TreeUsage


def _bench(tmp_path: Path) -> Bench:
    args = argparse.Namespace(
        live_concurrency=50, live_latency=0.5, live_documents=3, live_connections=2, live_hold=1.0
    )
    return Bench(args=args, tmp=tmp_path, env={}, database="SQLite")


def _row(lines: list[str], case: str) -> list[str]:
    """The cells of the case's rows, one list per table."""
    return [line for line in lines if line.startswith(f"| {case} |")]


def _memory(*, idle_mb: int, held_mb: int, peak_mb: int, opened: int = 2) -> live.MemoryRun:
    return live.MemoryRun(
        connections=2,
        opened=opened,
        refused=Counter(),
        heartbeats=2,
        idle=TreeUsage(rss_kb=idle_mb * 1024, pss_kb=idle_mb * 1024),
        held=TreeUsage(rss_kb=held_mb * 1024, pss_kb=held_mb * 1024),
        peak=MemoryPeak(rss_kb=peak_mb * 1024),
    )


def test_a_missed_or_late_document_fails_the_delivery_target(tmp_path: Path) -> None:
    result = live.LiveResult(
        cases=[
            live.LiveCase("on time", latency=live.LatencyRun(3, 3, 3, [0.1, 0.2, 0.3], 100.0)),
            live.LiveCase("one missed", latency=live.LatencyRun(3, 2, 2, [0.1, 0.2], 100.0)),
            live.LiveCase("late", latency=live.LatencyRun(3, 3, 3, [0.1, 0.2, 2.5], 100.0)),
        ]
    )

    lines = live.report(_bench(tmp_path), result)

    assert _row(lines, "on time")[0].endswith("| pass |")
    assert "| 200 ms | 290 ms | 300 ms |" in _row(lines, "on time")[0]
    assert _row(lines, "one missed")[0].endswith("| **FAIL** |")
    assert _row(lines, "late")[0].endswith("| **FAIL** |")


def test_memory_is_judged_at_the_peak_and_every_connection_must_stay_open(tmp_path: Path) -> None:
    result = live.LiveResult(
        cases=[
            live.LiveCase("small", memory=_memory(idle_mb=100, held_mb=150, peak_mb=160)),
            live.LiveCase("spike", memory=_memory(idle_mb=100, held_mb=150, peak_mb=400)),
            live.LiveCase(
                "dropped", memory=_memory(idle_mb=100, held_mb=110, peak_mb=110, opened=1)
            ),
        ],
        skipped=["Redis: nothing answered at redis://127.0.0.1:6379/14"],
    )

    lines = live.report(_bench(tmp_path), result)

    assert _row(lines, "small")[0].endswith("| pass |")
    assert "| 50 MB |" in _row(lines, "small")[0]
    assert _row(lines, "spike")[0].endswith("| **FAIL** |")
    assert _row(lines, "dropped")[0].endswith("| **FAIL** |")
    assert "Left out: Redis: nothing answered" in "\n".join(lines)
