"""Where a drain's time goes: the drain run in this process, with timers around the services.

    .venv/bin/python bench/profile_drain.py                       # serial, `local` engine
    .venv/bin/python bench/profile_drain.py -n 64 --latency 0.5   # 64 threads, sleep engine
    .venv/bin/python bench/profile_drain.py -n 64 --latency 0.5 --variant no-refresh

No cluster: this process is the worker, on a fresh database in a temporary directory (or a
PostgreSQL database it creates and drops). Variants change the app in this process only, as
experiments that say how much a suspected cost weighs; they are not fixes:

- no-refresh: `pipeline.batch_refresh` does nothing (batch counters are not kept, batches never
  finish), to weigh the per-document batch bookkeeping in the completion transaction.
- cache-group-of: `extraction.local.matching._group_of` memoised, to weigh the local engine's fuzzy
  label matching, which depends only on the field names.
"""

from __future__ import annotations

import argparse
import functools
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.benchmarks.throughput import steady_rate
from bench.harness import Bench, base_env, create_batch, database, setup_django
from bench.inputs import invoices
from bench.measurement import seconds

TIMED = [
    "document_claim",
    "_lease_first",
    "document_process",
    "document_complete",
    "_settle_batch",
    "batch_refresh",
]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--postgres-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("-n", "--concurrency", type=int, default=1)
    parser.add_argument("--latency", type=float, help="sleep engine latency; default: local")
    parser.add_argument("--documents", type=int, help="default: 300, or 10 rounds of N")
    parser.add_argument(
        "--variant", action="append", default=[], choices=["no-refresh", "cache-group-of"]
    )
    args = parser.parse_args()
    documents = args.documents or (300 if args.latency is None else 10 * args.concurrency)
    tmp = Path(tempfile.mkdtemp(prefix="sheaf-profile-"))
    try:
        with database(args.database, tmp, args.postgres_url) as (url, description):
            env = base_env(tmp, url)
            env["SHEAF_CONCURRENCY"] = str(args.concurrency)
            env["SHEAF_BENCH_LATENCY"] = str(args.latency or 0)
            bench = Bench(args=args, tmp=tmp, env=env, database=description)
            setup_django(bench)
            try:
                report(bench, args, documents)
            finally:
                from django.db import connections

                connections.close_all()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def report(bench: Bench, args: argparse.Namespace, documents: int) -> None:
    import batches.pipeline
    from batches import tasks
    from batches.pipeline import claims, finishing, processing, runner
    from documents.models import Document
    from extraction.local import engine as local
    from extraction.local import matching

    engine = "local" if args.latency is None else "sleep"
    tasks.drain()  # nothing to do yet: warms the imports
    warm = create_batch(bench, invoices(3), engine=engine, name="warm-up")
    tasks.drain()
    assert Document.objects.filter(batch=warm, status="completed").count() == 3
    times: dict[str, list[float]] = defaultdict(list)
    # A function is looked up in each module that imported it: wrap it everywhere it is bound.
    modules = [batches.pipeline, claims, finishing, processing, runner]
    for name in TIMED:
        original = next(getattr(m, name) for m in modules if hasattr(m, name))
        timed = _timed(original, times[name])
        for module in modules:
            if getattr(module, name, None) is original:
                setattr(module, name, timed)
    if "no-refresh" in args.variant:
        finishing.batch_refresh = lambda **kwargs: None
    if "cache-group-of" in args.variant:
        matching._group_of = functools.lru_cache(maxsize=1024)(matching._group_of)
    original_extract = local.LocalEngine.extract
    local.LocalEngine.extract = _timed(original_extract, times["local extract"])
    batch = create_batch(bench, invoices(documents), engine=engine, name="profile")
    started, cpu = time.perf_counter(), time.process_time()
    tasks.drain()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    rows = list(Document.objects.filter(batch=batch).values_list("completed_at", flat=True))
    completed = seconds([stamp for stamp in rows if stamp is not None])
    variant = ", ".join(args.variant) or "as is"
    print(f"\n{bench.database}, N={args.concurrency}, {engine} engine, {variant}:")
    print(
        f"  {len(completed)} of {documents} documents in {elapsed:.2f} s, "
        f"{cpu / documents * 1000:.2f} ms of this process's CPU a document "
        f"({cpu / elapsed:.2f} CPUs)"
    )
    if args.latency is not None and len(completed) >= 3 * args.concurrency:
        rate = steady_rate(completed, args.concurrency)
        bound = args.concurrency / args.latency
        print(f"  steady {rate:.1f} docs/s of {bound:.1f} ({rate / bound:.1%})")
    else:
        print(f"  {elapsed / documents * 1000:.2f} ms per document")
    for name, values in times.items():
        if values:
            values.sort()
            print(
                f"  {name:18} n {len(values):5}  mean {statistics.fmean(values) * 1000:8.2f} ms   "
                f"p50 {values[len(values) // 2] * 1000:8.2f}   "
                f"p90 {values[int(len(values) * 0.9)] * 1000:8.2f}   "
                f"max {values[-1] * 1000:8.2f}"
            )


def _timed(function, into: list[float]):
    @functools.wraps(function)
    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            into.append(time.perf_counter() - started)

    return timed


if __name__ == "__main__":
    sys.exit(main())
