"""Sheaf's pipeline benchmarks, against real processes on a fresh database.

    make bench                          # SQLite in a temporary directory
    .venv/bin/python bench/run.py --database postgres
    .venv/bin/python bench/run.py --only overhead      # partial runs print only
    .venv/bin/python bench/run.py --only claude        # or upload, rss, http, read

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
   concurrency has settled).
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
8. `read`: pages/s of Sheaf's PDF reader (`documents.readers.read_document`, the sandboxed
   child pool) against raw pypdf `extract_text` in this process, over the corpus PDFs that
   both read. Target: Sheaf >= 0.9 x pypdf.

A full run replaces its database's block of results in BENCHMARKS.md and keeps the rest of
the file (the analysis written around it).

Every process the bench starts runs in its own session and is killed with its group on exit,
error or Ctrl-C. Nothing outside the temporary directory (and, with --database postgres, a
database it creates and drops) is touched.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import importlib.util
import itertools
import json
import math
import os
import platform
import secrets
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.support.corpus import find_corpus  # noqa: E402

PYTHON = sys.executable
PROMPT = "invoice number, issue date, total with currency, supplier VAT id"
OVERHEAD_TARGET_MS = 3.0
THROUGHPUT_TARGET = 0.95
RSS_TARGET_MB = 512.0
RSS_TARGET_CONCURRENCY = 64
RSS_GROWTH_TARGET = 1.1  # peak at 1,000 documents over the peak at 50
HTTP_P95_TARGET_MS = 50.0
HTTP_RATE_TARGET = 500.0
READ_TARGET = 0.9  # Sheaf's reader over raw pypdf, pages per second
BENCHMARKS = ("overhead", "throughput", "claude", "upload", "rss", "http", "read")
SAMPLE_SECONDS = 0.1
CLAUDE_CASES = "16:0.5:600:5,32:0.5:1200:5,16:0.5:600:1"
SHORT_CASE_SECONDS = 10.0  # throughput cases with less work than this run several times
POLL_PAGE_SECONDS = 2.0  # the batch page's htmx poll (templates/batches/_batch_progress.html)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- Processes ----------------------------------------------------------------------------------

_STARTED: list[Process] = []


class Process:
    """A child in its own session, so that stopping it stops everything it started."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        with open(log_path, "ab") as out:
            self.popen = subprocess.Popen(  # noqa: S603
                argv,
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        _STARTED.append(self)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the process group, then SIGKILL whatever is left of it."""
        if self in _STARTED:
            _STARTED.remove(self)
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, sig)
            try:
                self.popen.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
            if not _group_alive(self.pid):
                return
            # The leader is gone but children of the group may linger: kill them too.
            time.sleep(0.2)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def stop_all() -> None:
    for process in _STARTED:  # all at once first, then one by one
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    for process in list(reversed(_STARTED)):
        try:
            process.stop(grace=5.0)
        except Exception as exc:  # keep stopping the others
            log(f"could not stop {process.name} ({process.pid}): {exc}")


def _raise_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run(  # noqa: S603
        [PYTHON, "manage.py", *args],
        cwd=REPO,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


# --- Memory of process trees ----------------------------------------------------------------------


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


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


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


class MemorySampler(threading.Thread):
    """Every SAMPLE_SECONDS: the summed VmRSS (and PSS) of every process under the roots."""

    def __init__(self) -> None:
        super().__init__(name="bench-memory", daemon=True)
        self._lock = threading.Lock()
        self._roots: dict[str, int] = {}
        self._peak = MemoryPeak()
        self._stop = threading.Event()

    def watch(self, roots: dict[str, int]) -> None:
        with self._lock:
            self._roots = dict(roots)
            self._peak = MemoryPeak()

    def peak(self) -> MemoryPeak:
        with self._lock:
            return self._peak

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            with self._lock:
                roots = dict(self._roots)
            if not roots:
                continue
            children = _children_map()
            rss = pss = count = largest = 0
            by_tree: dict[str, int] = {}
            for name, root in roots.items():
                tree_rss = 0
                for pid in process_tree(root, children):
                    kb = _kb_field(f"/proc/{pid}/status", "VmRSS:")
                    tree_rss += kb
                    largest = max(largest, kb)
                    pss += _kb_field(f"/proc/{pid}/smaps_rollup", "Pss:")
                    count += 1 if kb else 0
                by_tree[name] = tree_rss
                rss += tree_rss
            with self._lock:
                if roots != self._roots:
                    continue
                peak = self._peak
                peak.samples += 1
                if rss > peak.rss_kb:
                    peak.rss_kb, peak.processes, peak.by_tree_kb = rss, count, by_tree
                    peak.largest_kb = largest
                peak.pss_kb = max(peak.pss_kb, pss)


# --- The web server, polled like a browser -------------------------------------------------------


class PagePoller(threading.Thread):
    """GETs the batch page once, then its progress partial every POLL_PAGE_SECONDS."""

    def __init__(self, base_url: str, cookie: str) -> None:
        super().__init__(name="bench-poller", daemon=True)
        self.base_url = base_url
        self.cookie = cookie
        self.statuses: Counter[int | str] = Counter()
        self.latencies: list[float] = []
        self._batch: str | None = None
        self._new = False
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def watch(self, batch_id: str | None) -> None:
        with self._lock:
            self._batch, self._new = batch_id, batch_id is not None

    def stop(self) -> None:
        self._stop.set()

    def get(self, path: str) -> None:
        request = urllib.request.Request(  # noqa: S310 (our own loopback server)
            self.base_url + path, headers={"Cookie": self.cookie}
        )
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                response.read()
                status: int | str = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except OSError as exc:
            status = type(exc).__name__
        self.latencies.append(time.perf_counter() - started)
        self.statuses[status] += 1

    def run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                batch, new = self._batch, self._new
                self._new = False
            if batch:
                self.get(
                    f"/dashboard/batches/{batch}/"
                    if new
                    else f"/dashboard/batches/{batch}/progress/"
                )
            self._stop.wait(POLL_PAGE_SECONDS)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- Setup ----------------------------------------------------------------------------------------


@dataclass
class Bench:
    args: argparse.Namespace
    tmp: Path
    env: dict[str, str]
    database: str  # "SQLite 3.x" / "PostgreSQL 16.x"
    user: Any = None
    cluster_count: int = 0
    load: tuple[float, float, float] = field(default_factory=os.getloadavg)

    def cluster_env(self, **extra: str) -> dict[str, str]:
        return {**self.env, **extra}

    def start_cluster(self, **extra: str) -> Process:
        self.cluster_count += 1
        cluster = Process(
            f"qcluster-{self.cluster_count}",
            # The README's production command: checks run once at deploy, not in every worker.
            [PYTHON, "manage.py", "qcluster", "--skip-checks", *self.args.qcluster_arg],
            self.cluster_env(**extra),
            self.tmp / f"qcluster-{self.cluster_count}.log",
        )
        self.wait_ready(cluster)
        return cluster

    def wait_ready(self, cluster: Process) -> None:
        """A cluster is ready once it has run a task (its first task also warms its imports)."""
        from django_q.models import Task
        from django_q.tasks import async_task

        group = f"bench-ready-{self.cluster_count}"
        async_task("bench.tasks.noop", group=group)
        wait_for(
            lambda: Task.objects.filter(group=group).exists(),
            timeout=60,
            what=f"{cluster.name} to run its first task",
            process=cluster,
        )


def wait_for(
    predicate: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    process: Process | None = None,
    step: float = 0.05,
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if process is not None and not process.alive():
            raise RuntimeError(f"{process.name} exited while waiting for {what}:\n{process.tail()}")
        if time.monotonic() > deadline:
            tail = f":\n{process.tail()}" if process is not None else ""
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}{tail}")
        time.sleep(step)


def bench_plan_limits() -> dict[str, int]:
    """Growth's limits, raised so that one batch holds a whole case, and (where plans have an
    API request rate) so that the http benchmark measures the API rather than its throttle,
    whose counting still runs on every request."""
    import dataclasses

    from accounts.plans import Plan

    limits = {
        "files_per_batch": 100_000,
        "documents_per_month": 10_000_000,
        "submissions_per_hour": 10_000,
    }
    if "api_requests_per_minute" in {field.name for field in dataclasses.fields(Plan)}:
        limits["api_requests_per_minute"] = 10_000_000
    return limits


def base_env(tmp: Path, database_url: str) -> dict[str, str]:
    """Production-like settings (DEBUG off) for the bench and every process it starts."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SHEAF_", "STRIPE_", "ANTHROPIC_"))
        and key not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "EMAIL_URL"}
    }
    env.update(
        DJANGO_SETTINGS_MODULE="batchsite.settings",
        PYTHONPATH=str(REPO),
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="0",
        SITE_URL="http://127.0.0.1",
        DATABASE_URL=database_url,
        SHEAF_VAR_DIR=str(tmp / "var"),
        MEDIA_ROOT=str(tmp / "media"),
        SHEAF_EXTRA_ENGINES=json.dumps({"sleep": "bench.engines.SleepEngine"}),
        # One batch holds all of a case's documents; the plan must let it.
        SHEAF_PLAN_LIMITS=json.dumps({"growth": bench_plan_limits()}),
        SHEAF_WORKERS="1",
        SHEAF_CONCURRENCY="1",
        PYTHONUNBUFFERED="1",
    )
    return env


@contextlib.contextmanager
def database(kind: str, tmp: Path, postgres_url: str) -> Iterator[tuple[str, str]]:
    """(DATABASE_URL, description) of a fresh database, dropped afterwards for PostgreSQL."""
    if kind == "sqlite":
        import sqlite3

        yield f"sqlite:///{tmp / 'bench.sqlite3'}", f"SQLite {sqlite3.sqlite_version} (WAL)"
        return
    import psycopg
    from psycopg import sql

    name = f"sheaf_bench_{os.getpid()}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        version = admin.execute("SHOW server_version").fetchone()[0]
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = urlunsplit(urlsplit(postgres_url)._replace(path=f"/{name}"))
    try:
        yield url, f"PostgreSQL {version.split()[0]}"
    finally:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def setup_django(bench: Bench) -> None:
    os.environ.update(bench.env)
    os.environ["LOG_LEVEL"] = "WARNING"  # the bench's own process only: no line per enqueue
    for key in list(os.environ):
        if key not in bench.env and (key.startswith("SHEAF_") or key in {"REDIS_URL"}):
            del os.environ[key]
    log("migrate, createcachetable, collectstatic")
    manage(bench.env, "migrate", "--no-input")
    manage(bench.env, "createcachetable")
    manage(bench.env, "collectstatic", "--no-input")

    import django

    django.setup()
    from django_q.models import Schedule

    from accounts.models import User
    from accounts.plans import PlanKey
    from accounts.services import user_set_plan_override

    # The once-a-minute safety-net drain would add a stray task to the measurements: every
    # batch here is kicked by batch_create itself.
    Schedule.objects.filter(func="batches.tasks.drain").delete()
    user = User.objects.create_user("bench@example.com", secrets.token_urlsafe(16))
    bench.user = user_set_plan_override(user=user, plan_key=PlanKey.GROWTH)


