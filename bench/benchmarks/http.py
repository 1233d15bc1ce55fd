"""7. The dashboard and the API under load (wrk against `gunicorn --workers 4`) while a batch
runs on the sleep engine; queries per request and the view's own time in this process after."""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import time
from dataclasses import dataclass
from typing import Any

from bench.harness import Bench, create_batch, wait_batch
from bench.inputs import invoices
from bench.measurement import CpuMeter
from bench.processes import REPO, log
from bench.report import verdict
from bench.web import api_key, fetch, running_web, session_cookie

HTTP_P95_TARGET_MS = 50.0
HTTP_RATE_TARGET = 500.0


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


def measure(bench: Bench) -> HttpResult:
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
    cookie, key = session_cookie(bench), api_key(bench)
    cases: list[HttpCase] = []
    with (
        running_web(bench, workers=args.http_web_workers) as (web, base_url),
        bench.start_cluster(
            SHEAF_WORKERS="1", SHEAF_CONCURRENCY=str(n), SHEAF_BENCH_LATENCY=str(latency)
        ) as cluster,
    ):
        warm = create_batch(bench, invoices(1), engine="sleep", name="warm-up http")
        wait_batch(warm, timeout=60 + latency * 4, cluster=cluster)
        batch = create_batch(bench, invoices(documents), engine="sleep", name="http load")
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
            check = fetch(base_url, path, headers={header_name: header_value})
            if check.status != 200:
                raise RuntimeError(f"{path} answered {check.status}: {check.body[:300]!r}")
            # Every gunicorn worker's first requests load templates and code: not measured.
            run_wrk(bench, wrk, base_url + path, headers[auth], args.http_warmup_seconds)
            before = done.count()
            with CpuMeter([web.pid, cluster.pid]) as cpu, CpuMeter([web.pid]) as web_cpu:
                summary = run_wrk(bench, wrk, base_url + path, headers[auth], args.http_seconds)
            batch.refresh_from_db()
            errors = sum(
                summary[kind]
                for kind in (
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
    profile_views(bench, cases, {"cookie": {}, "bearer": {"HTTP_AUTHORIZATION": f"Bearer {key}"}})
    return HttpResult(cases, documents, latency, args.http_web_workers, wrk_version(wrk))


def report(bench: Bench, result: HttpResult) -> list[str]:
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
