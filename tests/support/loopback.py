"""The HTTP plumbing shared by the loopback fakes (Anthropic, Stripe)."""

from __future__ import annotations

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class LoopbackHandler(BaseHTTPRequestHandler):
    """Hands every request to `server.fake._handle`; reads plain and chunked bodies."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes; do not delay the second
    label = "fake"

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.fake.verbose:  # type: ignore[attr-defined]
            sys.stderr.write(f"{self.label}: " + (format % args) + "\n")

    def do_GET(self) -> None:
        self.server.fake._handle(self)  # type: ignore[attr-defined]

    def do_POST(self) -> None:
        self.server.fake._handle(self)  # type: ignore[attr-defined]

    def do_DELETE(self) -> None:
        self.server.fake._handle(self)  # type: ignore[attr-defined]

    def read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""


def serve(
    fake: Any, server_class: type[ThreadingHTTPServer], handler: type[LoopbackHandler]
) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """Bind `fake.host`:`fake.port` (0 picks a free port, written back) and serve on a thread."""
    server = server_class((fake.host, fake.port), handler)
    server.fake = fake  # type: ignore[attr-defined]
    fake.port = server.server_address[1]
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name=f"{handler.label}-{fake.port}",
        daemon=True,
    )
    thread.start()
    return server, thread


class LoopbackServer:
    """Start, stop and address of a fake served on loopback by `serve`. A subclass sets `host`
    and `port` and names its server and handler classes in `_server_classes`."""

    host: str
    port: int
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    def _server_classes(self) -> tuple[type[ThreadingHTTPServer], type[LoopbackHandler]]:
        raise NotImplementedError

    def start(self) -> Self:
        if self._server is None:
            self._server, self._thread = serve(self, *self._server_classes())
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path