_INVOICES = itertools.count(1)


def invoice(n: int) -> bytes:
    """A short invoice; every call gives different bytes (a global serial number), so that no
    document can reuse the result of an earlier identical upload and skip the engine."""
    serial = next(_INVOICES)
    return (
        f"Northwind Office Supplies Ltd\n"
        f"Invoice number: INV-{serial:06}\n"
        f"Issue date: 2025-{n % 12 + 1:02}-{n % 28 + 1:02}\n"
        f"Supplier VAT id: GB{123456789 + n}\n"
        f"Description: paper, toner and staples\n"
        f"Total: {n % 900 + 100}.{n % 100:02} EUR\n"
    ).encode()


def create_batch(bench: Bench, *, documents: int, engine: str, name: str) -> Any:
    """A batch through the real service (uploads, plan checks, storage, kick after commit)."""
    from django.conf import settings
    from django.core.files.base import ContentFile

    from batches import services

    settings.SHEAF_EXTRACTION_ENGINE = (
        engine  # not settable from the environment (see BENCHMARKS.md)
    )
    files = [ContentFile(invoice(n), name=f"invoice-{n:05}.txt") for n in range(documents)]
    return services.batch_create(user=bench.user, files=files, prompt=PROMPT, name=name)


def wait_batch(
    batch: Any, *, timeout: float, cluster: Process, allowed: tuple[str, ...] = ()
) -> None:
    """Until the batch is finished; it must have completed (or ended in one of `allowed`)."""
    from batches.models import BatchProcess

    wait_for(
        lambda: BatchProcess.objects.filter(
            pk=batch.pk, status__in=BatchProcess.TERMINAL_STATUSES
        ).exists(),
        timeout=timeout,
        what=f"batch {batch.name} to finish",
        process=cluster,
        step=0.1,
    )
    batch.refresh_from_db()
    if batch.status != BatchProcess.Status.COMPLETED and batch.status not in allowed:
        from documents.models import Document

        errors = Counter(Document.objects.filter(batch=batch).values_list("status", "error_code"))
        raise RuntimeError(f"batch {batch.name} ended {batch.status}: {dict(errors)}")


def seconds(stamps: list[dt.datetime]) -> list[float]:
    return sorted(stamp.timestamp() for stamp in stamps)


# --- 1. Per-document overhead -------------------------------------------------------------------


@dataclass
class OverheadRun:
    task_ms: float
    task_e2e_ms: float
    document_ms: float
    document_e2e_ms: float
    document_busy_ms: float  # mean claim -> completed of one document
    task_cpu_ms: float  # CPU of the whole cluster per task
    document_cpu_ms: float  # CPU of the whole cluster per document
    others_cpus: float  # average CPUs used by other processes meanwhile

    @property
    def cpu_difference_ms(self) -> float:
        return self.document_cpu_ms - self.task_cpu_ms

    @property
    def difference_ms(self) -> float:
        return self.document_ms - self.task_ms


def save_limit() -> int:
    """django-q2's `save_limit` in the settings measured (successful results it keeps)."""
    from django.conf import settings

    return int(settings.Q_CLUSTER.get("save_limit", 250))


def reset_task_results(stored: int) -> None:
    """Start a no-op run from a known django-q2 result table: `stored` successful results.

    django-q2's monitor reads every stored success (up to `save_limit`) for each task it saves,
    so a bare task's cost grows with that table; runs must start alike to compare.
    """
    from django.utils import timezone
    from django_q.models import Task

    Task.objects.all().delete()
    now = timezone.now()
    Task.objects.bulk_create(
        Task(
            id=uuid.uuid4().hex,
            name=f"filler-{n}",
            func="bench.tasks.noop",
            args=(),
            kwargs={},
            started=now,
            stopped=now,
            group="bench-filler",
            success=True,
        )
        for n in range(stored)
    )


def measure_noop(
    cluster: Process, k: int, group: str, stored: int = 0
) -> tuple[float, float, CpuMeter]:
    """K no-op tasks, enqueued in one transaction so the pusher never finds the queue empty
    (and sleeps its 0.5 s poll) because the bench enqueues more slowly than the cluster runs.

    django-q2 keeps only the last `save_limit` successes (the oldest is deleted as each new one
    is saved), so the interval is taken over the results still stored at the end, i.e. the
    last min(K, save_limit) tasks; end to end runs from the bench's first enqueue."""
    from django.db import transaction
    from django_q.models import Failure, Task
    from django_q.tasks import async_task

    limit = save_limit()
    kept = min(k, limit) if limit > 0 else k
    reset_task_results(stored)
    with CpuMeter([cluster.pid]) as cpu:
        enqueued = time.time()
        with transaction.atomic():
            for _ in range(k):
                last = async_task("bench.tasks.noop", group=group)
        wait_for(
            lambda: (
                Task.objects.filter(pk=last).exists()
                and Task.objects.filter(group=group).count() >= kept
            ),
            timeout=60 + k * 0.2,
            what=f"{k} no-op tasks",
            process=cluster,
            step=0.1,
        )
    if Failure.objects.filter(group=group).exists():
        raise RuntimeError("a no-op task failed")
    stopped = seconds(list(Task.objects.filter(group=group).values_list("stopped", flat=True)))
    interval = (stopped[-1] - stopped[0]) / (len(stopped) - 1) * 1000
    return interval, (stopped[-1] - enqueued) / k * 1000, cpu


def measure_documents(
    bench: Bench, cluster: Process, k: int, run: int
) -> tuple[float, float, float, CpuMeter]:
    from documents.models import Document

    with CpuMeter([cluster.pid]) as cpu:
        batch = create_batch(bench, documents=k, engine="local", name=f"overhead {run}")
        wait_batch(batch, timeout=60 + k * 0.5, cluster=cluster)
    rows = list(Document.objects.filter(batch=batch).values_list("started_at", "completed_at"))
    completed = seconds([row[1] for row in rows])
    first = min(row[0] for row in rows).timestamp()
    busy = statistics.fmean((done - start).total_seconds() for start, done in rows)
    return (
        (completed[-1] - completed[0]) / (k - 1) * 1000,
        (completed[-1] - first) / k * 1000,
        busy * 1000,
        cpu,
    )


@dataclass
class Overhead:
    runs: list[OverheadRun]
    task_full_table_ms: float  # no-op task with django-q2's result table at its save_limit


def bench_overhead(bench: Bench) -> Overhead:
    k, repeats = bench.args.k, bench.args.repeats
    log(f"overhead: 1 worker, SHEAF_CONCURRENCY=1, K={k}, {repeats} runs")
    cluster = bench.start_cluster(SHEAF_WORKERS="1", SHEAF_CONCURRENCY="1")
    try:
        # Warm the worker's document path (imports, engine tables) as a running worker would be.
        warm = create_batch(bench, documents=5, engine="local", name="warm-up")
        wait_batch(warm, timeout=60, cluster=cluster)
        runs = []
        for run in range(1, repeats + 1):
            task_ms, task_e2e, task_cpu = measure_noop(cluster, k, f"bench-noop-{run}")
            doc_ms, doc_e2e, busy, doc_cpu = measure_documents(bench, cluster, k, run)
            result = OverheadRun(
                task_ms,
                task_e2e,
                doc_ms,
                doc_e2e,
                busy,
                task_cpu_ms=task_cpu.seconds / k * 1000,
                document_cpu_ms=doc_cpu.seconds / k * 1000,
                others_cpus=max(task_cpu.others, doc_cpu.others),
            )
            runs.append(result)
            log(
                f"  run {run}: no-op task {task_ms:.2f} ms, document {doc_ms:.2f} ms "
                f"({doc_ms - task_ms:+.2f} ms); CPU {result.task_cpu_ms:.2f} / "
                f"{result.document_cpu_ms:.2f} ms; others used {result.others_cpus:.2f} CPUs"
            )
        # What a bare task costs once a long-running cluster has stored save_limit results.
        full, _, _ = measure_noop(cluster, k, "bench-noop-full", stored=save_limit())
        log(f"  no-op task with {save_limit()} stored results: {full:.2f} ms")
    finally:
        cluster.stop()
    return Overhead(runs, full)


# --- 2 + 3. Throughput and memory ---------------------------------------------------------------


@dataclass
class ThroughputRun:
    steady_per_s: float
    overall_per_s: float
    busy_s: float  # mean claim -> completed of one document
    memory: MemoryPeak
    cpu_ms: float  # CPU of the whole cluster per document
    others_cpus: float  # average CPUs used by other processes meanwhile


@dataclass
class ThroughputCase:
    concurrency: int
    latency: float
    documents: int
    runs: list[ThroughputRun]

    @property
    def bound(self) -> float:
        return self.concurrency / self.latency

    @property
    def steady_per_s(self) -> float:
        return statistics.median(run.steady_per_s for run in self.runs)

    @property
    def ratio(self) -> float:
        return self.steady_per_s / self.bound

    @property
    def ratios(self) -> list[float]:
        return [run.steady_per_s / self.bound for run in self.runs]

    @property
    def overall_per_s(self) -> float:
        return statistics.median(run.overall_per_s for run in self.runs)

    @property
    def busy_s(self) -> float:
        return statistics.median(run.busy_s for run in self.runs)

    @property
    def cpu_ms(self) -> float:
        return statistics.median(run.cpu_ms for run in self.runs)

    @property
    def others_cpus(self) -> float:
        return statistics.median(run.others_cpus for run in self.runs)

    @property
    def memory(self) -> MemoryPeak:
        return max((run.memory for run in self.runs), key=lambda memory: memory.rss_kb)


def steady_rate(completed: list[float], per_round: int) -> float:
    """Documents per second between the end of the first round and the start of the last."""
    total = len(completed)
    if total < 3 * per_round:
        raise ValueError("need at least 3 rounds")
    first, last = completed[per_round - 1], completed[total - per_round - 1]
    return (total - 2 * per_round) / (last - first)


