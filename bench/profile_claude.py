"""The Claude path drained in this process against a rate-limited FakeAnthropic (no cluster).

    .venv/bin/python bench/profile_claude.py                      # N=16, L=0.5 s, 600/min, 5 s
    .venv/bin/python bench/profile_claude.py --burst 1 --variant paced-governor
    .venv/bin/python bench/profile_claude.py -n 64 --latency 2 --rpm 100000 --cpu-profile 30
    .venv/bin/python bench/profile_claude.py -n 64 --latency 2 --rpm 100000 --tracemalloc 15

Same measure as `bench/run.py --only claude` (steady = least-squares slope of the completions
between 20% and 80%, against min(N / L, R / 60); 429s among the batch's requests), but in one
process, so that an experiment can replace a piece of the app here. The peak RSS (VmHWM) of
this process and its children is printed with the figures. `--cpu-profile K` prints the K
functions of the drain's threads with the most CPU time (cProfile on each thread's CPU clock,
so the seconds a thread waits on the fake do not count); `--tracemalloc K` prints the K source
lines holding the most Python memory half-way through the batch (every document in flight),
and the peak that tracemalloc saw. Both slow the drain. The variant is an experiment that says
how much a suspected cost weighs; it is not a fix:

- paced-governor: `RateGovernor` keeps a client-side bucket from the last answer's
  `anthropic-ratelimit-requests-remaining` and `-limit` (refilled at limit / 60 a second) and
  lets a request go whenever the bucket holds one, instead of pausing everyone until the
  `-reset` time (when the provider's bucket is full again) once `remaining` is low.
"""

from __future__ import annotations

