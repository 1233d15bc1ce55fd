"""11. `live`: live events over `/ws/events/` on daphne (the production server), side by side
without a channel layer (each web process tails the event log) and with Redis (REDIS_URL for the
web server and the cluster):

- delivery latency: one WebSocket client (Bearer key) follows the user's events while a batch of
  M documents runs on the sleep engine at about N / L documents per second; latency = when the
  client reads a `document.completed` frame minus its `data.document.completed_at` (the worker's
  clock: the same machine's). Every document must arrive, once.
- memory: daphne's RSS (and PSS) idle, then with C idle WebSocket connections held open (API keys
  and sessions, half narrowed with `?batch=`) for H seconds, heartbeats included.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import resource
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import websockets

from bench.harness import Bench, create_batch, wait_batch
from bench.inputs import invoices
from bench.measurement import MemoryPeak, MemorySampler, TreeUsage, percentile, tree_usage
from bench.processes import Process, log, wait_for
from bench.report import mb, verdict
from bench.web import api_key, fetch, running_web, session_cookie

LATENCY_P95_TARGET_S = 1.0
MEMORY_TARGET_MB = 200.0
OPENING_AT_ONCE = 50  # handshakes in flight while the connections open
COMPLETED = "document.completed"


@dataclass
class LatencyRun:
    documents: int
    received: int  # document.completed frames of the batch
    distinct: int  # documents among them
    latencies: list[float]  # seconds, one per frame
    rate_per_s: float  # completions per second over the batch (first to last completion)

    def p(self, q: float) -> float:
        return percentile(self.latencies, q)


@dataclass
class MemoryRun:
    connections: int
    opened: int  # accepted and still open at the end of the hold
    refused: Counter[str]
    heartbeats: int
    idle: TreeUsage
    held: TreeUsage  # at the end of the hold
    peak: MemoryPeak  # over the hold

    @property
    def added_rss_kb(self) -> int:
        return self.held.rss_kb - self.idle.rss_kb

    @property
    def added_pss_kb(self) -> int:
        return self.held.pss_kb - self.idle.pss_kb


@dataclass
class LiveCase:
    name: str  # "log tail" / "Redis"
    memory: MemoryRun | None = None
    latency: LatencyRun | None = None


@dataclass
class LiveResult:
    cases: list[LiveCase]
    skipped: list[str] = field(default_factory=list)


def _raise_open_files(needed: int) -> None:
    """The bench holds every client socket, and daphne (which inherits the limit) every server
    one: raise the soft limit of open files to the hard one when it is below `needed`."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        wanted = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        log(f"live: open files limit raised from {soft} to {wanted}")


