"""Chaos: two real clusters share one database and are kill -9'ed at random while they work.

A batch of 300 documents goes through an engine of random latency that records every call
(`tests.support.engines.CountingEngine`). A driver kills one of the two clusters, chosen at
random among those working at that moment, with its whole process group, five times at random
moments, and restarts it each time.
Database triggers (`tests.support.audit`) witness every write, whichever process makes it.

Run it alone: `.venv/bin/python -m pytest tests/chaos/test_chaos.py`. SHEAF_CHAOS_SEED replays a
run (the seed is printed in every failure message).
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest
from django.core.files.base import ContentFile

from batches import services
from batches.models import BatchProcess
from batches.tasks import enqueue_drain
from documents.models import Document
from notifications.models import Event
from tests.support.audit import Change, transitions_audit
from tests.support.cluster import Cluster, wait_for, wait_until_finished
from tests.support.engines import assert_called_once_but_for_kills, engine_calls

DOCUMENTS = 300
KILLS = 5
# Fast enough to finish in well under a minute, slow enough that every kill finds work in flight.
CLUSTER_ENV = {
    "SHEAF_TEST_LATENCY": "0.02,0.25",
    "SHEAF_WORKERS": "2",
    "SHEAF_CONCURRENCY": "4",
    # Short drains and leases, so a killed cluster's documents come back within seconds.
    "SHEAF_DRAIN_SECONDS": "5",
    "SHEAF_LEASE_SECONDS": "6",
    # Five kills could cut one unlucky document's attempts off more than three times; this test
    # is about losing and repeating nothing, not about giving up (tests/batches covers that).
    "SHEAF_MAX_ATTEMPTS": "10",
}


class Ticker:
    """The schedule's job (a drain every minute), at test speed: at most one drain per period."""

    def __init__(self, period: float) -> None:
        self.period = period
        self.last = 0.0

    def __call__(self) -> None:
        if time.monotonic() - self.last >= self.period:
            enqueue_drain()
            self.last = time.monotonic()


def _working(clusters: list[Cluster], calls_log: Path, within: float = 1.0) -> list[Cluster]:
    """The clusters that called the engine in the last `within` seconds (else all of them): a
    kill should find work in flight, and a cluster waiting for its next drain holds none."""
    now = time.time()
    recent = {
        call.process_group
        for calls in engine_calls(calls_log).values()
        for call in calls
        if now - call.started < within
    }
    return [c for c in clusters if c.process_group in recent] or clusters


def _logs(paths: list[Path]) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text()[-2000:]}" for p in paths if p.exists())


@pytest.mark.django_db(transaction=True)
def test_two_clusters_killed_at_random_lose_nothing_and_repeat_nothing(alice, settings, tmp_path):
    seed = int(os.environ.get("SHEAF_CHAOS_SEED") or random.randrange(2**32))  # noqa: S311
    chance = random.Random(seed)  # noqa: S311
    settings.SHEAF_PLAN_LIMITS = {"plus": {"files_per_batch": DOCUMENTS}}
    settings.SHEAF_EXTRA_ENGINES = {"counting": "tests.support.engines.CountingEngine"}
    settings.SHEAF_EXTRACTION_ENGINE = "counting"
    calls_log = tmp_path / "engine-calls.log"
    calls_log.touch()
    logs = [tmp_path / f"cluster-{n}.log" for n in range(2)]
    clusters = [Cluster(log, SHEAF_TEST_ENGINE_LOG=str(calls_log), **CLUSTER_ENV) for log in logs]
    files = [
        ContentFile(f"Invoice number: INV-{n:04}\nTotal: {n}.00 EUR\n".encode(), name=f"{n}.txt")
        for n in range(DOCUMENTS)
    ]
    batch = services.batch_create(user=alice, files=files, prompt="invoice number, total")
    documents = Document.objects.filter(batch=batch)
    completed = documents.filter(status=Document.Status.COMPLETED)
    # Kill when these many documents are done, plus a random fraction of a second.
    kill_points = sorted(chance.sample(range(20, DOCUMENTS - 50), KILLS))
    tick = Ticker(period=2.0)
    started = time.monotonic()

    with transitions_audit() as audit:
        try:
            for cluster in clusters:
                cluster.start()
            enqueue_drain(4)
            for point in kill_points:
                reached = wait_for(
                    lambda point=point: completed.count() >= point, timeout=90, step=0.1, tick=tick
                )
                assert reached, f"seed {seed}: stalled before {point} done\n{_logs(logs)}"
                time.sleep(chance.uniform(0, 0.5))
                victim = chance.choice(_working(clusters, calls_log))
                victim.kill()
                time.sleep(chance.uniform(0, 1))
                victim.start()
            finished = wait_until_finished(batch, timeout=150, tick=tick)
        finally:
            for cluster in clusters:
                cluster.stop()
        killed = {**clusters[0].killed, **clusters[1].killed}
        elapsed = time.monotonic() - started
        context = f"seed {seed}, {elapsed:.0f} s, kills at {kill_points}"
        assert finished, f"{context}\n{_logs(logs)}"

        # Every document completed, none is left processing, each result was written once.
        assert completed.count() == DOCUMENTS, context
        calls = engine_calls(calls_log)
        for document in documents:
            assert document.result["engine"] == "counting", context
            assert audit.completions(document.pk) == [Change("processing", "completed")], context
            # One engine call per document, but for attempts that a kill cut off.
            assert_called_once_but_for_kills(document, calls[str(document.pk)], killed=killed)
        assert len(killed) == KILLS, context
        assert documents.filter(attempts__gt=1).exists(), f"{context}: no kill caught work"

        # The batch finished exactly once.
        batch.refresh_from_db()
        assert batch.status == BatchProcess.Status.COMPLETED, context
        assert batch.processed_documents == DOCUMENTS and batch.failed_documents == 0, context
        assert batch.completed_at is not None, context
        assert audit.finishes(batch.pk) == [Change("processing", "completed")], context
        assert batch.finish_seq == 1, context
        # ... and notified once.
        assert Event.objects.filter(batch=batch, kind="batch.completed").count() == 1, context
        # Each completion's event was written with it: once per document, whatever was killed.
        completions = Event.objects.filter(batch=batch, kind="document.completed")
        assert completions.count() == DOCUMENTS, context