def rounds_for(latency: float, minimum: int) -> int:
    """At least `minimum` rounds and at least ~5 s of work, so short latencies are not noise."""
    return max(minimum, math.ceil(5.0 / latency))


def run_case(
    bench: Bench, sampler: MemorySampler, poller: PagePoller, web: Process, n: int, latency: float
) -> ThroughputCase:
    """One cluster for the case; short cases (under SHORT_CASE_SECONDS of work) run several
    batches one after the other on it and report the median, long ones run once."""
    from documents.models import Document

    rounds = rounds_for(latency, bench.args.rounds)
    documents = rounds * n
    repeats = bench.args.short_repeats if rounds * latency < SHORT_CASE_SECONDS else 1
    case = ThroughputCase(concurrency=n, latency=latency, documents=documents, runs=[])
    cluster = bench.start_cluster(
        SHEAF_WORKERS=str(bench.args.workers),
        SHEAF_CONCURRENCY=str(n),
        SHEAF_BENCH_LATENCY=str(latency),
    )
    try:
        # A long-running worker has done its first document (imports, engine set-up) long ago.
        warm = create_batch(bench, documents=1, engine="sleep", name=f"warm-up N={n} L={latency}")
        wait_batch(warm, timeout=60 + latency * 4, cluster=cluster)
        for repeat in range(1, repeats + 1):
            sampler.watch({"web": web.pid, "cluster": cluster.pid})
            created = time.time()
            with CpuMeter([cluster.pid, web.pid]) as cpu, CpuMeter([cluster.pid]) as cluster_cpu:
                batch = create_batch(
                    bench, documents=documents, engine="sleep", name=f"N={n} L={latency} #{repeat}"
                )
                poller.watch(str(batch.pk))
                wait_batch(batch, timeout=60 + rounds * latency * 4, cluster=cluster)
            poller.watch(None)
            memory = sampler.peak()
            sampler.watch({})
            if not web.alive():
                raise RuntimeError(f"the web server died:\n{web.tail()}")
            rows = list(
                Document.objects.filter(batch=batch).values_list("started_at", "completed_at")
            )
            completed = seconds([row[1] for row in rows])
            run = ThroughputRun(
                steady_per_s=steady_rate(completed, n),
                overall_per_s=documents / (completed[-1] - created),
                busy_s=statistics.fmean((done - start).total_seconds() for start, done in rows),
                memory=memory,
                cpu_ms=cluster_cpu.seconds / documents * 1000,
                others_cpus=cpu.others,
            )
            case.runs.append(run)
            log(
                f"  N={n:>3} L={latency:g}s #{repeat}: {run.steady_per_s:7.1f} docs/s of "
                f"{case.bound:6.1f} ({run.steady_per_s / case.bound:.1%}); peak RSS "
                f"{memory.rss_kb / 1024:.0f} MB ({memory.processes} processes); cluster CPU "
                f"{run.cpu_ms:.1f} ms/doc; others used {run.others_cpus:.2f} CPUs"
            )
    finally:
        cluster.stop()
    return case


def web_argv(bench: Bench, port: int, workers: int | None = None) -> list[str]:
    """The production WSGI server (README: gunicorn batchsite.wsgi), or runserver without it."""
    if bench.args.web == "runserver":
        return [PYTHON, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]
    return [
        PYTHON,
        "-m",
        "gunicorn",
        "batchsite.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers or bench.args.web_workers),
    ]


def web_description(bench: Bench, workers: int | None = None) -> str:
    if bench.args.web == "runserver":
        return "`manage.py runserver --noreload` (one process)"
    workers = workers or bench.args.web_workers
    return (
        f"`gunicorn batchsite.wsgi --workers {workers}` (the master and {workers} sync worker"
        + ("s" if workers > 1 else "")
        + ")"
    )


def start_web(bench: Bench, *, workers: int | None = None) -> tuple[Process, str]:
    """The web server on a free port, once it answers: (process, base URL)."""
    port = free_port()
    web = Process("web", web_argv(bench, port, workers), bench.env, bench.tmp / "web.log")
    base_url = f"http://127.0.0.1:{port}"

    def web_up() -> bool:
        try:
            with urllib.request.urlopen(base_url + "/healthz", timeout=2):  # noqa: S310
                return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False

    wait_for(web_up, timeout=60, what="the web server", process=web, step=0.2)
    return web, base_url


def session_cookie(bench: Bench) -> str:
    """A `Cookie` header value for a logged-in session of the bench user."""
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(bench.user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def bench_throughput(bench: Bench) -> tuple[list[ThroughputCase], PagePoller]:
    web, base_url = start_web(bench)
    cookie = session_cookie(bench)
    sampler, poller = MemorySampler(), PagePoller(base_url, cookie)
    sampler.start()
    poller.start()
    cases = []
    try:
        for latency in bench.args.latency:
            for n in bench.args.concurrency:
                cases.append(run_case(bench, sampler, poller, web, n, latency))
    finally:
        poller.stop()
        sampler.stop()
        web.stop()
    return cases, poller


# --- 4. The Claude engine against a rate-limited fake Anthropic API --------------------------


MESSAGES_PATH = "/v1/messages"


@dataclass
class ClaudeCase:
    concurrency: int
    latency: float
    rpm: int
    burst_seconds: float
    documents: int
    completed: int
    failed: int
    steady_per_s: float  # least-squares fit between 20% and 80% of the completions
    ends_per_s: float  # (count difference) / (time difference) of that window's ends
    statuses: Counter[int]  # every POST /v1/messages of the batch, by answer
    late_statuses: Counter[int]  # those that arrived in the second half of the run
    attempts: Counter[int]  # documents by the attempts they took
    longest_pause: float  # seconds between two requests of the batch
    verified_share: float  # of the values the fake's answers filled in
    cost_usd: float
    cpu_ms: float  # CPU of the whole cluster per document
    others_cpus: float
    memory: MemoryPeak

    @property
    def bound(self) -> float:
        return min(self.concurrency / self.latency, self.rpm / 60.0)

    @property
    def ratio(self) -> float:
        return self.steady_per_s / self.bound

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def share_429(self) -> float:
        return self.statuses[429] / self.requests if self.requests else 0.0

    @property
    def late_share_429(self) -> float:
        late = sum(self.late_statuses.values())
        return self.late_statuses[429] / late if late else 0.0


def window_rates(
    completed: list[float], low: float = 0.2, high: float = 0.8
) -> tuple[float, float]:
    """Documents per second between the completion of `low` and of `high` of them: the slope of
    a least-squares line through (time, count) of every completion in that window, and the plain
    (count difference) / (time difference) of its two ends. Under a binding rate limit documents
    complete in bursts several seconds apart, and the ends' figure then depends on where in a
    burst the window happens to start and stop; the fit uses every completion."""
    total = len(completed)
    first, last = math.ceil(low * total), math.ceil(high * total)
    if last - first < 2:
        raise ValueError("too few completions for a rate")
    window = completed[first - 1 : last]
    fit = statistics.linear_regression(window, range(first, last + 1)).slope
    return fit, (last - first) / (completed[last - 1] - completed[first - 1])


def claude_documents(bench: Bench, n: int, latency: float, rpm: int) -> int:
    """About `claude_seconds` of work at the bound, and at least 10 rounds of N."""
    bound = min(n / latency, rpm / 60.0)
    return max(10 * n, math.ceil(bench.args.claude_seconds * bound))


def run_claude_case(
    bench: Bench, sampler: MemorySampler, n: int, latency: float, rpm: int, burst: float | None
) -> ClaudeCase:
    """A cluster whose only engine call goes to a FakeAnthropic in this process (its requests
    are then counted by their answer); one batch of M distinct TXT invoices."""
    from batches.models import BatchProcess
    from documents.models import Document
    from tests.support.fake_anthropic import FakeAnthropic

    burst = bench.args.claude_burst if burst is None else burst
    documents = claude_documents(bench, n, latency, rpm)
    fake = FakeAnthropic(latency=latency).start()
    try:
        cluster = bench.start_cluster(
            SHEAF_WORKERS="1",
            SHEAF_CONCURRENCY=str(n),
            SHEAF_RETRY_BASE_SECONDS="1",
            SHEAF_EXTRACTION_ENGINE="anthropic",
            ANTHROPIC_API_KEY="any",
            ANTHROPIC_BASE_URL=fake.base_url,
        )
        try:
            # The worker imports the SDK and builds its client on its first Claude document.
            warm = create_batch(bench, documents=1, engine="anthropic", name=f"warm-up N={n}")
            wait_batch(warm, timeout=60 + latency * 4, cluster=cluster)
            fake.rate_limit(requests_per_minute=rpm, burst_seconds=burst)  # a full bucket again
            before = len(fake.requests)
            sampler.watch({"cluster": cluster.pid})
            bound = min(n / latency, rpm / 60.0)
            with CpuMeter([cluster.pid]) as cpu:
                batch = create_batch(
                    bench, documents=documents, engine="anthropic", name=f"Claude N={n} R={rpm}"
                )
                wait_batch(
                    batch,
                    timeout=120 + documents / bound * 6,
                    cluster=cluster,
                    allowed=(BatchProcess.Status.COMPLETED_WITH_ERRORS,),
                )
            memory = sampler.peak()
            sampler.watch({})
        finally:
            cluster.stop()
    finally:
        fake.stop()
    if fake.errors:
        raise RuntimeError(f"the fake Anthropic API failed:\n{fake.errors[0]}")
    calls = [
        r
        for r in fake.requests[before:]
        if r.method == "POST" and r.path == MESSAGES_PATH and r.status is not None
    ]
    middle = (calls[0].at + calls[-1].at) / 2
    rows = list(
        Document.objects.filter(batch=batch).values_list(
            "status", "completed_at", "attempts", "result", "cost_usd"
        )
    )
    done = [row for row in rows if row[0] == Document.Status.COMPLETED]
    fit, ends = window_rates(seconds([row[1] for row in done]))
    cells = [
        cell
        for row in done
        for cell in (row[3] or {}).get("fields", {}).values()
        if cell.get("value") is not None
    ]
    case = ClaudeCase(
        concurrency=n,
        latency=latency,
        rpm=rpm,
        burst_seconds=burst,
        documents=documents,
        completed=len(done),
        failed=sum(1 for row in rows if row[0] == Document.Status.FAILED),
        steady_per_s=fit,
        ends_per_s=ends,
        statuses=Counter(r.status for r in calls),
        late_statuses=Counter(r.status for r in calls if r.at >= middle),
        attempts=Counter(row[2] for row in rows),
        longest_pause=max(b.at - a.at for a, b in itertools.pairwise(calls)),
        verified_share=(
            sum(1 for cell in cells if cell.get("verified")) / len(cells) if cells else 0.0
        ),
        cost_usd=float(sum(row[4] or 0 for row in done)),
        cpu_ms=cpu.seconds / documents * 1000,
        others_cpus=cpu.others,
        memory=memory,
    )
    log(
        f"  Claude N={n:>3} L={latency:g}s R={rpm}/min B={burst:g}s: "
        f"{case.steady_per_s:6.1f} docs/s (ends {case.ends_per_s:.1f}) of "
        f"{case.bound:5.1f} ({case.ratio:.1%}); {case.requests} requests for {documents} "
        f"documents, 429: {case.share_429:.1%} (second half {case.late_share_429:.1%}); "
        f"longest pause {case.longest_pause:.1f} s; {case.failed} failed; "
        f"attempts {dict(sorted(case.attempts.items()))}; "
        f"cluster CPU {case.cpu_ms:.1f} ms/doc; peak RSS {memory.rss_kb / 1024:.0f} MB"
    )
    return case


def bench_claude(bench: Bench) -> list[ClaudeCase]:
    log("Claude engine against the rate-limited fake Anthropic API")
    sampler = MemorySampler()
    sampler.start()
    try:
        return [
            run_claude_case(bench, sampler, n, latency, rpm, burst)
            for n, latency, rpm, burst in bench.args.claude
        ]
    finally:
        sampler.stop()


# --- Shared by upload, rss, http and read ---------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), linear between the closest ranks."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def corpus_pdfs(bench: Bench) -> list[Path]:
    """Every PDF of the corpus (by content: it starts with %PDF-), in a fixed order."""
    paths = [
        path
        for path in sorted(bench.args.corpus.rglob("*"))
        if path.is_file() and path.read_bytes()[:5] == b"%PDF-"
    ]
    if not paths:
        raise RuntimeError(f"no PDF in {bench.args.corpus}: pass --corpus or set SHEAF_CORPUS")
    return paths


def corpus_mix(pdfs: list[Path], count: int) -> list[tuple[str, bytes]]:
    """`count` uploads cycling through the corpus PDFs, each with different bytes (a comment
    after the last %%EOF, which PDF readers skip), so no document reuses another's result."""
    uploads = []
    for n in range(count):
        path = pdfs[n % len(pdfs)]
        serial = next(_INVOICES)
        uploads.append((path.name, path.read_bytes() + f"\n% sheaf-bench {serial}\n".encode()))
    return uploads


def multipart(
    fields: list[tuple[str, str]], files: list[tuple[str, str, bytes]]
) -> tuple[bytes, str]:
    """A multipart/form-data body as a browser or an API client sends it: (body, content type)."""
    boundary = f"----sheafbench{uuid.uuid4().hex}"
    body = bytearray()
    for name, value in fields:
        body += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        ).encode()
    for name, filename, data in files:
        body += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: application/pdf\r\n\r\n'
        ).encode()
        body += data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return bytes(body), f"multipart/form-data; boundary={boundary}"


