"""Documents processed on threads: the loop that the drain task and `manage.py batch process`
share.

Each thread claims a document, processes it and records the outcome through the services
(`document_claim`, `document_process`); a heartbeat thread renews the leases of the documents in
flight. Extraction is I/O-bound (a provider call, or a read in a child process), so threads are
enough to keep several documents in flight.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection

from batches import pipeline
from batches.models import BatchProcess
from batches.pipeline import Claim

logger = logging.getLogger(__name__)

# After an unexpected error (say, SQLite busy past its timeout) a thread waits this long and
# goes on: one bad moment must not stop the run, nor its heartbeat.
ERROR_PAUSE_SECONDS = 1.0
# The longest a thread sleeps at once while it waits for a retry to fall due, so that a stop
# or a newly due document is noticed soon.
WAIT_STEP_SECONDS = 1.0
# How often a run asks `should_stop` while its threads work.
STOP_POLL_SECONDS = 0.2

OutcomeCallback = Callable[[Claim, str], None]


@dataclass
class Run:
    """What to process, and how.

    `deadline` (a `time.monotonic()` value): stop taking work then, and do not wait for a retry
    that falls due after it; None waits for every retry in scope. `batch_id`: only that batch's
    documents. `limit`: at most this many distinct documents; once it is reached, only retries
    of those documents are taken. `max_attempts` overrides SHEAF_MAX_ATTEMPTS for transient
    failures. `on_outcome` is called (from the worker thread) with each claim and the status
    it ended in: a document status, "lost" or "deferred" (see `pipeline.document_process`).
    `should_stop` is asked every STOP_POLL_SECONDS (the cluster is shutting down): once it
    answers True, no more work is taken and the documents in flight get `stop_grace` seconds
    to finish; `run` then returns and leaves any still running under their leases (counted as
    "left"), no longer renewed.
    """

    threads: int
    deadline: float | None = None
    batch_id: uuid.UUID | None = None
    limit: int | None = None
    max_attempts: int | None = None
    on_outcome: OutcomeCallback | None = None
    should_stop: Callable[[], bool] | None = None
    stop_grace: float = 0.0
    # The state of the run, shared by its threads.
    stop: threading.Event = field(default_factory=threading.Event, init=False)
    outcomes: Counter[str] = field(default_factory=Counter, init=False)
    taken: set[uuid.UUID] = field(default_factory=set, init=False)
    # The batches of the documents claimed so far (see `pipeline.document_claim`'s `known`).
    _batches: dict[uuid.UUID, BatchProcess] = field(default_factory=dict, init=False)
    _held: set[uuid.UUID] = field(default_factory=set, init=False)
    _reserved: int = field(default=0, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def _scope(self) -> tuple[bool, frozenset[uuid.UUID] | None]:
        """Whether the next claim may take a new document (reserving a place under the limit),
        and the documents it is narrowed to otherwise."""
        with self._lock:
            if self.limit is None:
                return False, None
            if len(self.taken) + self._reserved < self.limit:
                self._reserved += 1
                return True, None
            return False, frozenset(self.taken)

    def _past_deadline(self, wait: float = 0.0) -> bool:
        return self.deadline is not None and time.monotonic() + wait >= self.deadline

    def _work_one(self) -> bool:
        """Claim and process one document; False when nothing in scope is due (or will be
        within the deadline)."""
        reserved, only = self._scope()
        claim = None
        try:
            claim = pipeline.document_claim(
                batch_id=self.batch_id, document_ids=only, known=self._batches
            )
        finally:
            # Release the place and record the document in one step, so that no other thread
            # sees neither and takes one document more than the limit.
            with self._lock:
                self._reserved -= reserved
                if claim is not None:
                    self.taken.add(claim.document_id)
                    self._held.add(claim.lease_token)
        if claim is None:
            # Stay for a retry that falls due in time; otherwise this thread is done.
            wait = pipeline.seconds_until_next_due(batch_id=self.batch_id, document_ids=only)
            if wait is None or self._past_deadline(wait):
                return False
            self.stop.wait(min(max(wait, 0.05), WAIT_STEP_SECONDS))
            return True
        try:
            status = pipeline.document_process(claim=claim, max_attempts=self.max_attempts)
        finally:
            with self._lock:
                self._held.discard(claim.lease_token)
        with self._lock:
            self.outcomes[status] += 1
        if self.on_outcome is not None:
            self.on_outcome(claim, status)
        return True

    def _work(self) -> None:
        try:
            while not self.stop.is_set() and not self._past_deadline():
                try:
                    if not self._work_one():
                        return
                except Exception:
                    logger.exception("runner: a step failed; going on")
                    connection.close()
                    self.stop.wait(ERROR_PAUSE_SECONDS)
        finally:
            connection.close()

    def _heartbeat(self, done: threading.Event) -> None:
        interval = max(settings.SHEAF_LEASE_SECONDS / 3, 0.5)
        try:
            while not done.wait(interval):
                with self._lock:
                    tokens = list(self._held)
                try:
                    pipeline.document_renew_leases(tokens=tokens)
                except Exception:
                    logger.exception("runner: renewing leases failed; trying again")
                    connection.close()
        finally:
            connection.close()

    def _join(self, workers: list[threading.Thread]) -> None:
        """Wait for the threads, but no longer than `stop_grace` after `should_stop` says so."""
        give_up_at: float | None = None
        for worker in workers:
            while worker.is_alive():
                if give_up_at is None and self.should_stop is not None and self.should_stop():
                    self.stop.set()
                    give_up_at = time.monotonic() + self.stop_grace
                if give_up_at is not None and time.monotonic() >= give_up_at:
                    with self._lock:
                        self.outcomes["left"] = len(self._held)
                    return
                worker.join(STOP_POLL_SECONDS)

    def run(self) -> Counter[str]:
        """Process until nothing in scope is left (or the deadline passes, or `should_stop`);
        returns the count of each outcome. Ctrl-C stops taking work, lets the documents in
        flight finish, and is raised again."""
        done = threading.Event()
        beat = threading.Thread(
            target=self._heartbeat, args=(done,), name="sheaf-heartbeat", daemon=True
        )
        workers = [
            threading.Thread(target=self._work, name=f"sheaf-worker-{n}", daemon=True)
            for n in range(self.threads)
        ]
        beat.start()
        for worker in workers:
            worker.start()
        try:
            self._join(workers)
        except KeyboardInterrupt:
            self.stop.set()
            for worker in workers:
                worker.join()
            raise
        finally:
            done.set()
            beat.join()
        return self.outcomes
