"""What processes count for `/metrics` (README, "Operations: metrics"): calls to the provider and
event deliveries, which happen in worker and web processes alike.

prometheus-client's multiprocess mode keeps each process's counts in files under
PROMETHEUS_MULTIPROC_DIR (settings.py sets it before the client is first imported), and a scrape
sums them. No ORM here: the Claude engine (extraction/, which has none) counts its calls. What
the database knows (documents, the queue, batch durations) is read at scrape time instead, by
`batches.metrics.DatabaseCollector`.
"""

from __future__ import annotations

import os
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

PROVIDER_CALLS = Counter(
    "sheaf_provider_calls",
    "Calls to the extraction provider (Claude), by API and outcome; "
    "ok / all is the API efficiency.",
    ["provider", "api", "status"],
)

EVENT_DELIVERY_LAG = Histogram(
    "sheaf_event_delivery_lag_seconds",
    "From an event's creation to its delivery (a webhook's 2xx, a frame sent), by channel.",
    ["channel"],
    # Live channels deliver in milliseconds; a webhook retried with backoff takes minutes.
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800),
)

# Every series starts at zero (rate() needs a first sample before the first failure): the
# outcomes a call to the provider is counted under (`extraction.claude.engine.call_status`), and
# the channels an event is delivered on.
PROVIDER_APIS = {"anthropic": ("messages", "message_batches")}
CALL_STATUSES = (
    "ok",
    "rate_limited",
    "overloaded",
    "server_error",
    "timeout",
    "connection_error",
    "client_error",
    "refused",
    "error",
)
CHANNELS = ("webhook", "websocket", "sse")
for _provider, _apis in PROVIDER_APIS.items():
    for _api in _apis:
        for _status in CALL_STATUSES:
            PROVIDER_CALLS.labels(provider=_provider, api=_api, status=_status)
for _channel in CHANNELS:
    EVENT_DELIVERY_LAG.labels(channel=_channel)

# The text format every Prometheus reads (Sheaf's names need nothing newer).
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4


def observe_provider_call(*, provider: str, api: str, status: str) -> None:
    """Count one call to a provider; `status` is "ok" or why it failed (see the README)."""
    PROVIDER_CALLS.labels(provider=provider, api=api, status=status).inc()


def observe_event_delivery(seconds: float, channel: str) -> None:
    """Record how long an event took from its creation to its delivery on `channel`
    ("webhook", "websocket", "sse")."""
    EVENT_DELIVERY_LAG.labels(channel=channel).observe(max(seconds, 0.0))


def exposition(*collectors: Collector) -> bytes:
    """Every process's counts summed, then `collectors`' families, in the text format."""
    registry = CollectorRegistry(auto_describe=False)
    MultiProcessCollector(registry, path=str(metrics_directory()))
    for collector in collectors:
        registry.register(collector)
    return generate_latest(registry)


def metrics_directory() -> Path:
    return Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])


def metrics_files_sweep() -> int:
    """Delete the files of processes that have ended; returns how many were deleted.

    Run when the worker cluster starts (its workers all start afresh then). The client's
    `mark_process_dead` removes only live gauges' files; a dead process's counters are kept by
    the client until a restart, which is now. Ended processes' counts then leave the sums: a
    counter reset, which Prometheus's rate() and increase() expect from a restart.
    """
    deleted = 0
    for path in metrics_directory().glob("*.db"):
        pid = _pid_of(path)
        if pid is None or _alive(pid):
            continue
        mark_process_dead(pid, path=str(path.parent))
        path.unlink(missing_ok=True)
        deleted += 1
    return deleted


def _pid_of(path: Path) -> int | None:
    """The process id in a file's name: `counter_<pid>.db`, `gauge_<mode>_<pid>.db`."""
    tail = path.stem.rpartition("_")[2]
    return int(tail) if tail.isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process, alive
    return True
