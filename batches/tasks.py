"""django-q2 tasks. Thin: they take ids, call services, and are enqueued after commit.

The drain is how work gets done: it sweeps, then keeps up to SHEAF_CONCURRENCY documents in
flight on threads (extraction is I/O-bound), renews its leases as a heartbeat, stops taking work
when its time budget is spent (well below django-q2's `timeout`), and enqueues a successor while
due work remains. A schedule runs a drain every minute so that nothing depends on a kick.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid

from django.conf import settings
from django.db import close_old_connections, connection
from django_q.tasks import async_task

from batches import services

logger = logging.getLogger(__name__)

DRAIN_TASK = "batches.tasks.drain"
# After an unexpected error (say, SQLite busy past its timeout) a thread waits this long and
# goes on: one bad moment must not stop a drain, nor its heartbeat.
ERROR_PAUSE_SECONDS = 1.0


def enqueue_drain(count: int = 1) -> None:
    for _ in range(count):
        async_task(DRAIN_TASK, task_name="sheaf-drain")


def drain(budget_seconds: float | None = None) -> dict[str, int]:
    budget = budget_seconds if budget_seconds is not None else settings.SHEAF_DRAIN_SECONDS
    deadline = time.monotonic() + budget
    swept = services.sweep()
    held: set[uuid.UUID] = set()
    lock = threading.Lock()
    outcomes: dict[str, int] = {}
    stop = threading.Event()

    def work_one() -> bool:
        """Claim and process one document; False when nothing is due within the budget."""
        claim = services.document_claim()
        if claim is None:
            # Stay for a retry that falls due within the budget; otherwise we are done.
            wait = services.seconds_until_next_due()
            if wait is None or time.monotonic() + wait >= deadline:
                return False
            time.sleep(min(max(wait, 0.05), 1.0))
            return True
        with lock:
            held.add(claim.lease_token)
        try:
            status = services.document_process(claim=claim)
        finally:
            with lock:
                held.discard(claim.lease_token)
        with lock:
            outcomes[status] = outcomes.get(status, 0) + 1
        return True

    def work() -> None:
        try:
            while time.monotonic() < deadline:
                try:
                    if not work_one():
                        return
                except Exception:
                    logger.exception("drain: a step failed; going on")
                    connection.close()
                    time.sleep(ERROR_PAUSE_SECONDS)
        finally:
            connection.close()

    def heartbeat() -> None:
        interval = max(settings.SHEAF_LEASE_SECONDS / 3, 0.5)
        try:
            while not stop.wait(interval):
                with lock:
                    tokens = list(held)
                try:
                    services.document_renew_leases(tokens=tokens)
                except Exception:
                    logger.exception("drain: renewing leases failed; trying again")
                    connection.close()
        finally:
            connection.close()

    threads = [
        threading.Thread(target=work, name=f"sheaf-drain-{n}", daemon=True)
        for n in range(settings.SHEAF_CONCURRENCY)
    ]
    beat = threading.Thread(target=heartbeat, name="sheaf-heartbeat", daemon=True)
    beat.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    beat.join()
    close_old_connections()
    if time.monotonic() >= deadline and services.work_remaining():
        enqueue_drain()
    logger.info("drain finished: %s (sweep %s)", outcomes, swept)
    return {**outcomes, **{f"swept_{k}": v for k, v in swept.items()}}