@dataclass
class Answer:
    status: int
    body: bytes
    headers: dict[str, str]
    seconds: float


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the bench reads the 302 itself, as the timing ends there


_OPENER = urllib.request.build_opener(_NoRedirect)


def http(
    base_url: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    data: bytes | None = None,
    timeout: float = 120,
) -> Answer:
    """One request to our loopback server; the time runs until the whole answer is read."""
    request = urllib.request.Request(  # noqa: S310 (our own loopback server)
        base_url + path, data=data, headers=headers or {}, method="POST" if data else "GET"
    )
    started = time.perf_counter()
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            body = response.read()
            status = response.status
            answer_headers = dict(response.headers.items())
    except urllib.error.HTTPError as exc:
        body, status, answer_headers = exc.read(), exc.code, dict(exc.headers.items())
    return Answer(status, body, answer_headers, time.perf_counter() - started)


def api_key(bench: Bench) -> str:
    from accounts.services import api_key_create

    _, secret = api_key_create(user=bench.user, name=f"bench {secrets.token_hex(4)}")
    return secret


def forget_batches(batches: list[Any]) -> None:
    """Delete batches the bench made only to time something (their files too), and the drains
    their creation enqueued, so that no later cluster works on them."""
    from django_q.models import OrmQ

    from batches import services

    for batch in batches:
        services.batch_delete(batch=batch)
    OrmQ.objects.all().delete()


# --- 5. Upload of a 50-file batch -----------------------------------------------------------------


@dataclass
class UploadPath:
    name: str  # "API" / "dashboard form"
    request: str
    seconds: list[float]
    megabytes: float  # body size of one upload

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def p95(self) -> float:
        return percentile(self.seconds, 95)


@dataclass
class UploadResult:
    files: int
    corpus_files: int
    paths: list[UploadPath]
    others_cpus: float


def _csrf(base_url: str, cookie: str) -> tuple[str, str]:
    """(csrftoken cookie, form token) from the upload page, as a browser gets them."""
    import re

    page = http(base_url, "/dashboard/batch-upload/", headers={"Cookie": cookie})
    if page.status != 200:
        raise RuntimeError(f"GET /dashboard/batch-upload/ answered {page.status}")
    set_cookie = page.headers.get("Set-Cookie", "")
    token_cookie = re.search(r"csrftoken=([^;]+)", set_cookie)
    form_token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.body)
    if not token_cookie or not form_token:
        raise RuntimeError("the upload page set no CSRF cookie or token")
    return token_cookie.group(1), form_token.group(1).decode()


def _upload_api(
    base_url: str, bearer: str, files: list[tuple[str, str, bytes]], name: str
) -> tuple[Answer, str, int]:
    body, content_type = multipart([("prompt", PROMPT), ("name", name)], files)
    answer = http(
        base_url,
        "/api/v1/batches/",
        headers={"Authorization": f"Bearer {bearer}", "Content-Type": content_type},
        data=body,
    )
    if answer.status != 201:
        raise RuntimeError(f"API upload answered {answer.status}: {answer.body[:500]!r}")
    return answer, json.loads(answer.body)["id"], len(body)


def _upload_form(
    base_url: str, cookie: str, files: list[tuple[str, str, bytes]], name: str
) -> tuple[Answer, str, int]:
    token_cookie, token = _csrf(base_url, cookie)
    fields = [
        ("csrfmiddlewaretoken", token),
        ("name", name),
        ("prompt", PROMPT),
        ("fields", ""),
        ("description", ""),
        ("mode", "standard"),
    ]
    body, content_type = multipart(fields, files)
    answer = http(
        base_url,
        "/dashboard/batch-upload/",
        headers={"Cookie": f"{cookie}; csrftoken={token_cookie}", "Content-Type": content_type},
        data=body,
    )
    location = answer.headers.get("Location", "")
    if answer.status != 302 or "/dashboard/batches/" not in location:
        raise RuntimeError(f"form upload answered {answer.status}: {answer.body[:500]!r}")
    return answer, location.rstrip("/").rsplit("/", 1)[1], len(body)


def bench_upload(bench: Bench) -> UploadResult:
    """POST /api/v1/batches/ and the dashboard's upload form, 50 corpus PDFs each time, on
    gunicorn; no cluster runs (the drains the uploads enqueue are deleted with the batches).
    The time runs from the request's first byte until the whole answer is read: the batch and
    its documents are committed by then (the API's 201 carries the batch; the form redirects)."""
    from batches.models import BatchProcess

    count, runs = bench.args.upload_files, bench.args.upload_runs
    pdfs = corpus_pdfs(bench)
    log(f"upload: {count} corpus PDFs per batch ({len(pdfs)} distinct files), {runs} runs a path")
    web, base_url = start_web(bench)
    credentials = {"API": api_key(bench), "dashboard form": session_cookie(bench)}
    senders = {"API": _upload_api, "dashboard form": _upload_form}
    paths = [
        UploadPath("API", "`POST /api/v1/batches/` (Bearer key)", [], 0.0),
        UploadPath("dashboard form", "`POST /dashboard/batch-upload/` (session, CSRF)", [], 0.0),
    ]
    created: list[Any] = []
    try:
        with CpuMeter([web.pid]) as cpu:
            for run in range(runs + 1):  # run 0 warms each path and is not counted
                timings = []
                for path in paths:
                    files = [("files", name, data) for name, data in corpus_mix(pdfs, count)]
                    answer, batch_id, size = senders[path.name](
                        base_url, credentials[path.name], files, f"upload {path.name} {run}"
                    )
                    batch = BatchProcess.objects.get(pk=batch_id)
                    if batch.documents.count() != count:
                        raise RuntimeError(
                            f"{path.name} upload made {batch.documents.count()} documents"
                        )
                    created.append(batch)
                    path.megabytes = size / 2**20
                    if run:
                        path.seconds.append(answer.seconds)
                    timings.append(f"{path.name} {answer.seconds:.3f} s")
                log(f"  run {run}{' (warm-up)' if not run else ''}: {', '.join(timings)}")
    finally:
        web.stop()
        forget_batches(created)
    return UploadResult(count, len(pdfs), paths, cpu.others)


# --- 6. Peak memory at 50 and 1,000 documents -----------------------------------------------------


def create_pdf_batch(bench: Bench, pdfs: list[Path], *, documents: int, name: str) -> Any:
    """A batch of corpus PDFs on the `local` engine, through the real service."""
    from django.conf import settings
    from django.core.files.base import ContentFile

    from batches import services

    settings.SHEAF_EXTRACTION_ENGINE = "local"
    files = [ContentFile(data, name=filename) for filename, data in corpus_mix(pdfs, documents)]
    return services.batch_create(user=bench.user, files=files, prompt=PROMPT, name=name)


def finished_pages(batch_id: str) -> list[str]:
    """What a user opens once a batch is done: its page, the partial, every export, the API."""
    from batches.exports import EXPORT_FORMATS

    return [
        f"/dashboard/batches/{batch_id}/",
        f"/dashboard/batches/{batch_id}/progress/",
        *(f"/dashboard/batches/{batch_id}/export/{fmt}/" for fmt in EXPORT_FORMATS),
        f"/api/v1/batches/{batch_id}/",
    ]


@dataclass
class RssCase:
    documents: int
    processing: MemoryPeak  # from the batch's creation to its last document
    finished: MemoryPeak  # then: the batch page, the partial, every export, the API batch
    web_hwm_kb: int  # the web processes' own peaks (VmHWM), summed: spikes between samples
    seconds: float
    outcome: Counter[str]  # documents by status (and error code)
    cpu_ms: float  # cluster CPU per document
    others_cpus: float
    statuses: Counter[int | str]


