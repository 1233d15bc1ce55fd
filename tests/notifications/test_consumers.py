"""Live events over the WebSocket (issue 19): `/ws/events/` through Sheaf's whole ASGI
application (session and API-key authentication included) with Channels' communicator. The
delivery tests run once with the process's tail of the event log and once with the Redis
channel layer carrying the events (where a Redis server answers); the rest with the run's
settings."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.test import Client
from django.utils import timezone

from accounts.services import api_key_create
from batches import services
from batches.tasks import drain
from batchsite.asgi import application
from notifications import live
from notifications.models import Event, EventKind
from notifications.services import outbox_batch_progress, outbox_batch_state
from tests.notifications.test_live import a_finished_batch, two_invoices
from tests.support.cluster import wait_for
from tests.support.documents import encrypted_pdf, text_pdf

pytestmark = pytest.mark.django_db(transaction=True)

REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/15"


def _redis_answers() -> bool:
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=1).ping()
    except redis.RedisError:
        return False
    return True


@pytest.fixture(autouse=True)
def tail_stopped() -> Iterator[None]:
    yield
    live.TAIL.stop()


@pytest.fixture(params=["tail", "redis"])
def carrier(request, settings) -> str:
    """How events reach the web process: its tail of the log, or Redis's pub/sub."""
    if request.param == "redis":
        if not _redis_answers():
            pytest.skip(f"no Redis server answers at {REDIS_URL}")
        settings.CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
                "CONFIG": {"hosts": [REDIS_URL], "prefix": f"sheaf-test-{os.getpid()}"},
            }
        }
    else:
        settings.CHANNEL_LAYERS = {}
    return request.param


