"""The web server under measurement, and the bench's HTTP client for it: requests timed until the
whole answer is read, multipart bodies as a browser sends them, and a poller that reads the batch
page as a browser does."""

from __future__ import annotations

import contextlib
import secrets
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from bench.harness import Bench
from bench.measurement import BackgroundLoop
from bench.processes import PYTHON, Process, wait_for

POLL_PAGE_SECONDS = 2.0  # the batch page's htmx poll (templates/batches/_batch_progress.html)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def web_argv(bench: Bench, port: int, workers: int | None = None) -> list[str]:
    """The production WSGI server (gunicorn batchsite.wsgi), the README's ASGI server (daphne),
    or runserver without gunicorn."""
    if bench.args.web == "daphne":
        return daphne_argv(port)
    if bench.args.web == "runserver":
        return [PYTHON, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]
    return [
        PYTHON,
        "-m",
        "gunicorn",
        "batchsite.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers or bench.args.web_workers),
    ]


def web_description(bench: Bench, workers: int | None = None) -> str:
    if bench.args.web == "daphne":
        return "`daphne batchsite.asgi:application` (one process)"
    if bench.args.web == "runserver":
        return "`manage.py runserver --noreload` (one process)"
    workers = workers or bench.args.web_workers
    return (
        f"`gunicorn batchsite.wsgi --workers {workers}` (the master and {workers} sync worker"
        + ("s" if workers > 1 else "")
        + ")"
    )


def daphne_argv(port: int) -> list[str]:
    """The README's production ASGI server (HTTP and `/ws/events/` on one port), one process."""
    return [
        PYTHON,
        "-m",
        "daphne",
        "-b",
        "127.0.0.1",
        "-p",
        str(port),
        "batchsite.asgi:application",
    ]


@contextlib.contextmanager
def running_web(
    bench: Bench, *, workers: int | None = None, asgi: bool = False
) -> Iterator[tuple[Process, str]]:
    """The web server on a free port, once it answers: (process, base URL); stopped after.
    `asgi`: daphne instead of the WSGI server."""
    port = free_port()
    argv = daphne_argv(port) if asgi else web_argv(bench, port, workers)
    with Process("web", argv, bench.env, bench.tmp / "web.log") as web:
        base_url = f"http://127.0.0.1:{port}"

        def web_up() -> bool:
            try:
                fetch(base_url, "/healthz", timeout=2)
            except OSError:
                return False
            return True

        wait_for(web_up, timeout=60, what="the web server", process=web, step=0.2)
        yield web, base_url


def session_cookie(bench: Bench) -> str:
    """A `Cookie` header value for a logged-in session of the bench user."""
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(bench.user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def api_key(bench: Bench) -> str:
    from accounts.services import api_key_create

    _, secret = api_key_create(user=bench.user, name=f"bench {secrets.token_hex(4)}")
    return secret


@dataclass
class Answer:
    status: int
    body: bytes
    headers: dict[str, str]
    seconds: float


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the bench reads the 302 itself, as the timing ends there


_OPENER = urllib.request.build_opener(_NoRedirect)


def fetch(
    base_url: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    data: bytes | None = None,
    timeout: float = 120,
) -> Answer:
    """One request to our loopback server; the time runs until the whole answer is read."""
    request = urllib.request.Request(  # noqa: S310 (our own loopback server)
        base_url + path, data=data, headers=headers or {}, method="POST" if data else "GET"
    )
    started = time.perf_counter()
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            body = response.read()
            status = response.status
            answer_headers = dict(response.headers.items())
    except urllib.error.HTTPError as exc:
        body, status, answer_headers = exc.read(), exc.code, dict(exc.headers.items())
    return Answer(status, body, answer_headers, time.perf_counter() - started)


def multipart(
    fields: list[tuple[str, str]], files: list[tuple[str, str, bytes]]
) -> tuple[bytes, str]:
    """A multipart/form-data body as a browser or an API client sends it: (body, content type)."""
    boundary = f"----sheafbench{uuid.uuid4().hex}"
    body = bytearray()
    for name, value in fields:
        body += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        ).encode()
    for name, filename, data in files:
        body += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: application/pdf\r\n\r\n'
        ).encode()
        body += data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return bytes(body), f"multipart/form-data; boundary={boundary}"


class PagePoller(BackgroundLoop):
    """GETs the batch page once, then its progress partial every POLL_PAGE_SECONDS."""

    def __init__(self, base_url: str, cookie: str) -> None:
        super().__init__("bench-poller")
        self.base_url = base_url
        self.cookie = cookie
        self.statuses: Counter[int | str] = Counter()
        self.latencies: list[float] = []
        self._batch: str | None = None
        self._new = False
        self._lock = threading.Lock()

    def watch(self, batch_id: str | None) -> None:
        with self._lock:
            self._batch, self._new = batch_id, batch_id is not None

    def get(self, path: str) -> None:
        started = time.perf_counter()
        status: int | str
        try:
            status = fetch(self.base_url, path, headers={"Cookie": self.cookie}, timeout=30).status
        except OSError as exc:
            status = type(exc).__name__
        self.latencies.append(time.perf_counter() - started)
        self.statuses[status] += 1

    def run(self) -> None:
        while not self._halt.is_set():
            with self._lock:
                batch, new = self._batch, self._new
                self._new = False
            if batch:
                self.get(
                    f"/dashboard/batches/{batch}/"
                    if new
                    else f"/dashboard/batches/{batch}/progress/"
                )
            self._halt.wait(POLL_PAGE_SECONDS)