def _redis_up(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


# --- Delivery latency ----------------------------------------------------------------------------


class Listener(threading.Thread):
    """One WebSocket client in a thread of its own (the bench's thread makes batches through the
    ORM meanwhile): every `document.completed` frame with the time it was read."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        super().__init__(name="bench-live-listener", daemon=True)
        self.url = url
        self.headers = headers
        self.frames: list[tuple[float, dict[str, Any]]] = []
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._done: asyncio.Event | None = None

    def run(self) -> None:
        asyncio.run(self._listen())

    async def _listen(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._done = asyncio.Event()
        try:
            async with websockets.connect(
                self.url, additional_headers=self.headers, ping_interval=None
            ) as socket:
                self.ready.set()
                reader = asyncio.create_task(self._read(socket))
                await self._done.wait()
                reader.cancel()
        except Exception as exc:
            self.error = exc
        finally:
            self.ready.set()

    async def _read(self, socket: Any) -> None:
        async for message in socket:
            now = time.time()
            frame = json.loads(message)
            if frame.get("type") == COMPLETED:
                self.frames.append((now, frame))

    def count(self, batch_id: str) -> int:
        return sum(1 for _, frame in list(self.frames) if frame["data"]["batch"]["id"] == batch_id)

    def close(self) -> None:
        if self._loop is not None and self._done is not None:
            self._loop.call_soon_threadsafe(self._done.set)
        self.join(10)


def _latency_run(bench: Bench, base_url: str, key: str) -> LatencyRun:
    from documents.models import Document

    args = bench.args
    documents = args.live_documents
    work_s = documents * args.live_latency / args.live_concurrency
    with bench.start_cluster(
        SHEAF_WORKERS="1",
        SHEAF_CONCURRENCY=str(args.live_concurrency),
        SHEAF_BENCH_LATENCY=str(args.live_latency),
    ) as cluster:
        warm = create_batch(bench, invoices(1), engine="sleep", name="live warm-up")
        wait_batch(warm, timeout=60 + args.live_latency * 4, cluster=cluster)
        listener = Listener(
            base_url.replace("http://", "ws://") + "/ws/events/",
            {"Authorization": f"Bearer {key}"},
        )
        listener.start()
        listener.ready.wait(30)
        if listener.error is not None or not listener.is_alive():
            raise RuntimeError(f"the live client could not connect: {listener.error}")
        try:
            batch = create_batch(bench, invoices(documents), engine="sleep", name="live latency")
            wait_batch(batch, timeout=60 + work_s * 4, cluster=cluster)
            batch_id = str(batch.pk)
            with contextlib.suppress(TimeoutError):  # what is missing is reported, not raised
                wait_for(
                    lambda: listener.count(batch_id) >= documents,
                    timeout=10,
                    what="the last events",
                )
        finally:
            listener.close()
    frames = [(at, f) for at, f in listener.frames if f["data"]["batch"]["id"] == batch_id]
    latencies = [
        at - dt.datetime.fromisoformat(frame["data"]["document"]["completed_at"]).timestamp()
        for at, frame in frames
    ]
    completed = sorted(
        stamp.timestamp()
        for stamp in Document.objects.filter(batch=batch).values_list("completed_at", flat=True)
    )
    return LatencyRun(
        documents=documents,
        received=len(frames),
        distinct=len({frame["data"]["document"]["id"] for _, frame in frames}),
        latencies=latencies,
        rate_per_s=(len(completed) - 1) / (completed[-1] - completed[0]),
    )


# --- Memory of idle connections ------------------------------------------------------------------


@dataclass
class _Held:
    sockets: list[Any] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)
    frames: Counter[str] = field(default_factory=Counter)


def _variants(
    base_url: str, key: str, cookie: str, batch_id: str
) -> list[tuple[str, dict[str, str]]]:
    """(URL, headers) of the kinds of connection, taken in turn: an API client (Bearer key) and a
    dashboard page (session cookie, from the site's own origin), each following all the user's
    events or one batch's."""
    url = base_url.replace("http://", "ws://") + "/ws/events/"
    bearer = {"Authorization": f"Bearer {key}"}
    page = {"Cookie": cookie, "Origin": base_url}
    return [
        (url, bearer),
        (f"{url}?batch={batch_id}", bearer),
        (url, page),
        (f"{url}?batch={batch_id}", page),
    ]


async def _open(variants: list[tuple[str, dict[str, str]]], count: int, held: _Held) -> None:
    gate = asyncio.Semaphore(OPENING_AT_ONCE)

    async def one(n: int) -> None:
        url, headers = variants[n % len(variants)]
        async with gate:
            try:
                socket = await websockets.connect(
                    url, additional_headers=headers, ping_interval=None, open_timeout=60
                )
            except Exception as exc:
                held.refused[type(exc).__name__] += 1
                return
        held.sockets.append(socket)

    await asyncio.gather(*(one(n) for n in range(count)))


async def _read_all(held: _Held) -> None:
    async def read(socket: Any) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for message in socket:
                held.frames[json.loads(message).get("type", "?")] += 1

    await asyncio.gather(*(read(socket) for socket in held.sockets))


async def _hold(
    variants: list[tuple[str, dict[str, str]]], count: int, hold_s: float, web: Process
) -> tuple[_Held, int, TreeUsage, MemoryPeak]:
    """Open `count` connections, hold them `hold_s` seconds reading what comes (heartbeats),
    sample the server meanwhile; (held, still open, usage at the end, peak)."""
    held = _Held()
    await _open(variants, count, held)
    readers = asyncio.create_task(_read_all(held))
    with MemorySampler() as sampler:
        sampler.watch({"web": web.pid})
        await asyncio.sleep(hold_s)
        usage = tree_usage(web.pid)
        peak = sampler.peak()
    held.refused.update(
        f"closed by daphne ({socket.close_code})"
        for socket in held.sockets
        if socket.close_code is not None
    )
    still_open = sum(1 for socket in held.sockets if socket.close_code is None)
    await asyncio.gather(*(socket.close() for socket in held.sockets), return_exceptions=True)
    readers.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await readers
    return held, still_open, usage, peak


def _memory_run(
    bench: Bench, web: Process, base_url: str, key: str, cookie: str, batch_id: str
) -> MemoryRun:
    args = bench.args
    variants = _variants(base_url, key, cookie, batch_id)
    # Warm: every kind of connection once, so the first connection's imports count as idle.
    asyncio.run(_hold(variants, len(variants), 0.5, web))
    time.sleep(1.0)
    idle = tree_usage(web.pid)
    held, still_open, usage, peak = asyncio.run(
        _hold(variants, args.live_connections, args.live_hold, web)
    )
    if not web.alive():
        raise RuntimeError(f"daphne died:\n{web.tail()}")
    return MemoryRun(
        connections=args.live_connections,
        opened=still_open,
        refused=held.refused,
        heartbeats=held.frames["heartbeat"],
        idle=idle,
        held=usage,
        peak=peak,
    )


# --- The benchmark -------------------------------------------------------------------------------


@contextlib.contextmanager
def _case_env(bench: Bench, redis_url: str | None) -> Iterator[Bench]:
    """The bench with REDIS_URL set for the processes it starts (web server, cluster) within."""
    env = bench.env
    if redis_url:
        bench.env = {**env, "REDIS_URL": redis_url}
    try:
        yield bench
    finally:
        bench.env = env


def measure(bench: Bench) -> LiveResult:
    from batches import services

    args = bench.args
    _raise_open_files(args.live_connections * 2 + 1024)
    key, cookie = api_key(bench), session_cookie(bench)
    narrowed = services.batch_cancel(
        batch=create_batch(bench, invoices(1), engine="sleep", name="live memory")
    )  # finished: the `?batch=` connections follow a batch where nothing happens
    result = LiveResult(cases=[])
    plans: list[tuple[str, str | None]] = [("log tail (no REDIS_URL)", None)]
    if _redis_up(args.live_redis_url):
        plans.append((f"Redis ({args.live_redis_url})", args.live_redis_url))
    else:
        result.skipped.append(f"Redis: nothing answered at {args.live_redis_url}")
        log(f"live: no Redis at {args.live_redis_url}; that case is left out")
    log(
        f"live: {args.live_documents} documents at N={args.live_concurrency} "
        f"L={args.live_latency:g}s; {args.live_connections} connections held {args.live_hold:g}s"
    )
    for name, redis_url in plans:
        case = LiveCase(name)
        with (
            _case_env(bench, redis_url) as served,
            running_web(served, asgi=True) as (web, base_url),
        ):
            fetch(base_url, "/healthz")
            case.memory = _memory_run(served, web, base_url, key, cookie, str(narrowed.pk))
            memory = case.memory
            log(
                f"  {name}: {memory.opened}/{memory.connections} open, RSS "
                f"{mb(memory.idle.rss_kb)} -> {mb(memory.held.rss_kb)} "
                f"(+{mb(memory.added_rss_kb)}), PSS +{mb(memory.added_pss_kb)}"
            )
            case.latency = _latency_run(served, base_url, key)
            latency = case.latency
            log(
                f"  {name}: {latency.received}/{latency.documents} received at "
                f"{latency.rate_per_s:.0f} docs/s; p50 {_ms(latency.p(50))}, p95 "
                f"{_ms(latency.p(95))}, max {_ms(max(latency.latencies, default=0))}"
            )
        result.cases.append(case)
    return result


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def report(bench: Bench, result: LiveResult) -> list[str]:
    args = bench.args
    lines = [
        "### 11. Live events over WebSocket",
        "",
        "`daphne -b 127.0.0.1 -p PORT batchsite.asgi:application` (one process), the cases one "
        "after the other, each on a fresh daphne: without a channel layer (daphne tails the "
        "event log every 0.2 s) and with Redis (`REDIS_URL` set for daphne and the cluster: "
        "the worker publishes each event, the Channels Redis pub/sub layer carries it).",
        "",
        f"Delivery: a cluster of 1 worker process with SHEAF_CONCURRENCY={args.live_concurrency} "
        f"and the sleep engine at L={args.live_latency:g} s (about "
        f"{args.live_concurrency / args.live_latency:.0f} documents/s), after a 1-document "
        f"warm-up batch; one WebSocket client (`websockets`, Bearer key, all the user's events) "
        f"in the bench process while one batch of {args.live_documents} documents runs. "
        "Latency = when the client read the `document.completed` frame minus the frame's "
        "`data.document.completed_at` (set by the worker; one machine, one clock). Rate = "
        "completions per second, first to last.",
        "",
        "| case | documents | frames received | distinct documents | rate | p50 | p95 | max "
        f"| target p95 <= {LATENCY_P95_TARGET_S:g} s, none missed | result |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for case in result.cases:
        run = case.latency
        if run is None:
            continue
        passed = run.p(95) <= LATENCY_P95_TARGET_S and run.distinct == run.documents == run.received
        lines.append(
            f"| {case.name} | {run.documents} | {run.received} | {run.distinct} "
            f"| {run.rate_per_s:.0f} docs/s | {_ms(run.p(50))} | {_ms(run.p(95))} "
            f"| {_ms(max(run.latencies, default=float('nan')))} | | {verdict(passed)} |"
        )
    lines += [
        "",
        f"Memory: daphne's RSS (and PSS) idle (after one connection of each kind opened and "
        f"closed), then with {args.live_connections} WebSocket connections opened by the bench "
        f"({OPENING_AT_ONCE} handshakes at a time; in turn a Bearer key, a Bearer key with "
        "`?batch=`, a session cookie from the site's origin, a session with `?batch=`; the "
        f"batch a finished one) and held {args.live_hold:g} s, each reading what comes "
        f"(a heartbeat every 15 s without events). Held = sampled at the end of the hold; "
        "peak = the highest of the samples every 0.1 s during it.",
        "",
        "| case | connections open at the end | refused or closed | heartbeats read "
        "| RSS idle | RSS held | RSS peak | added RSS | PSS idle | PSS held | added PSS "
        f"| target <= {MEMORY_TARGET_MB:g} MB added | result |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for case in result.cases:
        memory = case.memory
        if memory is None:
            continue
        refused = ", ".join(f"{why}: {n}" for why, n in sorted(memory.refused.items())) or "none"
        added = max(memory.added_rss_kb, memory.peak.rss_kb - memory.idle.rss_kb)
        passed = memory.opened == memory.connections and added / 1024 <= MEMORY_TARGET_MB
        lines.append(
            f"| {case.name} | {memory.opened} of {memory.connections} | {refused} "
            f"| {memory.heartbeats} | {mb(memory.idle.rss_kb)} | {mb(memory.held.rss_kb)} "
            f"| {mb(memory.peak.rss_kb)} | {mb(memory.added_rss_kb)} | {mb(memory.idle.pss_kb)} "
            f"| {mb(memory.held.pss_kb)} | {mb(memory.added_pss_kb)} | | {verdict(passed)} |"
        )
    lines += [f"\nLeft out: {why}." for why in result.skipped]
    lines.append("")
    return lines
