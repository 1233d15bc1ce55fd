"""CPU and memory of process trees, read from /proc, and the statistics the benchmarks share."""

from __future__ import annotations

import datetime as dt
import math
import os
import statistics
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Self

SAMPLE_SECONDS = 0.1
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = defaultdict(list)
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        children[ppid].append(int(entry.name))
    return children


def process_tree(root: int, children: dict[int, list[int]]) -> list[int]:
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


def _kb_field(path: str, name: str) -> int:
    try:
        with open(path) as handle:
            for line in handle:
                if line.startswith(name):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def tree_hwm_kb(root: int) -> int:
    """The processes' own peaks (VmHWM) under the root, summed: catches a spike between samples."""
    return sum(
        _kb_field(f"/proc/{pid}/status", "VmHWM:") for pid in process_tree(root, _children_map())
    )


def tree_cpu_seconds(roots: list[int]) -> float:
    """User + system CPU of every process under the roots (and of their reaped children)."""
    children = _children_map()
    ticks = 0
    for root in roots:
        for pid in process_tree(root, children):
            try:
                with open(f"/proc/{pid}/stat") as handle:
                    fields = handle.read().rpartition(")")[2].split()
            except OSError:
                continue
            ticks += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return ticks / CLOCK_TICKS


def machine_busy_seconds() -> float:
    with open("/proc/stat") as handle:
        user, nice, system, _idle, _iowait, irq, softirq, steal = (
            int(value) for value in handle.readline().split()[1:9]
        )
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


class CpuMeter:
    """CPU used by the measured process trees over a block, and by everything else on the
    machine (other people's work on a shared machine), in average CPUs."""

    def __init__(self, roots: list[int]) -> None:
        self.roots = roots
        self.seconds = 0.0
        self.others = 0.0

    def __enter__(self) -> CpuMeter:
        self._wall = time.monotonic()
        self._tree = tree_cpu_seconds(self.roots)
        self._machine = machine_busy_seconds()
        own = os.times()
        self._own = own.user + own.system
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.monotonic() - self._wall
        self.seconds = tree_cpu_seconds(self.roots) - self._tree
        own = os.times()
        mine = own.user + own.system - self._own
        busy = machine_busy_seconds() - self._machine
        self.others = max(busy - self.seconds - mine, 0.0) / wall if wall > 0 else 0.0


@dataclass
class MemoryPeak:
    rss_kb: int = 0
    pss_kb: int = 0
    processes: int = 0
    by_tree_kb: dict[str, int] = field(default_factory=dict)
    largest_kb: int = 0  # the largest single process at the peak
    samples: int = 0


@dataclass
class TreeUsage:
    rss_kb: int = 0
    pss_kb: int = 0
    processes: int = 0
    largest_kb: int = 0


def tree_usage(root: int, children: dict[int, list[int]] | None = None) -> TreeUsage:
    """The summed VmRSS and PSS of every process under the root, now."""
    usage = TreeUsage()
    for pid in process_tree(root, _children_map() if children is None else children):
        kb = _kb_field(f"/proc/{pid}/status", "VmRSS:")
        usage.rss_kb += kb
        usage.largest_kb = max(usage.largest_kb, kb)
        usage.pss_kb += _kb_field(f"/proc/{pid}/smaps_rollup", "Pss:")
        usage.processes += 1 if kb else 0
    return usage


class BackgroundLoop(threading.Thread):
    """A daemon thread whose loop runs from the start of a `with` block to its end: `run` returns
    once `_halt` is set."""

    def __init__(self, name: str) -> None:
        super().__init__(name=name, daemon=True)
        # Not `_stop`: threading.Thread has a method of that name, which join() calls.
        self._halt = threading.Event()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._halt.set()


class MemorySampler(BackgroundLoop):
    """Every SAMPLE_SECONDS: the summed VmRSS (and PSS) of every process under the roots."""

    def __init__(self) -> None:
        super().__init__("bench-memory")
        self._lock = threading.Lock()
        self._roots: dict[str, int] = {}
        self._peak = MemoryPeak()

    def watch(self, roots: dict[str, int]) -> None:
        with self._lock:
            self._roots = dict(roots)
            self._peak = MemoryPeak()

    def peak(self) -> MemoryPeak:
        with self._lock:
            return self._peak

    def run(self) -> None:
        while not self._halt.wait(SAMPLE_SECONDS):
            with self._lock:
                roots = dict(self._roots)
            if not roots:
                continue
            children = _children_map()
            rss = pss = count = largest = 0
            by_tree: dict[str, int] = {}
            for name, root in roots.items():
                usage = tree_usage(root, children)
                by_tree[name] = usage.rss_kb
                rss += usage.rss_kb
                pss += usage.pss_kb
                count += usage.processes
                largest = max(largest, usage.largest_kb)
            with self._lock:
                if roots != self._roots:
                    continue
                peak = self._peak
                peak.samples += 1
                if rss > peak.rss_kb:
                    peak.rss_kb, peak.processes, peak.by_tree_kb = rss, count, by_tree
                    peak.largest_kb = largest
                peak.pss_kb = max(peak.pss_kb, pss)


def seconds(stamps: list[dt.datetime]) -> list[float]:
    return sorted(stamp.timestamp() for stamp in stamps)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), linear between the closest ranks."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median_of(runs: Sequence[Any], attr: str) -> float:
    """The median of one figure over the runs of a case."""
    return statistics.median(getattr(run, attr) for run in runs)
