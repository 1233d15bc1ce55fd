"""Sheaf's pipeline benchmarks, against real processes on a fresh database.

    make bench                          # SQLite in a temporary directory
    .venv/bin/python bench/run.py --database postgres
    .venv/bin/python bench/run.py --only overhead      # partial runs print only
    .venv/bin/python bench/run.py --only claude        # or upload, rss, http, poll, read

What is measured (targets from the pipeline and Claude engine issues):

1. Per-document overhead, offline engine. On a 1-worker cluster: K no-op django-q2 tasks
   (`async_task`), then K small TXT invoices in one batch processed by one drain with
   SHEAF_CONCURRENCY=1 and the `local` engine. Both figures are the steady interval between two
   completions (Task.stopped / Document.completed_at: (last - first) / (count - 1); for the
   tasks over the last save_limit ones, the only results django-q2 keeps); the target is
   document <= task + 3 ms.
2. Throughput with an engine that sleeps L seconds (bench.engines.SleepEngine) at N documents in
   flight (1 worker process, SHEAF_CONCURRENCY=N), `rounds` x N documents in one batch. Steady
   state leaves out the first and the last round: (M - 2N) documents between the N-th and the
   (M - N)-th completion. Target >= 0.95 x N / L.
3. Peak memory of web + workers: `gunicorn batchsite.wsgi --workers 1` (`--web runserver` for
   Django's server), polled like a browser on the batch page, and the cluster, during every
   throughput case; the RSS (VmRSS) of every process of both process trees is sampled and
   summed. Target < 512 MB at N = 64. PSS (shared pages divided between the processes sharing
   them) is shown beside it.
4. The Claude engine against `tests.support.fake_anthropic.FakeAnthropic`, run in this process,
   answering after L seconds and limited to R requests per minute (a bucket of B seconds of the
   limit): SHEAF_CONCURRENCY=N, one batch of M distinct TXT invoices. Steady throughput (20% to
   80% of the completions) against min(N / L, R / 60), target >= 0.95 x that, and the share of
   requests answered 429, overall and in the second half of the run (after the adaptive
   concurrency has settled); the web server runs and is polled as in 3, and the peak memory of
   web + workers is reported with the target of 3.
5. `upload`: a 50-file batch of corpus PDFs posted to gunicorn through `POST /api/v1/batches/`
   (Bearer key) and through the dashboard's upload form (session, CSRF), until the answer is
   read (the batch and its documents are committed by then); median and p95 over the runs.
6. `rss`: peak RSS (and PSS) of web + workers while one batch of 50, then of 1,000 corpus PDFs
   is processed on the `local` engine (fresh processes per size, the batch page polled), and
   then while the finished batch's page, exports and API batch are fetched. Target: the
   1,000-document peak <= 1.1 x the 50-document peak.
7. `http`: wrk (Debian package `wrk`; `bench/wrk_report.lua` prints its percentiles) against
   `gunicorn --workers 4` on `/dashboard/`, the batch page, its progress partial (session
   cookie) and `GET /api/v1/batches/<id>/` (Bearer key), while a 100-document batch runs on the
   sleep engine. req/s, p50/p95/p99; target p95 <= 50 ms at >= 500 req/s. Queries per request
   and the view's own time are measured afterwards in this process.
8. `read` (only with --only read; no database, cluster or server): pages/s of Sheaf's PDF reader
   (`documents.readers.read_document`: text and word boxes, the sandboxed child pool, warm)
   against raw pypdfium2 producing the same output for the same pages, on seeded sample invoices
   and on the corpus PDFs that both read. Target: Sheaf >= 0.8 x raw. It writes its own block of
   BENCHMARKS.md.
9. `quality` (only with --only quality; no database, cluster or server): the offline engine on
   a development set (`python -m samples.devset`, written here unless --devset names one):
   per-field exact-match rates per kind (born-digital, scan, e-invoice), language, format and
   layout, line-item measures, and documents/s; OCR pages/s of Sheaf's sandboxed OCR against
   tesserocr on the same page images, and its word recall against the born-digital twins. It
   writes its own block of BENCHMARKS.md.

10. `poll`: gunicorn's CPU per poll answered 304 (the progress partial with a session cookie,
   `GET /api/v1/batches/<id>/` with a Bearer key, each with `If-None-Match`) against a bare
   view behind the same authentication that answers `ok` (bench/urls.py), interleaved in one
   run; the same reads drawn in full beside them. Target: a 304 <= 1.5 x the bare view.
   `--only poll` writes its own block of BENCHMARKS.md per database, and so does `--only claude`
   (section 4 alone, with the cases --claude names).
11. `live` (only with --only live): live events over `/ws/events/` on daphne, without a channel
   layer (the log tail) and with Redis (--live-redis-url, for daphne and the cluster), side by
   side: delivery latency p50/p95/max of `document.completed` (client read time minus the
   event's `completed_at`) for a 1,000-document batch at ~100 documents/s (sleep engine,
   SHEAF_CONCURRENCY=50, L=0.5 s), every document received once; and daphne's RSS/PSS idle
   against 1,000 idle connections held 20 s. Targets: p95 <= 1 s; <= 200 MB added. It writes
   its own block of BENCHMARKS.md per database.

A full run replaces its database's block of results in BENCHMARKS.md and keeps the rest of
the file (the analysis written around it).

Every process the bench starts runs in its own session and is killed with its group on exit,
error or Ctrl-C. Nothing outside the temporary directory (and, with --database postgres, a
database it creates and drops) is touched.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shlex
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Run as a script, this file's folder is on sys.path but the checkout it belongs to is not.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.benchmarks import BENCHMARKS, NAMED_ONLY, STANDALONE
from bench.benchmarks.claude import CLAUDE_CASES
from bench.benchmarks.throughput import SHORT_CASE_SECONDS
from bench.harness import Bench, base_env, database, setup_django
from bench.processes import REPO, log, stop_all
from bench.report import results_page, standalone_page, write_report
from tests.support.corpus import find_corpus

# Pipeline benchmarks that, run alone with --only, write their own block per database (titled).
OWN_BLOCKS = {
    "poll": "A 304 poll against a bare view",
    "claude": "Claude engine against the fake Anthropic API",
    "live": "Live events over WebSocket",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--postgres-url",
        default=(
            os.environ.get("DATABASE_URL", "").startswith("postgres") and os.environ["DATABASE_URL"]
        )
        or "postgres://postgres@127.0.0.1:5432/postgres",
        help="server to create the bench database on (its own database is left alone)",
    )
    parser.add_argument(
        "--only",
        choices=[*BENCHMARKS, *STANDALONE],
        help="run one benchmark; a pipeline one prints only (claude, poll, live, quality and read "
        "write their own block)",
    )
    parser.add_argument("-k", "--k", type=int, default=300, help="tasks and documents per run")
    parser.add_argument("--repeats", type=int, default=5, help="overhead runs (median reported)")
    parser.add_argument("--concurrency", type=_numbers(int), default=[8, 32, 64])
    parser.add_argument("--latency", type=_numbers(float), default=[0.5, 2.0])
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes in the throughput cases"
    )
    parser.add_argument(
        "--web",
        choices=["gunicorn", "daphne", "runserver"],
        default="gunicorn" if importlib.util.find_spec("gunicorn") else "runserver",
        help="web server during the throughput cases (default gunicorn when installed)",
    )
    parser.add_argument(
        "--web-workers", type=int, default=1, help="gunicorn worker processes (default 1)"
    )
    parser.add_argument(
        "--qcluster-arg",
        action="append",
        default=[],
        help="an extra argument for `manage.py qcluster --skip-checks` (the README's "
        "production command), for experiments",
    )
    parser.add_argument(
        "--short-repeats",
        type=int,
        default=3,
        help=f"runs of a throughput case under {SHORT_CASE_SECONDS:g} s of work (median)",
    )
    parser.add_argument("--rounds", type=int, default=5, help="minimum rounds per throughput case")
    parser.add_argument(
        "--claude",
        type=_claude_cases,
        default=_claude_cases(CLAUDE_CASES),
        help="Claude cases N:L:R[:B] (concurrency, fake latency in s, requests per minute, "
        "burst in seconds of the limit; default --claude-burst), comma-separated "
        f"(default {CLAUDE_CASES})",
    )
    parser.add_argument(
        "--claude-burst",
        type=float,
        default=5.0,
        help="the fake's rate-limit bucket holds this many seconds of the limit, for cases "
        "that do not say (default 5)",
    )
    parser.add_argument(
        "--claude-seconds",
        type=float,
        default=25.0,
        help="documents per Claude case: this many seconds of work at the bound (default 25)",
    )
    parser.add_argument(
        "--corpus",
        type=Path,
        default=find_corpus(),
        help="the shared PDF corpus (default SHEAF_CORPUS, else shared/corpus beside the "
        "checkout or a parent of it; without one, generated sample invoices)",
    )
    parser.add_argument("--upload-files", type=int, default=50, help="PDFs per uploaded batch")
    parser.add_argument("--upload-runs", type=int, default=10, help="timed uploads a path")
    parser.add_argument(
        "--rss-documents",
        type=_numbers(int),
        default=[50, 1000],
        help="batch sizes of the rss benchmark (the first and last are compared)",
    )
    parser.add_argument(
        "--rss-concurrency", type=int, default=8, help="SHEAF_CONCURRENCY in the rss benchmark"
    )
    parser.add_argument("--http-seconds", type=float, default=10.0, help="wrk run per endpoint")
    parser.add_argument(
        "--http-warmup-seconds",
        type=float,
        default=2.0,
        help="an unmeasured wrk run per endpoint first, so every gunicorn worker is warm",
    )
    parser.add_argument("--http-connections", type=int, default=8, help="wrk connections")
    parser.add_argument("--http-threads", type=int, default=2, help="wrk threads")
    parser.add_argument(
        "--http-web-workers",
        type=int,
        default=4,
        help="gunicorn workers in the http benchmark (default 4, README's production command)",
    )
    parser.add_argument(
        "--http-documents", type=int, default=100, help="documents of the batch running meanwhile"
    )
    parser.add_argument(
        "--http-concurrency", type=int, default=4, help="SHEAF_CONCURRENCY of that batch"
    )
    parser.add_argument(
        "--poll-requests", type=int, default=400, help="poll: requests a case a round"
    )
    parser.add_argument("--poll-rounds", type=int, default=5, help="poll: rounds (median)")
    parser.add_argument(
        "--live-documents", type=int, default=1000, help="live: documents of the timed batch"
    )
    parser.add_argument(
        "--live-concurrency", type=int, default=50, help="live: SHEAF_CONCURRENCY of the cluster"
    )
    parser.add_argument(
        "--live-latency", type=float, default=0.5, help="live: the sleep engine's L in seconds"
    )
    parser.add_argument(
        "--live-connections", type=int, default=1000, help="live: idle WebSocket connections held"
    )
    parser.add_argument(
        "--live-hold", type=float, default=20.0, help="live: seconds the connections are held"
    )
    parser.add_argument(
        "--live-redis-url",
        default="redis://127.0.0.1:6379/14",
        help="live: the Redis case's REDIS_URL (left out when nothing answers there)",
    )
    parser.add_argument("--read-rounds", type=int, default=5, help="rounds of the read benchmark")
    parser.add_argument(
        "--read-passes", type=int, default=10, help="reads of every PDF per round and reader"
    )
    parser.add_argument(
        "--devset",
        type=Path,
        help="quality: a development set written by `python -m samples.devset` (default: write "
        "one in the temporary directory with --devset-count and --devset-seed)",
    )
    parser.add_argument("--devset-count", type=int, default=120, help="quality: files to write")
    parser.add_argument("--devset-seed", type=int, default=1, help="quality: the set's seed")
    parser.add_argument(
        "--quality-details",
        type=Path,
        help="quality: write every document's expected and extracted values to this JSON file",
    )
    parser.add_argument(
        "--code-label", help="what code is measured, when not a git checkout (git describe)"
    )
    parser.add_argument("--output", type=Path, default=REPO / "BENCHMARKS.md")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    args.command = shlex.join(["bench/run.py", *(sys.argv[1:] if argv is None else argv)])
    if args.k < 2:
        parser.error("--k must be at least 2")
    return args


def _claude_cases(text: str) -> list[tuple[int, float, int, float | None]]:
    """N:L:R[:B] items: concurrency, latency (s), requests per minute, burst (s of the limit)."""
    cases = []
    for item in text.split(","):
        if item.strip():
            n, latency, rpm, *burst = item.split(":")
            cases.append((int(n), float(latency), int(rpm), float(burst[0]) if burst else None))
    return cases


def _numbers(kind: type) -> Callable[[str], list[Any]]:
    return lambda text: [kind(item) for item in text.split(",") if item.strip()]


def _raise_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def run_standalone(args: argparse.Namespace, tmp: Path) -> None:
    """A benchmark that needs no database: Django configured, nothing migrated or started."""
    import django

    started = time.monotonic()
    env = base_env(tmp, f"sqlite:///{tmp / 'unused.sqlite3'}")
    bench = Bench(args=args, tmp=tmp, env=env, database="none (in-process)")
    os.environ.update(env)
    django.setup()
    title, benchmark = STANDALONE[args.only]
    sections = benchmark.report(bench, benchmark.measure(bench))
    page = standalone_page(bench, title, sections, time.monotonic() - started)
    print()
    print(page)
    if args.no_write:
        log(f"not written to {args.output} (--no-write)")
    else:
        write_report(args.output, page, args.only)
        log(f"wrote the {args.only} results to {args.output}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    tmp = Path(tempfile.mkdtemp(prefix="sheaf-bench-"))
    if args.only in STANDALONE:
        try:
            run_standalone(args, tmp)
        finally:
            if args.keep:
                log(f"kept {tmp}")
            else:
                shutil.rmtree(tmp, ignore_errors=True)
        return 0
    started = time.monotonic()
    try:
        with database(args.database, tmp, args.postgres_url) as (url, description):
            bench = Bench(args=args, tmp=tmp, env=base_env(tmp, url), database=description)
            log(f"{description}; work directory {tmp}")
            setup_django(bench)
            measured = {
                name: benchmark.measure(bench)
                for name, benchmark in BENCHMARKS.items()
                if args.only == name or (args.only is None and name not in NAMED_ONLY)
            }
            from django.db import connections

            connections.close_all()
        sections = [
            line
            for name, result in measured.items()
            if result
            for line in BENCHMARKS[name].report(bench, result)
        ]
        own_block = args.only in OWN_BLOCKS
        title = OWN_BLOCKS[args.only] if own_block else "Results"
        results = results_page(bench, sections, time.monotonic() - started, title)
        print()
        print(results)
        if args.no_write or (args.only and not own_block):
            log(f"not written to {args.output} (--no-write or --only)")
        else:
            block = f"{args.only}-{args.database}" if own_block else args.database
            write_report(args.output, results, block)
            log(f"wrote the {block} results to {args.output}")
    except BaseException as exc:
        log(f"stopped by {type(exc).__name__}: stopping the processes it started")
        raise
    finally:
        stop_all()
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
