"""django-q2 tasks. Thin: they take ids, call services, and are enqueued after commit.

The drain is how work gets done: it sweeps, then keeps up to SHEAF_CONCURRENCY documents in
flight on threads (`batches.pipeline.runner`, which renews their leases as a heartbeat), stops
taking work when its time budget is spent (well below django-q2's `timeout`), and enqueues a
successor while due work remains. A schedule runs a drain every minute so that nothing depends on
a kick. When the cluster is stopping (`batches.cluster`), a drain takes no more work, waits at
most SHEAF_STOP_GRACE_SECONDS for the documents in flight, and returns; a drain that starts then
returns at once.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.db import close_old_connections
from django_q.tasks import async_task

from batches import pipeline
from batches.cluster import stop_requested
from batches.pipeline.runner import Run

logger = logging.getLogger(__name__)

DRAIN_TASK = "batches.tasks.drain"


def enqueue_drain(count: int = 1) -> None:
    for _ in range(count):
        async_task(DRAIN_TASK, task_name="sheaf-drain")


def drain(budget_seconds: float | None = None) -> dict[str, int]:
    if stop_requested():
        # Taken from the cluster's queue while it stops: the next cluster's drains do the work.
        return {}
    budget = budget_seconds if budget_seconds is not None else settings.SHEAF_DRAIN_SECONDS
    deadline = time.monotonic() + budget
    swept = pipeline.sweep()
    outcomes = Run(
        threads=settings.SHEAF_CONCURRENCY,
        deadline=deadline,
        should_stop=stop_requested,
        stop_grace=settings.SHEAF_STOP_GRACE_SECONDS,
    ).run()
    close_old_connections()
    # A successor waits in the queue for any node (or for this one's restart) instead of the
    # schedule's next minute.
    cut_short = time.monotonic() >= deadline or stop_requested()
    if cut_short and pipeline.work_remaining():
        enqueue_drain()
    logger.info("drain finished: %s (sweep %s)", dict(outcomes), swept)
    return {**outcomes, **{f"swept_{k}": v for k, v in swept.items()}}