def run_rss_case(bench: Bench, documents: int, pdfs: list[Path]) -> RssCase:
    """A fresh web server and cluster for one batch size (a process's RSS rarely shrinks, so the
    sizes must not share processes), both warmed on a 5-document batch, pages and exports."""
    from batches.models import BatchProcess
    from documents.models import Document

    allowed = (BatchProcess.Status.COMPLETED_WITH_ERRORS,)
    web, base_url = start_web(bench)
    sampler, poller = MemorySampler(), PagePoller(base_url, session_cookie(bench))
    sampler.start()
    poller.start()
    try:
        cluster = bench.start_cluster(
            SHEAF_WORKERS=str(bench.args.workers),
            SHEAF_CONCURRENCY=str(bench.args.rss_concurrency),
        )
        try:
            warm = create_pdf_batch(bench, pdfs, documents=5, name=f"warm-up rss {documents}")
            wait_batch(warm, timeout=120, cluster=cluster, allowed=allowed)
            for path in finished_pages(str(warm.pk)):
                poller.get(path)
            roots = {"web": web.pid, "cluster": cluster.pid}
            sampler.watch(roots)
            started = time.monotonic()
            with CpuMeter([cluster.pid, web.pid]) as cpu, CpuMeter([cluster.pid]) as cluster_cpu:
                batch = create_pdf_batch(bench, pdfs, documents=documents, name=f"rss {documents}")
                poller.watch(str(batch.pk))
                wait_batch(batch, timeout=120 + documents * 0.5, cluster=cluster, allowed=allowed)
            poller.watch(None)
            elapsed = time.monotonic() - started
            processing = sampler.peak()
            sampler.watch(roots)
            for path in finished_pages(str(batch.pk)):
                poller.get(path)
            time.sleep(SAMPLE_SECONDS * 3)
            finished = sampler.peak()
            web_hwm = sum(
                _kb_field(f"/proc/{pid}/status", "VmHWM:")
                for pid in process_tree(web.pid, _children_map())
            )
            sampler.watch({})
        finally:
            cluster.stop()
    finally:
        poller.stop()
        sampler.stop()
        web.stop()
    outcome = Counter(
        f"{status} ({code})" if code else status
        for status, code in Document.objects.filter(batch=batch).values_list("status", "error_code")
    )
    case = RssCase(
        documents=documents,
        processing=processing,
        finished=finished,
        web_hwm_kb=web_hwm,
        seconds=elapsed,
        outcome=outcome,
        cpu_ms=cluster_cpu.seconds / documents * 1000,
        others_cpus=cpu.others,
        statuses=poller.statuses,
    )
    log(
        f"  {documents} documents in {elapsed:.1f} s: peak RSS {processing.rss_kb / 1024:.0f} MB "
        f"(web {processing.by_tree_kb.get('web', 0) / 1024:.0f}, cluster "
        f"{processing.by_tree_kb.get('cluster', 0) / 1024:.0f}), PSS {processing.pss_kb / 1024:.0f}"
        f" MB; with pages and exports {finished.rss_kb / 1024:.0f} MB; others used "
        f"{cpu.others:.2f} CPUs"
    )
    return case


def bench_rss(bench: Bench) -> list[RssCase]:
    pdfs = corpus_pdfs(bench)
    sizes = bench.args.rss_documents
    log(f"rss: batches of {' and '.join(map(str, sizes))} corpus PDFs, local engine")
    return [run_rss_case(bench, documents, pdfs) for documents in sizes]


# --- 7. Dashboard and API under load while a batch runs -------------------------------------------


@dataclass
class HttpCase:
    name: str
    path: str
    auth: str
    requests: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    errors: int  # socket errors, timeouts and non-2xx answers
    completed_during: int  # documents the batch completed while this endpoint was loaded
    batch_running: bool  # the batch was still processing when the load stopped
    queries: int = 0  # per request, in the bench's own process after the run
    in_process_ms: float = 0.0  # median time of the view in the bench's own process
    others_cpus: float = 0.0
    web_cpu_ms: float = 0.0  # CPU of gunicorn's processes per request under the load

    @property
    def cpu_bound_rate(self) -> float:
        """Requests a second the machine's CPUs could serve at this CPU cost, nothing else."""
        cpus = len(os.sched_getaffinity(0))
        return cpus * 1000 / self.web_cpu_ms if self.web_cpu_ms else 0.0

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def shown_path(self) -> str:
        import re

        return re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}", "<id>", self.path)

    @property
    def passed(self) -> bool:
        return (
            self.p95_ms <= HTTP_P95_TARGET_MS and self.rate >= HTTP_RATE_TARGET and self.errors == 0
        )


@dataclass
class HttpResult:
    cases: list[HttpCase]
    documents: int
    latency: float
    web_workers: int
    wrk: str  # wrk's version, or why it did not run


def wrk_version(wrk: str) -> str:
    out = subprocess.run([wrk, "--version"], capture_output=True, text=True)  # noqa: S603
    return (out.stdout + out.stderr).splitlines()[0].split(" Copyright")[0].strip()


def run_wrk(bench: Bench, wrk: str, url: str, header: str, seconds: float) -> dict[str, Any]:
    argv = [
        wrk,
        f"-t{bench.args.http_threads}",
        f"-c{bench.args.http_connections}",
        f"-d{seconds:g}s",
        "--timeout",
        "10s",
        "-s",
        str(REPO / "bench" / "wrk_report.lua"),
        "-H",
        header,
        url,
    ]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)  # noqa: S603
    for line in out.stdout.splitlines():
        if line.startswith("BENCH-JSON "):
            return json.loads(line.removeprefix("BENCH-JSON "))
    raise RuntimeError(f"wrk printed no summary:\n{out.stdout}\n{out.stderr}")


def profile_views(bench: Bench, cases: list[HttpCase], headers: dict[str, dict[str, str]]) -> None:
    """Queries per request and the view's own time, in this process (Django's test client,
    no network, no gunicorn): what a request costs before any waiting."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(bench.user)
    for case in cases:
        extra = headers[case.auth]
        client.get(case.path, **extra)  # warm
        with CaptureQueriesContext(connection) as queries:
            client.get(case.path, **extra)
        case.queries = len(queries.captured_queries)
        times = []
        for _ in range(20):
            started = time.perf_counter()
            response = client.get(case.path, **extra)
            times.append(time.perf_counter() - started)
            if response.status_code != 200:
                raise RuntimeError(f"{case.path} answered {response.status_code} in process")
        case.in_process_ms = statistics.median(times) * 1000


def bench_http(bench: Bench) -> HttpResult:
    """wrk against gunicorn on each page in turn while one batch of Growth's largest size runs
    on the sleep engine, slow enough to last through every endpoint's load."""
    from documents.models import Document

    args = bench.args
    n, documents = args.http_concurrency, args.http_documents
    endpoints_count = 4
    seconds = endpoints_count * (args.http_warmup_seconds + args.http_seconds + 3)
    latency = round(n * seconds * 1.3 / documents, 2)
    wrk = shutil.which("wrk")
    if wrk is None:
        log("http: wrk is not installed (Debian: apt-get install wrk); skipped")
        return HttpResult([], documents, latency, args.http_web_workers, "not installed")
    log(
        f"http: wrk -t{args.http_threads} -c{args.http_connections} -d{args.http_seconds:g}s per "
        f"endpoint, gunicorn --workers {args.http_web_workers}; a batch of {documents} documents "
        f"runs meanwhile (sleep engine, N={n}, L={latency:g} s)"
    )
    web, base_url = start_web(bench, workers=args.http_web_workers)
    cookie, key = session_cookie(bench), api_key(bench)
    cluster = bench.start_cluster(
        SHEAF_WORKERS="1", SHEAF_CONCURRENCY=str(n), SHEAF_BENCH_LATENCY=str(latency)
    )
    cases: list[HttpCase] = []
    try:
        warm = create_batch(bench, documents=1, engine="sleep", name="warm-up http")
        wait_batch(warm, timeout=60 + latency * 4, cluster=cluster)
        batch = create_batch(bench, documents=documents, engine="sleep", name="http load")
        endpoints = [
            ("dashboard (batch list)", "/dashboard/", "cookie"),
            ("batch page", f"/dashboard/batches/{batch.pk}/", "cookie"),
            ("progress partial", f"/dashboard/batches/{batch.pk}/progress/", "cookie"),
            ("API batch", f"/api/v1/batches/{batch.pk}/", "bearer"),
        ]
        headers = {"cookie": f"Cookie: {cookie}", "bearer": f"Authorization: Bearer {key}"}
        done = Document.objects.filter(batch=batch, status=Document.Status.COMPLETED)
        for name, path, auth in endpoints:
            header_name, _, header_value = headers[auth].partition(": ")
            check = http(base_url, path, headers={header_name: header_value})
            if check.status != 200:
                raise RuntimeError(f"{path} answered {check.status}: {check.body[:300]!r}")
            # Every gunicorn worker's first requests load templates and code: not measured.
            run_wrk(bench, wrk, base_url + path, headers[auth], args.http_warmup_seconds)
            before = done.count()
            with CpuMeter([web.pid, cluster.pid]) as cpu, CpuMeter([web.pid]) as web_cpu:
                summary = run_wrk(bench, wrk, base_url + path, headers[auth], args.http_seconds)
            batch.refresh_from_db()
            errors = sum(
                summary[key]
                for key in (
                    "connect_errors",
                    "read_errors",
                    "write_errors",
                    "status_errors",
                    "timeouts",
                )
            )
            case = HttpCase(
                name=name,
                path=path,
                auth=auth,
                requests=summary["requests"],
                seconds=summary["duration_us"] / 1e6,
                p50_ms=summary["p50_us"] / 1000,
                p95_ms=summary["p95_us"] / 1000,
                p99_ms=summary["p99_us"] / 1000,
                max_ms=summary["max_us"] / 1000,
                errors=errors,
                completed_during=done.count() - before,
                batch_running=not batch.is_terminal,
                others_cpus=cpu.others,
                web_cpu_ms=web_cpu.seconds / max(summary["requests"], 1) * 1000,
            )
            cases.append(case)
            log(
                f"  {name:<24} {case.rate:7.1f} req/s, p50 {case.p50_ms:6.1f} ms, p95 "
                f"{case.p95_ms:6.1f} ms, p99 {case.p99_ms:6.1f} ms, {errors} errors; "
                f"{case.completed_during} documents completed meanwhile"
                + ("" if case.batch_running else " (the batch had finished)")
            )
    finally:
        cluster.stop()
        web.stop()
    profile_views(bench, cases, {"cookie": {}, "bearer": {"HTTP_AUTHORIZATION": f"Bearer {key}"}})
    return HttpResult(cases, documents, latency, args.http_web_workers, wrk_version(wrk))