class Socket:
    """A client of `/ws/events/`, in an event loop of its own thread (the test's thread may
    hold one already: Playwright's, in a run with the browser tests)."""

    def __init__(self, query: str = "", *, headers: list[tuple[bytes, bytes]] | None = None):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        self.communicator = WebsocketCommunicator(
            application, f"/ws/events/{query}", headers=headers or []
        )
        self.accepted, _ = self._run(self.communicator.connect(timeout=10))

    def _serve(self) -> None:
        self.loop.run_forever()
        self.loop.close()  # here: the Redis layer flushes itself in the closing loop

    def _run(self, step: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(step, self.loop).result(timeout=60)

    def frame(self, timeout: float = 20) -> dict[str, Any]:
        return self._run(self.communicator.receive_json_from(timeout))

    def until(self, kind: str) -> list[dict[str, Any]]:
        frames = [self.frame()]
        while frames[-1]["type"] != kind:
            frames.append(self.frame())
        return frames

    def closed(self) -> tuple[int, str]:
        """The close the server sent: (code, reason)."""
        output = self._run(self.communicator.receive_output(10))
        assert output["type"] == "websocket.close", output
        return output.get("code"), output.get("reason", "")

    def quiet(self, seconds: float = 0.5) -> bool:
        return self._run(self.communicator.receive_nothing(seconds))

    def close(self) -> None:
        self._run(self.communicator.disconnect())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def session_headers(user, origin: str = "http://testserver") -> list[tuple[bytes, bytes]]:
    client = Client()
    client.force_login(user)
    name = django_settings.SESSION_COOKIE_NAME
    cookie = f"{name}={client.cookies[name].value}"
    return [(b"cookie", cookie.encode()), (b"origin", origin.encode())]


def bearer(user) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", f"Bearer {api_key_create(user=user, name='ws')[1]}".encode())]


def test_the_dashboard_follows_a_batch_from_start_to_finish(alice, bob, settings, carrier):
    socket = Socket(headers=session_headers(alice))
    assert socket.accepted
    bobs = two_invoices(bob, settings)
    batch = two_invoices(alice, settings)
    drain(budget_seconds=120)

    frames = socket.until("batch.completed")
    socket.close()

    kinds = [frame["type"] for frame in frames]
    assert kinds[0] == "batch.started" and kinds[-1] == "batch.completed"
    assert kinds.count("document.completed") == 2
    assert {frame["data"]["batch"]["id"] for frame in frames} == {str(batch.pk)}
    assert str(bobs.pk) not in str(frames)
    ids = [frame["id"] for frame in frames]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert set(frames[-1]) == {"id", "type", "created_at", "data"}
    assert frames[-1]["data"]["batch"]["counts"]["completed"] == 2


def test_a_key_narrowed_to_one_batch_gets_only_that_batch(alice, settings, carrier):
    other = two_invoices(alice, settings)
    batch = two_invoices(alice, settings)
    socket = Socket(f"?batch={batch.pk}", headers=bearer(alice))
    drain(budget_seconds=120)

    frames = socket.until("batch.completed")
    frames += [socket.frame()] if not socket.quiet(1.0) else []
    socket.close()

    assert {frame["data"]["batch"]["id"] for frame in frames} == {str(batch.pk)}
    assert str(other.pk) not in str(frames)


def test_every_kind_of_event_reaches_the_socket(alice, settings, carrier):
    """The whole catalogue: a batch that runs and completes, one whose only document cannot be
    read (document.failed, batch.failed), one paused and resumed (a circuit), one canceled."""
    socket = Socket(headers=bearer(alice))
    two_invoices(alice, settings)
    services.batch_create(
        user=alice,
        files=[
            ContentFile(
                encrypted_pdf(text_pdf(["Total 9.00"]), user_password="s", algorithm="AES-256"),
                name="locked.pdf",
            )
        ],
        prompt="total",
    )
    drain(budget_seconds=120)
    held = two_invoices(alice, settings)
    with transaction.atomic():  # at most one a second: a drain of two documents may make none
        outbox_batch_progress(
            batch_id=held.pk,
            counts={"total": 2, "queued": 2, "processing": 0, "completed": 0, "failed": 0},
        )
    with transaction.atomic():
        outbox_batch_state(batch_id=held.pk, kind=EventKind.BATCH_PAUSED, reason="circuit")
    with transaction.atomic():
        outbox_batch_state(batch_id=held.pk, kind=EventKind.BATCH_RESUMED, reason="circuit")
    services.batch_cancel(batch=held)

    kinds = {frame["type"] for frame in socket.until("batch.canceled")}
    socket.close()
    assert kinds == {
        "batch.started",
        "batch.progress",
        "document.completed",
        "batch.completed",
        "document.failed",
        "batch.failed",
        "batch.paused",
        "batch.resumed",
        "batch.canceled",
    }


def test_a_socket_that_reconnects_gets_what_it_missed(alice, settings, carrier):
    batch, story = a_finished_batch(alice, settings)

    socket = Socket(f"?batch={batch.pk}&last_event_id={story[1].pk}", headers=bearer(alice))
    missed = socket.until("batch.completed")
    assert [frame["id"] for frame in missed] == [event.pk for event in story[2:]]

    services.document_rerun(document=batch.documents.first())
    drain(budget_seconds=120)
    again = socket.until("batch.completed")
    socket.close()
    assert again[0]["type"] == "batch.started" and again[0]["data"]["batch"]["run"] == 2
    assert not {frame["id"] for frame in again} & {frame["id"] for frame in missed}


def test_an_id_older_than_an_hour_gets_a_resync_first(alice, settings):
    batch, story = a_finished_batch(alice, settings)
    Event.objects.filter(batch=batch).update(created_at=timezone.now() - timedelta(hours=2))
    first = story[0]

    socket = Socket(f"?last_event_id={first.pk}", headers=bearer(alice))
    resync = socket.frame()
    socket.close()
    assert resync["type"] == "resync" and "id" not in resync


def test_a_quiet_socket_gets_heartbeats(alice, monkeypatch):
    monkeypatch.setattr(live, "HEARTBEAT_SECONDS", 0.3)
    socket = Socket(headers=bearer(alice))
    beats = [socket.frame(), socket.frame()]
    socket.close()
    assert [beat["type"] for beat in beats] == ["heartbeat", "heartbeat"]
    assert all("id" not in beat for beat in beats)


@pytest.mark.parametrize(
    ("query", "headers", "code", "reason"),
    [
        ("", [], 4401, "Sign in"),
        ("", [(b"authorization", b"Bearer sk_sheaf_nonsense")], 4401, "Unknown API key"),
        ("", [(b"authorization", b"Token abc")], 4401, "Bearer"),
        ("?batch=not-a-batch", "key", 4404, "No such batch"),
        ("?last_event_id=yesterday", "key", 4400, "last_event_id"),
    ],
)
def test_a_refused_connection_says_why(alice, query, headers, code, reason):
    socket = Socket(query, headers=bearer(alice) if headers == "key" else headers)
    assert socket.accepted
    closed = socket.closed()
    socket.close()
    assert closed[0] == code and reason in closed[1]


def test_another_users_batch_does_not_exist(alice, bob, settings):
    bobs = two_invoices(bob, settings)
    socket = Socket(f"?batch={bobs.pk}", headers=bearer(alice))
    assert socket.closed()[0] == 4404
    socket.close()


def test_a_key_in_the_query_needs_tls_in_production(alice, settings):
    settings.DEBUG = False
    secret = api_key_create(user=alice, name="query")[1]

    plain = Socket(f"?key={secret}")
    refused = plain.closed()
    plain.close()
    behind_tls = Socket(f"?key={secret}", headers=[(b"x-forwarded-proto", b"https")])
    beat_after = behind_tls.quiet(0.3)
    behind_tls.close()

    assert refused[0] == 4403 and "TLS" in refused[1]
    assert behind_tls.accepted and beat_after


def test_a_session_from_another_site_is_refused_at_the_handshake(alice):
    socket = Socket(headers=session_headers(alice, origin="https://evil.example"))
    assert not socket.accepted
    socket.close()


def test_an_unreachable_redis_costs_one_warning_and_no_work(settings, caplog):
    """Events still go into the log (clients read them when they reconnect): the publisher
    says once that Redis is away and sends nothing more for a while."""
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]},  # nothing listens there
        }
    }
    publisher = live.Publisher(log=logging.getLogger("tests.publisher"))  # its own warnings

    def said() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "tests.publisher"]

    event = Event(
        pk=1,
        user_id=1,
        payload={"type": "batch.started", "created_at": "", "data": {}},
        created_at=timezone.now(),
    )

    with caplog.at_level("WARNING", logger="tests.publisher"):
        publisher.publish(event)
        assert wait_for(lambda: said(), timeout=10)
        publisher.publish(event)
        publisher.publish(event)
        time.sleep(0.5)

    assert len(said()) == 1
