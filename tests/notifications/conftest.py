"""A loopback webhook receiver, a worker's part (running queued notification tasks), and a
way to take a batch to its end through the real pipeline services."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any

import pytest
from django.utils import timezone
from django.utils.module_loading import import_string
from django_q.models import OrmQ

from batches import pipeline
from batches.models import BatchProcess
from documents.models import Document
from extraction.contract import ErrorKind, ExtractionError
from notifications.models import DEFAULT_WEBHOOK_EVENTS
from tests.factories import BatchFactory, DocumentFactory
from tests.support.loopback import LoopbackHandler, LoopbackServer

# The events that notify someone (the others are there for live clients).
NOTIFYING = DEFAULT_WEBHOOK_EVENTS

RESULT = {"engine": "local", "model": None, "fields": {}}


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class _Handler(LoopbackHandler):
    label = "receiver"


@dataclass
class Receiver(LoopbackServer):
    """Answers each POST with the next of `statuses` (then 200) and records it."""

    host: str = "127.0.0.1"
    port: int = 0
    verbose: bool = False
    statuses: list[int] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)

    def _handle(self, handler: _Handler) -> None:
        body = handler.read_body()
        self.requests.append(Received(handler.path, dict(handler.headers.items()), body))
        status = self.statuses.pop(0) if self.statuses else 200
        handler.send_response(status)
        handler.send_header("Content-Length", "2")
        handler.end_headers()
        handler.wfile.write(b"ok")

    def _server_classes(self) -> tuple[type[ThreadingHTTPServer], type[_Handler]]:
        return ThreadingHTTPServer, _Handler

    def url(self, path: str = "/hooks/sheaf") -> str:
        return super().url(path)


@pytest.fixture
def receiver(settings) -> Iterator[Receiver]:
    """A receiver on loopback, which webhooks may reach only with SHEAF_WEBHOOK_ALLOW_PRIVATE."""
    settings.SHEAF_WEBHOOK_ALLOW_PRIVATE = True
    with Receiver() as fake:
        yield fake


def verify_signature(*, secret: str, header: str, body: bytes) -> bool:
    """The check the README tells receivers to make."""
    parts = dict(item.split("=", 1) for item in header.split(","))
    expected = hmac.new(
        secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


def run_queued_notifications() -> list[Any]:
    """Run every queued notification task, oldest first, as a django-q2 worker would (tasks
    may queue more: a dispatch queues its deliveries); other tasks are left alone."""
    results = []
    while True:
        queued = [
            q for q in OrmQ.objects.order_by("pk") if q.task["func"].startswith("notifications.")
        ]
        if not queued:
            return results
        for row in queued:
            task = row.task
            OrmQ.objects.filter(pk=row.pk).delete()
            results.append(import_string(task["func"])(*task["args"], **task["kwargs"]))


def discard_queued_notifications() -> int:
    """Lose the queued notification tasks, as when the worker dies right after commit."""
    ids = [q.pk for q in OrmQ.objects.all() if q.task["func"].startswith("notifications.")]
    OrmQ.objects.filter(pk__in=ids).delete()
    return len(ids)


def add_documents(batch: BatchProcess, n: int) -> list[Document]:
    return [DocumentFactory(batch=batch, read_at=timezone.now(), text="Total: 1") for _ in range(n)]


def run_documents(outcomes: list[str]) -> None:
    """Claim and finish queued documents in turn: "ok" completes one, "fail" fails it for good."""
    for outcome in outcomes:
        claim = pipeline.document_claim()
        assert claim is not None
        if outcome == "ok":
            pipeline.document_complete(claim=claim, result=RESULT)
        else:
            error = ExtractionError(
                "malformed", "invoice.pdf is not a readable PDF.", kind=ErrorKind.PERMANENT
            )
            pipeline.document_fail(claim=claim, error=error)


@pytest.fixture
def finished_batch(django_capture_on_commit_callbacks):
    """finished_batch(user, ["ok", "fail"]): a batch of the user's run to its end, callbacks
    after commit executed (so its notification tasks are queued)."""

    def make(user, outcomes: list[str], **kwargs: Any) -> BatchProcess:
        batch = BatchFactory(user=user, **kwargs)
        add_documents(batch, len(outcomes))
        with django_capture_on_commit_callbacks(execute=True):
            run_documents(outcomes)
        batch.refresh_from_db()
        return batch

    return make
