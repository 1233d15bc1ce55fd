"""Stopping the worker: `make run`'s Ctrl-C and systemd's stop end every process within seconds,
while a drain has documents in flight, and a new cluster completes those documents once.

The engine takes a minute per document, far past the stop's grace (SHEAF_STOP_GRACE_SECONDS, left
at its default), so every stop catches documents in flight and must leave them under their leases.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django_q.models import Success

from batches import services
from batches.models import BatchProcess
from batches.tasks import DRAIN_TASK, enqueue_drain
from documents.models import Document
from tests.support.audit import Change, transitions_audit
from tests.support.cluster import REPO, Cluster, cluster_env, wait_for, wait_until_finished
from tests.support.engines import assert_called_once_but_for_kills, engine_calls
from tests.support.processes import live_processes

pytestmark = pytest.mark.cluster

DOCUMENTS = 6
# The grace (3 s by default) and django-q2's own shutdown, with room for a loaded machine.
STOP_SECONDS = 10.0
STOPPED_ENV = {
    "SHEAF_TEST_LATENCY": "60,60",
    "SHEAF_WORKERS": "1",
    "SHEAF_CONCURRENCY": "2",
    # Short leases, so that the documents left in flight come back within seconds.
    "SHEAF_LEASE_SECONDS": "3",
}


@dataclass
class Started:
    process: subprocess.Popen[bytes]
    log: Path
    web: str | None = None  # a URL that answers once the web server is up

    def ready(self) -> bool:
        return self.web is None or _answers(self.web)

    @property
    def group(self) -> int:
        return self.process.pid  # started in its own session

    def alive(self) -> list[str]:
        return [
            p.cmdline.replace(b"\0", b" ").decode(errors="replace")
            for p in live_processes()
            if p.group == self.group
        ]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):  # noqa: S310 (loopback)
            return True
    except urllib.error.HTTPError:
        return True  # an answer all the same (/healthz says 503 while the queue waits)
    except OSError:
        return False


def _make_run(env: dict[str, str], log: Path) -> Started:
    """`make run` as a developer starts it, on a free port, with this interpreter's virtualenv
    (`-o install`: the environment is already set up)."""
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    port = _free_port()
    with open(log, "ab") as out:
        process = subprocess.Popen(  # noqa: S603 (our own Makefile)
            [make, "-o", "install", "run", f"BIN={Path(sys.executable).parent}", f"PORT={port}"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a terminal's foreground process group of its own
        )
    return Started(process, log, web=f"http://127.0.0.1:{port}/healthz")


def _qcluster(env: dict[str, str], log: Path) -> Started:
    """`manage.py qcluster` as a systemd unit runs it: the service's main process."""
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster", "--skip-checks"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Started(process, log)


def _ctrl_c(started: Started) -> None:
    """What a terminal does on Ctrl-C: SIGINT to every process of the foreground group."""
    os.killpg(started.group, signal.SIGINT)


def _kill_mode_mixed(started: Started) -> None:
    """systemd's stop with KillMode=mixed: SIGTERM to the main process only (and SIGKILL to any
    process left once it has exited, which this test counts as a failure instead)."""
    os.kill(started.process.pid, signal.SIGTERM)


def _kill_mode_control_group(started: Started) -> None:
    """systemd's stop with its default KillMode=control-group: SIGTERM to every process."""
    os.killpg(started.group, signal.SIGTERM)


# way -> (start, stop, whether the drain itself gets to stop: with KillMode=control-group the
# kernel ends the workers at once, which the leases make just as safe).
WAYS = {
    "make-run-ctrl-c": (_make_run, _ctrl_c, True),
    "systemd-kill-mode-mixed": (_qcluster, _kill_mode_mixed, True),
    "systemd-kill-mode-control-group": (_qcluster, _kill_mode_control_group, False),
}


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.django_db(transaction=True)
def test_a_stop_ends_every_process_within_seconds_and_loses_no_document(
    way: str, alice, settings, tmp_path: Path
) -> None:
    start: Callable[[dict[str, str], Path], Started]
    stop: Callable[[Started], None]
    drain_stops: bool
    start, stop, drain_stops = WAYS[way]
    settings.SHEAF_PLAN_LIMITS = {"plus": {"files_per_batch": DOCUMENTS}}
    settings.SHEAF_EXTRA_ENGINES = {"counting": "tests.support.engines.CountingEngine"}
    settings.SHEAF_EXTRACTION_ENGINE = "counting"
    calls_log = tmp_path / "engine-calls.log"
    calls_log.touch()
    files = [
        ContentFile(f"Invoice number: INV-{n:03}\n".encode(), name=f"inv-{n}.txt")
        for n in range(DOCUMENTS)
    ]
    batch = services.batch_create(user=alice, files=files, prompt="invoice number")
    documents = Document.objects.filter(batch=batch)
    env = cluster_env(SHEAF_TEST_ENGINE_LOG=str(calls_log), **STOPPED_ENV)
    env.pop("SHEAF_STOP_GRACE_SECONDS", None)  # the default grace, as shipped
    recovery = Cluster(
        tmp_path / "recovery.log",
        SHEAF_TEST_ENGINE_LOG=str(calls_log),
        SHEAF_TEST_LATENCY="0.05,0.1",
        SHEAF_LEASE_SECONDS="3",
    )
    with transitions_audit() as audit:
        started = start(env, tmp_path / "stopped.log")
        try:
            # The web server too is up when the stop comes.
            assert wait_for(started.ready, timeout=60), started.log.read_text()[-3000:]
            enqueue_drain()
            # Both of the drain's threads are inside the engine.
            assert wait_for(lambda: len(calls_log.read_text().splitlines()) == 2, timeout=60), (
                started.log.read_text()[-3000:]
            )
            stopped_at = time.time()
            stop(started)
            gone = wait_for(lambda: not started.alive(), timeout=STOP_SECONDS, step=0.1)
            took = time.time() - stopped_at
            left = started.alive()
        finally:
            if started.alive():
                os.killpg(started.group, signal.SIGKILL)
            started.process.wait(timeout=30)
        assert gone, (
            f"{way}: still running after {took:.1f} s: {left}\n" + (started.log.read_text()[-3000:])
        )
        interrupted = documents.filter(status=Document.Status.PROCESSING).count()
        assert interrupted == 2, started.log.read_text()[-3000:]
        if drain_stops:
            # The drain took no more work, waited out its grace and returned (django-q2 saved
            # its result), leaving both documents under their leases: it was not killed.
            results = [task.result for task in Success.objects.filter(func=DRAIN_TASK)]
            assert any(r.get("left") == 2 for r in results), (
                results,
                started.log.read_text()[-3000:],
            )

        try:
            recovery.start()
            # The schedule's job (a drain every minute), at test speed.
            finished = wait_until_finished(batch, timeout=120, tick=enqueue_drain)
        finally:
            recovery.stop()
        assert finished, (tmp_path / "recovery.log").read_text()[-3000:]

        batch.refresh_from_db()
        assert batch.status == BatchProcess.Status.COMPLETED
        assert audit.finishes(batch.pk) == [Change("processing", "completed")]
        calls = engine_calls(calls_log)
        for document in documents:
            assert document.status == Document.Status.COMPLETED
            assert audit.completions(document.pk) == [Change("processing", "completed")]
            # Called again only when the stop cut its call off.
            assert_called_once_but_for_kills(
                document, calls[str(document.pk)], killed={started.group: stopped_at}
            )
