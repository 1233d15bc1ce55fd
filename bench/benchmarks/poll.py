"""10. `poll`: the web server's CPU per conditional poll that answers 304 (the progress partial
with a session, `GET /api/v1/batches/<id>/` with a Bearer key) against a bare Django view behind
the same authentication that answers `ok`, side by side in one run on one gunicorn worker."""

from __future__ import annotations

import dataclasses
import statistics
import threading
from dataclasses import dataclass, field

from bench.harness import Bench, create_batch
from bench.inputs import invoices
from bench.measurement import CpuMeter
from bench.processes import log
from bench.report import verdict
from bench.web import api_key, fetch, running_web, session_cookie

POLL_CPU_TARGET = 1.5  # a 304 costs at most this many times the bare view's CPU
CLIENTS = 4  # threads sending requests at once (gunicorn's one sync worker takes them in turn)


@dataclass
class PollCase:
    name: str
    path: str
    auth: str  # "cookie" or "bearer"
    conditional: bool  # sent with If-None-Match (expects 304)
    status: int = 0
    cpu_ms: list[float] = field(default_factory=list)  # per request, one figure a round

    @property
    def median_ms(self) -> float:
        return statistics.median(self.cpu_ms) if self.cpu_ms else 0.0


@dataclass
class PollResult:
    cases: list[PollCase]
    requests: int
    rounds: int


def _load(base_url: str, path: str, headers: dict[str, str], requests: int) -> set[int]:
    """`requests` GETs from CLIENTS threads; the statuses they got."""
    statuses: set[int] = set()
    left = [requests]
    lock = threading.Lock()

    def client() -> None:
        while True:
            with lock:
                if left[0] <= 0:
                    return
                left[0] -= 1
            answer = fetch(base_url, path, headers=headers, timeout=30)
            with lock:
                statuses.add(answer.status)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def measure(bench: Bench) -> PollResult:
    from batches import services

    args = bench.args
    batch = create_batch(bench, invoices(20), engine="local", name="poll")
    batch = services.batch_cancel(batch=batch)  # finished: nothing changes while it is polled
    cookie, key = session_cookie(bench), api_key(bench)
    auth = {"cookie": {"Cookie": cookie}, "bearer": {"Authorization": f"Bearer {key}"}}
    partial = f"/dashboard/batches/{batch.pk}/progress/"
    cases = [
        PollCase("bare view, session", "/bench/ok/", "cookie", False),
        PollCase("progress partial 304", partial, "cookie", True),
        PollCase("bare API view, Bearer", "/bench/api-ok/", "bearer", False),
        PollCase("API batch 304", f"/api/v1/batches/{batch.pk}/", "bearer", True),
        PollCase("progress partial 200", partial, "cookie", False),
        PollCase("API batch 200", f"/api/v1/batches/{batch.pk}/", "bearer", False),
    ]
    served = dataclasses.replace(
        bench, env={**bench.env, "DJANGO_SETTINGS_MODULE": "bench.settings"}
    )
    log(
        f"poll: {args.poll_requests} requests a case a round, {args.poll_rounds} rounds, "
        f"{CLIENTS} clients, gunicorn --workers 1"
    )
    with running_web(served, workers=1) as (web, base_url):
        headers: dict[str, dict[str, str]] = {}
        for case in cases:
            headers[case.name] = dict(auth[case.auth])
            if case.conditional:
                first = fetch(base_url, case.path, headers=headers[case.name])
                headers[case.name]["If-None-Match"] = first.headers["ETag"]
            _load(base_url, case.path, headers[case.name], 50)  # warm
        for _ in range(args.poll_rounds):  # the cases interleaved, so drift hits them alike
            for case in cases:
                with CpuMeter([web.pid]) as cpu:
                    statuses = _load(base_url, case.path, headers[case.name], args.poll_requests)
                if statuses != {304 if case.conditional else 200}:
                    raise RuntimeError(f"{case.path} answered {statuses}")
                case.status = statuses.pop()
                case.cpu_ms.append(cpu.seconds / args.poll_requests * 1000)
        for case in cases:
            log(f"  {case.name:<24} {case.median_ms:6.2f} ms CPU a request ({case.status})")
    return PollResult(cases, args.poll_requests, args.poll_rounds)


def report(bench: Bench, result: PollResult) -> list[str]:
    by_name = {case.name: case for case in result.cases}
    lines = [
        "### 10. A 304 poll against a bare view",
        "",
        f"`gunicorn batchsite.wsgi --workers 1` with `bench.settings` (Sheaf's settings and URLs "
        "plus two bare views that answer `ok`: `@login_required`, and a DRF `APIView` with the "
        "default authentication, permission and plan rate throttle); a finished batch of 20 "
        f"documents; {CLIENTS} client threads, {result.requests} requests a case a round, the "
        f"cases interleaved over {result.rounds} rounds; web CPU per request = CPU of gunicorn's "
        "processes during the round / requests, median over the rounds. The 304s send the "
        "ETag of a first answer as `If-None-Match`; the 200s are the same reads drawn in full.",
        "",
        "| request | status | web CPU per request | against the bare view | target | result |",
        "|---|---:|---:|---:|---|---|",
    ]
    floors = {"cookie": by_name["bare view, session"], "bearer": by_name["bare API view, Bearer"]}
    for case in result.cases:
        floor = floors[case.auth]
        ratio = case.median_ms / floor.median_ms if floor.median_ms else 0.0
        target = f"<= {POLL_CPU_TARGET:g}x" if case.conditional else ""
        passed = verdict(ratio <= POLL_CPU_TARGET) if case.conditional else ""
        shown = "" if case is floor else f"{ratio:.2f}x"
        lines.append(
            f"| {case.name} | {case.status} | {case.median_ms:.2f} ms | {shown} | {target} "
            f"| {passed} |"
        )
    lines.append("")
    return lines