import argparse
import cProfile
import itertools
import os
import pstats
import shutil
import sys
import tempfile
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.benchmarks.claude import MESSAGES_PATH, window_rates
from bench.harness import Bench, base_env, create_batch, database, setup_django
from bench.inputs import invoices
from bench.measurement import seconds, tree_hwm_kb


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--postgres-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("-n", "--concurrency", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--rpm", type=int, default=600)
    parser.add_argument("--burst", type=float, default=5.0, help="seconds of the limit")
    parser.add_argument("--documents", type=int, default=250)
    parser.add_argument("--variant", action="append", default=[], choices=["paced-governor"])
    parser.add_argument("--cpu-profile", type=int, metavar="K", help="top K functions by CPU")
    parser.add_argument("--tracemalloc", type=int, metavar="K", help="top K lines by memory")
    args = parser.parse_args()
    from tests.support.fake_anthropic import FakeAnthropic

    tmp = Path(tempfile.mkdtemp(prefix="sheaf-profile-"))
    fake = FakeAnthropic(latency=args.latency).start()
    try:
        with database(args.database, tmp, args.postgres_url) as (url, description):
            env = base_env(tmp, url)
            env.update(
                SHEAF_CONCURRENCY=str(args.concurrency),
                SHEAF_RETRY_BASE_SECONDS="1",
                SHEAF_EXTRACTION_ENGINE="anthropic",
                ANTHROPIC_API_KEY="any",
                ANTHROPIC_BASE_URL=fake.base_url,
            )
            bench = Bench(args=args, tmp=tmp, env=env, database=description)
            setup_django(bench)
            try:
                report(bench, args, fake)
            finally:
                from django.db import connections

                connections.close_all()
    finally:
        fake.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def report(bench: Bench, args: argparse.Namespace, fake) -> None:
    from batches import tasks
    from documents.models import Document
    from extraction.claude import governor

    if "paced-governor" in args.variant:
        governor.RateGovernor = paced_governor(governor)
        governor._governors.clear()
    warm = create_batch(bench, invoices(1), engine="anthropic", name="warm-up")
    tasks.drain(budget_seconds=10)
    assert Document.objects.filter(batch=warm, status="completed").exists()
    fake.rate_limit(requests_per_minute=args.rpm, burst_seconds=args.burst)
    before = len(fake.requests)
    batch = create_batch(bench, invoices(args.documents), engine="anthropic", name="profile")
    deadline = time.monotonic() + 600
    open_ = Document.objects.filter(batch=batch, status__in=["queued", "processing"])
    expected = args.documents / min(args.concurrency / args.latency, args.rpm / 60)
    with cpu_profile(args.cpu_profile), traced(args.tracemalloc, after=expected / 2):
        while open_.exists() and time.monotonic() < deadline:
            tasks.drain(budget_seconds=60)
    rows = list(
        Document.objects.filter(batch=batch).values_list("status", "completed_at", "attempts")
    )
    done = seconds([stamp for status, stamp, _ in rows if status == "completed"])
    fit, ends = window_rates(done)
    calls = [r for r in fake.requests[before:] if r.path == MESSAGES_PATH]
    statuses = Counter(r.status for r in calls)
    middle = (calls[0].at + calls[-1].at) / 2
    late = Counter(r.status for r in calls if r.at >= middle)
    bound = min(args.concurrency / args.latency, args.rpm / 60)
    variant = ", ".join(args.variant) or "as is"
    print(
        f"\n{bench.database}, N={args.concurrency}, L={args.latency:g} s, "
        f"R={args.rpm}/min, B={args.burst:g} s, {variant}:"
    )
    print(f"  {len(done)} of {args.documents} documents completed")
    print(f"  steady {fit:.1f} docs/s (ends {ends:.1f}) of {bound:.1f} ({fit / bound:.1%})")
    print(
        f"  requests {dict(sorted(statuses.items()))}, 429 share {statuses[429] / len(calls):.1%}"
        f", after settling {late[429] / max(sum(late.values()), 1):.1%}"
    )
    pause = max(b.at - a.at for a, b in itertools.pairwise(calls))
    print(f"  longest pause between requests {pause:.1f} s")
    print(f"  documents by attempts {dict(sorted(Counter(a for _, _, a in rows).items()))}")
    print(
        f"  peak RSS (VmHWM) of this process and its children "
        f"{tree_hwm_kb(os.getpid()) / 1024:.0f} MB"
    )


@contextmanager
def cpu_profile(top: int | None) -> Iterator[None]:
    """cProfile around every drain thread's work, on the thread's own CPU clock."""
    if not top:
        yield
        return
    from batches.pipeline import runner

    profiles: list[cProfile.Profile] = []
    work = runner.Run._work

    def profiled(run: runner.Run) -> None:
        profile = cProfile.Profile(time.thread_time)
        profile.enable()
        try:
            work(run)
        finally:
            profile.disable()
            profiles.append(profile)

    runner.Run._work = profiled
    try:
        yield
    finally:
        runner.Run._work = work
    stats = pstats.Stats(*profiles)
    print(f"\nCPU of the drain threads: {stats.total_tt:.1f} s")
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


@contextmanager
def traced(top: int | None, *, after: float) -> Iterator[None]:
    """tracemalloc over the drain; the top lines `after` seconds in, and the peak."""
    if not top:
        yield
        return
    snapshots: list[tracemalloc.Snapshot] = []
    tracemalloc.start(10)
    timer = threading.Timer(after, lambda: snapshots.append(tracemalloc.take_snapshot()))
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    print(f"\ntracemalloc: peak {peak / 2**20:.1f} MB, at the end {current / 2**20:.1f} MB")
    for snapshot in snapshots:
        lines = snapshot.statistics("lineno")
        total = sum(stat.size for stat in lines)
        print(f"{after:.0f} s in: {total / 2**20:.1f} MB traced; the top {top} lines:")
        for stat in lines[:top]:
            print(f"  {stat}")
        print(f"by file, the top {top}:")
        for stat in snapshot.statistics("filename")[:top]:
            print(f"  {stat}")


def paced_governor(governor):
    class PacedGovernor(governor.RateGovernor):
        rate: float | None = None

        def acquire(self) -> None:
            with self._cond:
                while True:
                    now = time.monotonic()
                    if now < self.paused_until:
                        self._cond.wait(self.paused_until - now)
                        continue
                    if self.in_flight >= int(self.allowed):
                        self._cond.wait(1.0)
                        continue
                    if self.rate:
                        level = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
                        if level < 1:
                            self._cond.wait((1 - level) / self.rate)
                            continue
                        self.tokens, self.stamp = level - 1, now
                    self.in_flight += 1
                    return

        def _respect(self, headers, now: float) -> None:
            remaining = governor._header_int(headers, "anthropic-ratelimit-requests-remaining")
            limit = governor._header_int(headers, "anthropic-ratelimit-requests-limit")
            if remaining is None or not limit:
                return
            self.rate, self.capacity = limit / 60.0, float(limit)
            self.tokens, self.stamp = float(remaining), now

    return PacedGovernor


if __name__ == "__main__":
    sys.exit(main())