# --- 8. Reading PDFs: Sheaf's sandboxed reader against pypdf in-process ---------------------------


@dataclass
class ReadBench:
    files: list[Path]
    pages: int
    skipped: dict[str, str]  # corpus file -> why it is not counted
    raw: list[float]  # pages/s per round
    sheaf: list[float]
    raw_cpu_ms: float  # CPU per page (the fresh interpreter)
    sheaf_cpu_ms: float  # CPU per page (this process and the reader children)
    sheaf_parallel: float  # pages/s with the pool's size of reads at once
    processes: int

    @property
    def ratios(self) -> list[float]:
        """Sheaf over pypdf in each round: the two ran back to back, under the same load."""
        return [sheaf / raw for sheaf, raw in zip(self.sheaf, self.raw, strict=True)]

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios)


def raw_pypdf_pages(path: Path) -> list[str]:
    """What pypdf alone does: open, try the empty password, extract every page's text."""
    from pypdf import PdfReader

    reader = PdfReader(path)
    if reader.is_encrypted:
        reader.decrypt("")
    return [page.extract_text() for page in reader.pages]


# Raw pypdf in a fresh interpreter, like the reader's child (`python -I`, only pypdf imported):
# in the bench's own process Django's heap makes every garbage collection slower, which would
# handicap pypdf. One warm-up pass, then `passes` timed ones; prints seconds and CPU seconds.
RAW_PYPDF = """
import json, logging, resource, sys, time, warnings
from pypdf import PdfReader
logging.disable(logging.CRITICAL)
warnings.simplefilter("ignore")
paths, passes = json.loads(sys.argv[1]), int(sys.argv[2])
def read(path):
    reader = PdfReader(path)
    if reader.is_encrypted:
        reader.decrypt("")
    return [page.extract_text() for page in reader.pages]
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
for path in paths:
    read(path)
cpu_before, started = cpu(), time.perf_counter()
for _ in range(passes):
    for path in paths:
        read(path)
print(json.dumps({"seconds": time.perf_counter() - started, "cpu": cpu() - cpu_before}))
"""


def raw_pypdf_pass(files: list[Path], passes: int) -> tuple[float, float]:
    """(seconds, CPU seconds) of `passes` raw pypdf reads of every file, in a fresh interpreter."""
    out = subprocess.run(  # noqa: S603 (our own interpreter and script)
        [PYTHON, "-I", "-c", RAW_PYPDF, json.dumps([str(path) for path in files]), str(passes)],
        capture_output=True,
        text=True,
        check=True,
    )
    timing = json.loads(out.stdout.strip().splitlines()[-1])
    return timing["seconds"], timing["cpu"]


def sheaf_read(path: Path) -> int:
    from documents.readers import read_document

    return read_document(path, content_type="application/pdf", filename=path.name).page_count or 0


def bench_read(bench: Bench) -> ReadBench:
    """Every readable corpus PDF, `passes` times a round, raw pypdf and Sheaf's reader one
    after the other (alternating which goes first); pages/s per round, median of the rounds."""
    import logging
    import warnings
    from concurrent.futures import ThreadPoolExecutor

    from documents import pdf_sandbox
    from extraction.contract import ExtractionError

    logging.getLogger("pypdf").setLevel(logging.CRITICAL)
    warnings.simplefilter("ignore")
    files, skipped, pages = [], {}, 0
    for path in corpus_pdfs(bench):
        name = str(path.relative_to(bench.args.corpus))
        try:
            texts = raw_pypdf_pages(path)
            if not any(text.strip() for text in texts):
                skipped[name] = "no text layer"
                continue
            sheaf_pages = sheaf_read(path)
        except ExtractionError as error:
            skipped[name] = f"Sheaf: {error.code}"
            continue
        except Exception as error:  # what pypdf raises for a closed or broken file
            skipped[name] = f"pypdf: {type(error).__name__}"
            continue
        if sheaf_pages != len(texts):
            skipped[name] = f"pages differ: pypdf {len(texts)}, Sheaf {sheaf_pages}"
            continue
        files.append(path)
        pages += len(texts)
    rounds, passes = bench.args.read_rounds, bench.args.read_passes
    log(
        f"read: {len(files)} readable corpus PDFs ({pages} pages), "
        f"{rounds} rounds of {passes} passes"
    )

    def timed_sheaf() -> tuple[float, float]:
        cpu = tree_cpu_seconds([os.getpid()])
        started = time.perf_counter()
        for _ in range(passes):
            for path in files:
                sheaf_read(path)
        elapsed = time.perf_counter() - started
        return elapsed, tree_cpu_seconds([os.getpid()]) - cpu

    def timed_raw() -> tuple[float, float]:
        return raw_pypdf_pass(files, passes)

    raw, sheaf, raw_cpu, sheaf_cpu = [], [], 0.0, 0.0
    for round_ in range(rounds):
        order = [("raw", timed_raw), ("sheaf", timed_sheaf)]
        for kind, timed in order if round_ % 2 == 0 else order[::-1]:
            elapsed, cpu = timed()
            rate = pages * passes / elapsed
            if kind == "raw":
                raw.append(rate)
                raw_cpu += cpu
            else:
                sheaf.append(rate)
                sheaf_cpu += cpu
        log(f"  round {round_ + 1}: pypdf {raw[-1]:.0f} pages/s, Sheaf {sheaf[-1]:.0f} pages/s")
    from django.conf import settings

    processes = min(os.cpu_count() or 1, getattr(settings, "SHEAF_READER_PROCESSES", 2))
    started = time.perf_counter()
    with ThreadPoolExecutor(processes) as pool:
        for _ in range(passes):
            list(pool.map(sheaf_read, files))
    parallel = pages * passes / (time.perf_counter() - started)
    pdf_sandbox.shutdown()
    total_pages = pages * passes * rounds
    return ReadBench(
        files=files,
        pages=pages,
        skipped=skipped,
        raw=raw,
        sheaf=sheaf,
        raw_cpu_ms=raw_cpu / total_pages * 1000,
        sheaf_cpu_ms=sheaf_cpu / total_pages * 1000,
        sheaf_parallel=parallel,
        processes=processes,
    )


# --- Report of 5-8 --------------------------------------------------------------------------------


def _mb(kb: int) -> str:
    return f"{kb / 1024:.0f} MB"


