"""Start and kill real django-q2 clusters (`manage.py qcluster`) and web servers (daphne)
against the test database."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import connection

from batches.models import BatchProcess
from documents.models import Document

REPO = Path(__file__).resolve().parents[2]


def database_url() -> str:
    """The URL of the database this test run uses, for processes started by the test."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{host}:{port}/{db['NAME']}"


def cluster_env(**extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "SHEAF_EXTRA_ENGINES": json.dumps(settings.SHEAF_EXTRA_ENGINES),
        "PYTHONPATH": str(REPO),
    }
    env.update(extra)
    return env


class Service:
    """A process of Sheaf's (`command`, run by this Python) against the test database, in its
    own session so that a kill takes every process it started."""

    command: tuple[str, ...] = ()

    def __init__(self, log: Path, **env: str) -> None:
        self.log = log
        self.env = cluster_env(**env)
        self.process: subprocess.Popen[bytes] | None = None
        self.killed: dict[int, float] = {}  # process group -> time.time() of its kill

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(  # noqa: S603 - our own commands
                [sys.executable, *self.command],
                cwd=REPO,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def process_group(self) -> int | None:
        """The service runs in its own session: its pid is the group id of all its processes."""
        return self.process.pid if self.process is not None else None

    def kill(self) -> None:
        """kill -9 the service and every process it started, as a crash would (recorded in
        `killed`)."""
        group = self._end()
        if group is not None:
            self.killed[group] = time.time()

    def stop(self) -> None:
        self._end()

    def _end(self) -> int | None:
        if self.process is None:
            return None
        group = self.process.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
        self.process.wait(timeout=30)
        self.process = None
        return group


class Cluster(Service):
    """A django-q2 cluster (`manage.py qcluster`)."""

    command = ("manage.py", "qcluster", "--skip-checks")


class WebServer(Service):
    """Sheaf's web server as production runs it: daphne serving batchsite.asgi (HTTP and the
    WebSocket) on a loopback port."""

    def __init__(self, log: Path, port: int, **env: str) -> None:
        # DEBUG: static files from the source folders, as the tests' own live server serves
        # them (production serves collectstatic's hashed copies).
        super().__init__(log, **{"DEBUG": "1", **env})
        self.port = port
        self.command = (
            "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "batchsite.asgi:application"
        )  # fmt: skip

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        super().start()
        if not wait_for(self._answers, timeout=30):
            raise AssertionError(f"the web server did not answer on {self.url} (log: {self.log})")

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=2):  # noqa: S310 - loopback
                return True
        except urllib.error.HTTPError:
            return True  # an answer (503: no worker yet) is all this waits for
        except OSError:
            return False


def wait_for(
    predicate: Callable[[], bool],
    *,
    timeout: float,
    step: float = 0.2,
    tick: Callable[[], object] | None = None,
) -> bool:
    """Poll ``predicate`` (calling ``tick`` between tries) until it holds or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if tick is not None:
            tick()
        time.sleep(step)
    return predicate()


def wait_until_finished(batch: BatchProcess, *, timeout: float, tick: Callable[[], object]) -> bool:
    """Wait until none of the batch's documents is queued or processing and the batch itself
    has finished (a separate commit, just after its last document's), ticking while it waits."""
    return wait_for(
        lambda: (
            not batch.documents.exclude(status__in=Document.TERMINAL_STATUSES).exists()
            and BatchProcess.objects.filter(
                pk=batch.pk, status__in=BatchProcess.TERMINAL_STATUSES
            ).exists()
        ),
        timeout=timeout,
        step=0.5,
        tick=tick,
    )