def upload_report(bench: Bench, result: UploadResult) -> list[str]:
    runs = len(result.paths[0].seconds)
    lines = [
        f"### 5. Upload of a {result.files}-file batch",
        "",
        f"{result.files} PDFs cycled from the corpus's {result.corpus_files} (every one with "
        f"different bytes), posted as one multipart request to {web_description(bench)} "
        "(no cluster runs); the time runs from the request until its whole answer is read, "
        "when the batch and its documents are committed and stored (the API answers 201 with "
        "the batch, the form 302 to the batch page; the form's time leaves out the GET of the "
        f"page that gives its CSRF token). {runs} runs a path after one warm-up run; p95 is "
        "interpolated between the two slowest runs. The issue gives no number for it; it is "
        "reported as measured.",
        "",
        "| path | request | body | median | p95 | fastest | slowest |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for path in result.paths:
        lines.append(
            f"| {path.name} | {path.request} | {path.megabytes:.1f} MB | {path.median:.3f} s "
            f"| {path.p95:.3f} s | {min(path.seconds):.3f} s | {max(path.seconds):.3f} s |"
        )
    lines += ["", f"CPUs used by other processes meanwhile: {result.others_cpus:.2f}.", ""]
    return lines


def rss_report(bench: Bench, cases: list[RssCase]) -> list[str]:
    lines = [
        "### 6. Peak memory at 50 and 1,000 documents, `local` engine",
        "",
        f"For each size a fresh {web_description(bench)} and cluster ({_workers(bench)}, "
        f"SHEAF_CONCURRENCY={bench.args.rss_concurrency}, the PDF reader's child processes "
        "included), both warmed on a 5-document batch (its page, partial, exports and API "
        "batch fetched once); then one batch of corpus PDFs cycled (encrypted, image-only and "
        "broken ones fail as they should, so the batch ends completed_with_errors), while the "
        f"web server is polled on the progress partial every {POLL_PAGE_SECONDS:g} s as the "
        'batch page does. Memory as in section 3. "Then" = the peak again while the '
        "finished batch's page, partial, every export and `GET /api/v1/batches/<id>/` are "
        "fetched once each. Web VmHWM = the web processes' own high-water marks at the end, "
        "summed (it catches a spike between two samples).",
        "",
        "| documents | time | peak RSS sum | web | cluster | processes | largest process "
        "| peak PSS sum | then: RSS (web) | web VmHWM | cluster CPU per document | outcome |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for case in cases:
        memory, then = case.processing, case.finished
        outcome = ", ".join(f"{k}: {v}" for k, v in sorted(case.outcome.items()))
        lines.append(
            f"| {case.documents} | {case.seconds:.1f} s | {_mb(memory.rss_kb)} "
            f"| {_mb(memory.by_tree_kb.get('web', 0))} "
            f"| {_mb(memory.by_tree_kb.get('cluster', 0))} "
            f"| {memory.processes} | {_mb(memory.largest_kb)} | {_mb(memory.pss_kb)} "
            f"| {_mb(then.rss_kb)} ({_mb(then.by_tree_kb.get('web', 0))}) "
            f"| {_mb(case.web_hwm_kb)} "
            f"| {case.cpu_ms:.1f} ms | {outcome} |"
        )
    if len(cases) >= 2:
        small, large = cases[0], cases[-1]
        lines += ["", "| figure | ratio | target | result |", "|---|---:|---|---|"]
        for label, attr in (("RSS", "rss_kb"), ("PSS", "pss_kb")):
            ratio = getattr(large.processing, attr) / max(getattr(small.processing, attr), 1)
            target = label == "RSS"
            lines.append(
                f"| peak {label}, {large.documents} / {small.documents} documents | {ratio:.2f} "
                f"| {f'<= {RSS_GROWTH_TARGET:g}' if target else ''} "
                f"| {verdict(ratio <= RSS_GROWTH_TARGET) if target else ''} |"
            )
        ratio = large.finished.rss_kb / max(small.finished.rss_kb, 1)
        lines.append(
            f"| peak RSS with pages and exports, {large.documents} / {small.documents} "
            f"| {ratio:.2f} | | |"
        )
    statuses: Counter[int | str] = Counter()
    for case in cases:
        statuses.update(case.statuses)
    others = ", ".join(f"{case.others_cpus:.2f}" for case in cases)
    lines += [
        "",
        "Web requests: "
        + ", ".join(f"{code}: {n}" for code, n in sorted(statuses.items(), key=str))
        + f". CPUs used by other processes meanwhile, by size: {others}.",
        "",
    ]
    return lines


def http_report(bench: Bench, result: HttpResult) -> list[str]:
    lines = [
        "### 7. Dashboard and API under load while a batch runs",
        "",
    ]
    if not result.cases:
        return [*lines, f"Not run: wrk {result.wrk} (Debian: `apt-get install wrk`).", ""]
    lines += [
        f"{result.wrk} on this machine (`wrk -t{bench.args.http_threads} "
        f"-c{bench.args.http_connections} -d{bench.args.http_seconds:g}s`, "
        "`bench/wrk_report.lua` prints its percentiles; the session cookie or `Authorization: "
        f"Bearer` key as `-H`) against `gunicorn batchsite.wsgi --workers {result.web_workers}` "
        "(README's production command), one endpoint after the other, while a cluster (1 worker "
        f"process, SHEAF_CONCURRENCY={bench.args.http_concurrency}) works one batch of "
        f"{result.documents} documents (Growth's files per batch) on the sleep engine with L = "
        f"{result.latency:g} s, chosen so the batch lasts through every endpoint's run: the "
        "pages show a batch whose documents change state while they are loaded. wrk is a "
        "closed loop: the rate is what the server gives its connections. Errors = socket "
        "errors, timeouts and non-2xx answers. Each endpoint first gets an unmeasured "
        f"{bench.args.http_warmup_seconds:g} s run, so that every gunicorn worker has loaded "
        "its templates and code. Web CPU per request = CPU of gunicorn's processes during the "
        "run / requests; CPU-bound req/s = CPUs / that, the most this machine could serve with "
        "nothing else running (wrk, the cluster and other people's processes take their share "
        "first). Queries and view time: the same request in the bench's own process (Django's "
        "test client, no network), after the run.",
        "",
        "| endpoint | req/s | p50 | p95 | p99 | max | errors | target | result | queries "
        "| view time in process | web CPU per request | CPU-bound req/s "
        "| documents completed meanwhile | other processes' CPUs |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for case in result.cases:
        lines.append(
            f"| {case.name} `{case.shown_path}` "
            f"| {case.rate:.0f} | {case.p50_ms:.1f} ms | {case.p95_ms:.1f} ms "
            f"| {case.p99_ms:.1f} ms | {case.max_ms:.0f} ms | {case.errors} "
            f"| p95 <= {HTTP_P95_TARGET_MS:g} ms at >= {HTTP_RATE_TARGET:g} req/s "
            f"| {verdict(case.passed)} | {case.queries} | {case.in_process_ms:.1f} ms "
            f"| {case.web_cpu_ms:.1f} ms | {case.cpu_bound_rate:.0f} "
            f"| {case.completed_during}{'' if case.batch_running else ' (finished)'} "
            f"| {case.others_cpus:.2f} |"
        )
    lines.append("")
    return lines


def read_report(bench: Bench, result: ReadBench) -> list[str]:
    raw, sheaf = statistics.median(result.raw), statistics.median(result.sheaf)
    skipped = "; ".join(f"`{name}` ({why})" for name, why in sorted(result.skipped.items()))
    return [
        "### 8. Reading PDFs: Sheaf's reader against pypdf",
        "",
        f"The {len(result.files)} corpus PDFs that both read ({result.pages} pages); raw pypdf "
        '= `PdfReader(path)`, `decrypt("")` when encrypted, `extract_text()` of every page, in '
        "a fresh `python -I` that imports only pypdf, like the reader's child (in the bench's "
        "own process Django's heap slows pypdf's garbage collections), after one untimed pass; "
        "Sheaf = `documents.readers.read_document` (the sandboxed child "
        "pool of `documents/pdf_sandbox.py`, warm, one read at a time). Each round reads every "
        f"file {bench.args.read_passes} times with each, alternating which goes first; median "
        f"of {len(result.raw)} rounds, each round's rate in brackets; the result is the median "
        "of each round's Sheaf / pypdf, the two having run back to back. CPU per page: pypdf's "
        "interpreter; for Sheaf the bench's process and the reader's children; it does not "
        "depend on other load.",
        "",
        "| reader | pages/s | CPU per page | target | result |",
        "|---|---:|---:|---|---|",
        f"| raw pypdf `extract_text` | {raw:.0f} [{' '.join(f'{r:.0f}' for r in result.raw)}] "
        f"| {result.raw_cpu_ms:.2f} ms | | |",
        f"| Sheaf, one read at a time | {sheaf:.0f} "
        f"[{' '.join(f'{r:.0f}' for r in result.sheaf)}] | {result.sheaf_cpu_ms:.2f} ms "
        f"| >= {READ_TARGET:g} x pypdf "
        f"| {verdict(result.ratio >= READ_TARGET)} ({result.ratio:.2f} x "
        f"[{' '.join(f'{r:.2f}' for r in result.ratios)}]) |",
        f"| Sheaf, {result.processes} reads at once (the pool's size) "
        f"| {result.sheaf_parallel:.0f} | | | |",
        "",
        f"CPU per page, Sheaf / pypdf: {result.sheaf_cpu_ms / result.raw_cpu_ms:.2f}.",
        "",
        f"Not counted: {skipped or 'none'}.",
        "",
    ]


# --- Report ---------------------------------------------------------------------------------------


def verdict(passed: bool) -> str:
    return "pass" if passed else "**FAIL**"


def _workers(bench: Bench) -> str:
    workers = bench.args.workers
    return f"{workers} worker process" + ("es" if workers > 1 else "")


def code_version(label: str | None) -> str:
    """The commit measured (and whether the tree had changes), plus a digest of the app's Python
    sources, so a figure can be tied to the code it came from."""
    digest = hashlib.sha256()
    packages = [
        top
        for top in sorted(REPO.iterdir())
        if (top / "__init__.py").is_file() and top.name not in {"bench", "tests"}
    ]
    for package in packages:
        for path in sorted(package.rglob("*.py")):
            digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    if label is None:
        git = shutil.which("git")
        describe = subprocess.run(  # noqa: S603
            [git or "git", "-C", str(REPO), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
        )
        label = describe.stdout.strip() or "not a git checkout"
    return f"{label}; app sources sha256 {digest.hexdigest()[:12]}"


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


def report(
    bench: Bench,
    overhead_result: Overhead | None,
    cases: list[ThroughputCase] | None,
    poller: PagePoller | None,
    claude: list[ClaudeCase] | None,
    elapsed: float,
    more: dict[str, Any] | None = None,
) -> str:
    lines = [f"## Results on {bench.database}", ""]
    lines += ["| | |", "|---|---|"]
    lines += [
        f"| {key} | {value} |"
        for key, value in machine(
            bench.database, code_version(bench.args.code_label), bench.args.command
        )
    ]
    lines += [
        f"| load average (1 min) at start / end | {bench.load[0]:.2f} / {os.getloadavg()[0]:.2f} |",
        f"| bench wall time | {elapsed:.0f} s |",
        "",
    ]
    if overhead_result:
        overhead = overhead_result.runs
        k = bench.args.k
        task = statistics.median(run.task_ms for run in overhead)
        doc = statistics.median(run.document_ms for run in overhead)
        diff = statistics.median(run.difference_ms for run in overhead)
        lines += [
            "### 1. Per-document overhead, `local` engine",
            "",
            f"1 worker process, SHEAF_CONCURRENCY=1, K={k} per run, {len(overhead)} runs "
            "(median; range in brackets). Interval = (last - first completion) / (count - 1), "
            f"over the K documents, and over the last {min(k, save_limit())} no-op tasks "
            f"(django-q2 keeps only its last save_limit = {save_limit()} results); "
            "end to end = (last completion - first enqueue or claim) / K.",
            "",
            "| figure | value | target | result |",
            "|---|---|---|---|",
            f"| no-op django-q2 task, interval | {task:.2f} ms {_range(overhead, 'task_ms')} | | |",
            f"| document (claim, read TXT, extract, complete), interval | {doc:.2f} ms "
            f"{_range(overhead, 'document_ms')} | | |",
            f"| **document - task** | **{diff:+.2f} ms** {_range(overhead, 'difference_ms')} "
            f"| <= +{OVERHEAD_TARGET_MS:.0f} ms | {verdict(diff <= OVERHEAD_TARGET_MS)} |",
            f"| no-op task, end to end | {statistics.median(r.task_e2e_ms for r in overhead):.2f}"
            " ms | | |",
            f"| document, end to end | "
            f"{statistics.median(r.document_e2e_ms for r in overhead):.2f} ms | | |",
            f"| one document, claim to completed | "
            f"{statistics.median(r.document_busy_ms for r in overhead):.2f} ms | | |",
            f"| no-op task, django-q2 result table full ({save_limit()} stored) | "
            f"{overhead_result.task_full_table_ms:.2f} ms | | |",
            f"| cluster CPU per no-op task | {_median(overhead, 'task_cpu_ms'):.2f} ms | | |",
            f"| cluster CPU per document | {_median(overhead, 'document_cpu_ms'):.2f} ms | | |",
            f"| cluster CPU, document - task | {_median(overhead, 'cpu_difference_ms'):+.2f} ms "
            f"{_range(overhead, 'cpu_difference_ms')} | | |",
            f"| CPUs used by other processes meanwhile | "
            f"{_median(overhead, 'others_cpus'):.2f} {_range(overhead, 'others_cpus')} | | |",
            "",
            "Each no-op run starts from an empty django-q2 result table and enqueues its K tasks "
            "in one transaction; the table-full row is the same measurement with the table at "
            "its save_limit, as it stays in a long-running deployment. Cluster CPU is the "
            "user + system time of every cluster process (sentinel, pusher, monitor, worker) "
            "over the run, divided by K: it does not depend on what else the machine is doing, "
            "unlike the intervals." + _server_note(bench),
            "",
        ]
    if cases:
        lines += [
            "### 2. Throughput, engine sleeping L seconds, N documents in flight",
            "",
            f"{_workers(bench)}, SHEAF_CONCURRENCY=N, rounds x N documents in one batch (at least "
            f"{bench.args.rounds} rounds and 5 s of work). Steady state leaves out the first and "
            "the last round. Overall = documents / (batch created -> last completion). "
            "Busy = mean claim -> completed of one document (L plus the pipeline's own time). "
            "Each case's cluster first drains a 1-document warm-up batch. "
            f"Cases with under {SHORT_CASE_SECONDS:g} s of work run {bench.args.short_repeats} "
            "batches one after another on the same cluster: median shown, each run's ratio in "
            "brackets; the memory columns below take the highest peak of the runs."
            + _server_note(bench),
            "",
            "| N | L | documents | steady docs/s | bound N/L | ratio | target | result "
            "| overall docs/s | busy per document | cluster CPU per document "
            "| other processes' CPUs |",
            "|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---:|---:|",
        ]
        for case in cases:
            lines.append(
                f"| {case.concurrency} | {case.latency:g} s | {case.documents} "
                f"| {case.steady_per_s:.1f} | {case.bound:.1f} | {case.ratio:.1%}{_ratios(case)} "
                f"| >= {THROUGHPUT_TARGET:.0%} | {verdict(case.ratio >= THROUGHPUT_TARGET)} "
                f"| {case.overall_per_s:.1f} | {case.busy_s:.3f} s | {case.cpu_ms:.1f} ms "
                f"| {case.others_cpus:.2f} |"
            )
        lines += [
            "",
            "### 3. Peak memory, web + workers",
            "",
            f"{web_description(bench)} polled every 2 s on the batch's progress "
            f"partial, and the cluster (sentinel, pusher, monitor, {_workers(bench)}); every "
            f"process of both trees sampled every {SAMPLE_SECONDS:g} s. RSS counts pages shared "
            "by the forked cluster processes once per process; PSS divides them.",
            "",
            "| N | L | peak RSS sum | web | cluster | processes | largest process "
            "| peak PSS sum | target | result |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
        ]
        for case in cases:
            memory = case.memory
            rss = memory.rss_kb / 1024
            target = case.concurrency == RSS_TARGET_CONCURRENCY
            lines.append(
                f"| {case.concurrency} | {case.latency:g} s | {rss:.0f} MB "
                f"| {memory.by_tree_kb.get('web', 0) / 1024:.0f} MB "
                f"| {memory.by_tree_kb.get('cluster', 0) / 1024:.0f} MB | {memory.processes} "
                f"| {memory.largest_kb / 1024:.0f} MB "
                f"| {memory.pss_kb / 1024:.0f} MB "
                f"| {f'< {RSS_TARGET_MB:.0f} MB' if target else ''} "
                f"| {verdict(rss < RSS_TARGET_MB) if target else ''} |"
            )
        if poller is not None:
            statuses = ", ".join(
                f"{code}: {n}" for code, n in sorted(poller.statuses.items(), key=str)
            )
            mean = statistics.fmean(poller.latencies) * 1000 if poller.latencies else 0.0
            lines += [
                "",
                f"Web requests during the runs: {statuses or 'none'} (mean {mean:.0f} ms).",
            ]
        lines.append("")
    if claude:
        lines += claude_report(bench, claude)
    more = more or {}
    if more.get("upload"):
        lines += upload_report(bench, more["upload"])
    if more.get("rss"):
        lines += rss_report(bench, more["rss"])
    if more.get("http"):
        lines += http_report(bench, more["http"])
    if more.get("read"):
        lines += read_report(bench, more["read"])
    return "\n".join(lines)


def claude_report(bench: Bench, cases: list[ClaudeCase]) -> list[str]:
    lines = [
        "### 4. Claude engine against the fake Anthropic API, rate-limited",
        "",
        "`tests.support.fake_anthropic.FakeAnthropic` in the bench's own process (a thread "
        "serving loopback HTTP): every `POST /v1/messages` answers after L seconds, unless it "
        "would exceed R requests per minute, which it answers at once with 429 and "
        "`retry-after`. Its bucket refills continuously at R / 60 a second and holds B seconds "
        "of the limit (the real API may enforce 60 RPM as 1 request a second), so the limit "
        "binds after a short burst; its rate-limit headers (limit, remaining, and reset = when "
        "the bucket is full again) come with every answer. The cluster: 1 worker process, "
        "SHEAF_CONCURRENCY=N, SHEAF_EXTRACTION_ENGINE=anthropic, ANTHROPIC_BASE_URL=the fake, "
        "SHEAF_RETRY_BASE_SECONDS=1, the rest as in production (SHEAF_MAX_ATTEMPTS 3). A "
        "1-document warm-up batch, then the bucket is refilled and one batch of M distinct TXT "
        f"invoices (about {bench.args.claude_seconds:g} s of work at the bound) is created. "
        "Bound = min(N / L, R / 60). Steady = documents completed per second between 20% and "
        "80% of the completions: the slope of a least-squares line through all of them, and in "
        "brackets the plain (count difference) / (time difference) of the window's two ends, "
        "which swings by tens of percent from run to run when documents complete in bursts "
        "seconds apart (the result is taken on the slope). 429 share = answers 429 among the "
        "batch's `POST /v1/messages`; after settling = among those that arrived in the second "
        "half of the time between the first and the last request. Longest pause = the longest "
        "time between two requests of the batch. Documents retried = documents that needed "
        "more than one attempt; since issue 14 a 429 spends no attempt, so documents held back "
        "only by the rate limit are not counted (the 429 share shows them).",
        "",
        "| N | L | R | B | M | steady docs/s (ends) | bound min(N/L, R/60) | ratio (ends) "
        "| target | result | requests per document | 429 share, all "
        "| 429 share, after settling | longest pause | failed documents | documents retried "
        "| cluster CPU per document | peak RSS, cluster |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for case in cases:
        retried = sum(count for attempts, count in case.attempts.items() if attempts > 1)
        lines.append(
            f"| {case.concurrency} | {case.latency:g} s | {case.rpm}/min "
            f"| {case.burst_seconds:g} s | {case.documents} "
            f"| {case.steady_per_s:.1f} ({case.ends_per_s:.1f}) | {case.bound:.1f} "
            f"| {case.ratio:.1%} ({case.ends_per_s / case.bound:.1%}) "
            f"| >= {THROUGHPUT_TARGET:.0%} | {verdict(case.ratio >= THROUGHPUT_TARGET)} "
            f"| {case.requests / case.documents:.2f} "
            f"| {case.share_429:.1%} ({case.statuses[429]} of {case.requests}) "
            f"| {case.late_share_429:.1%} ({case.late_statuses[429]} of "
            f"{sum(case.late_statuses.values())}) | {case.longest_pause:.1f} s "
            f"| {case.failed} | {retried} | {case.cpu_ms:.1f} ms "
            f"| {case.memory.rss_kb / 1024:.0f} MB |"
        )
    others: Counter[int] = Counter()
    for case in cases:
        others.update({k: v for k, v in case.statuses.items() if k not in (200, 429)})
    verified = ", ".join(f"{case.verified_share:.0%}" for case in cases)
    lines += [
        "",
        "The issue gives no number for the 429 share; it is reported as measured. Other "
        f"answers: {', '.join(f'{k}: {v}' for k, v in sorted(others.items())) or 'none'}. "
        f"Values the engine marked verified (quote found in the text), by case: {verified}; "
        "cost it recorded for all cases (price table of `claude-haiku-4-5`): "
        f"${sum(case.cost_usd for case in cases):.4f}.",
        "",
    ]
    return lines


def _ratios(case: ThroughputCase) -> str:
    if len(case.runs) < 2:
        return ""
    return " [" + " ".join(f"{ratio:.1%}" for ratio in case.ratios) + "]"


def _server_note(bench: Bench) -> str:
    if bench.args.database != "postgres":
        return ""
    return (
        " On PostgreSQL the database server's processes are not in the cluster's tree: their "
        "CPU is counted under other processes."
    )


def _median(runs: list[OverheadRun], attr: str) -> float:
    return statistics.median(getattr(run, attr) for run in runs)


def _range(runs: list[OverheadRun], attr: str) -> str:
    values = [getattr(run, attr) for run in runs]
    return f"[{min(values):.2f} .. {max(values):.2f}]" if len(values) > 1 else ""


def write_report(path: Path, results: str, database: str) -> None:
    """Replace this database's results block in `path`, keeping everything written around it."""
    start, end = f"<!-- bench:{database}:start -->", f"<!-- bench:{database}:end -->"
    block = f"{start}\n{results}\n{end}"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if start in text and end in text:
        head, _, rest = text.partition(start)
        _, _, tail = rest.partition(end)
        text = head + block + tail
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


# --- Main -----------------------------------------------------------------------------------------


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
    parser.add_argument("--only", choices=BENCHMARKS, help="run one benchmark, print only")
    parser.add_argument("-k", "--k", type=int, default=300, help="tasks and documents per run")
    parser.add_argument("--repeats", type=int, default=5, help="overhead runs (median reported)")
    parser.add_argument("--concurrency", type=_numbers(int), default=[8, 32, 64])
    parser.add_argument("--latency", type=_numbers(float), default=[0.5, 2.0])
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes in the throughput cases"
    )
    parser.add_argument(
        "--web",
        choices=["gunicorn", "runserver"],
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
        "checkout or a parent of it)",
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
    parser.add_argument("--read-rounds", type=int, default=5, help="rounds of the read benchmark")
    parser.add_argument(
        "--read-passes", type=int, default=10, help="reads of every corpus PDF per round and reader"
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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    tmp = Path(tempfile.mkdtemp(prefix="sheaf-bench-"))
    started = time.monotonic()
    try:
        with database(args.database, tmp, args.postgres_url) as (url, description):
            bench = Bench(args=args, tmp=tmp, env=base_env(tmp, url), database=description)
            log(f"{description}; work directory {tmp}")
            setup_django(bench)
            overhead = bench_overhead(bench) if args.only in (None, "overhead") else None
            cases, poller = (
                bench_throughput(bench) if args.only in (None, "throughput") else (None, None)
            )
            claude = bench_claude(bench) if args.only in (None, "claude") else None
            more: dict[str, Any] = {}
            for name, run in (
                ("upload", bench_upload),
                ("rss", bench_rss),
                ("http", bench_http),
                ("read", bench_read),
            ):
                if args.only in (None, name):
                    more[name] = run(bench)
            from django.db import connections

            connections.close_all()
        results = report(bench, overhead, cases, poller, claude, time.monotonic() - started, more)
        print()
        print(results)
        if args.no_write or args.only:
            log(f"not written to {args.output} (--no-write or --only)")
        else:
            write_report(args.output, results, args.database)
            log(f"wrote the {args.database} results to {args.output}")
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
