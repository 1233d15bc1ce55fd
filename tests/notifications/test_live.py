"""Live events (issue 19): every change of a batch is an event in one log, with a rising id, and
`GET /api/v1/events/` streams them to their owner as server-sent events over a real HTTP
connection; a client that reconnects with the last id it saw gets what it missed."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.db import connection, transaction
from django.utils import timezone

from accounts.services import api_key_create
from batches import services
from batches.models import BatchProcess
from batches.tasks import drain
from notifications import live
from notifications.models import Event, EventKind
from notifications.services import outbox_batch_state
from samples.invoices import invoice

pytestmark = pytest.mark.django_db(transaction=True)


def two_invoices(user, settings) -> BatchProcess:
    settings.SHEAF_EXTRACTION_ENGINE = "local"
    return services.batch_create(
        user=user,
        files=[ContentFile(invoice(n).pdf, name=f"{n}.pdf") for n in (1, 2)],
        prompt="invoice number, total",
    )


def a_finished_batch(user, settings) -> tuple[BatchProcess, list[Event]]:
    """Two invoices of the user's, read, and the events of their batch in order."""
    batch = two_invoices(user, settings)
    drain(budget_seconds=120)
    return batch, list(Event.objects.filter(batch=batch).order_by("pk"))


class Stream:
    """A client of the events endpoint: reads one server-sent event at a time."""

    def __init__(self, url: str, key: str, **headers: str) -> None:
        headers = {"Authorization": f"Bearer {key}", **headers}
        request = urllib.request.Request(url, headers=headers)  # noqa: S310 - loopback
        self.response = urllib.request.urlopen(request, timeout=20)  # noqa: S310 - loopback

    def __iter__(self) -> Iterator[dict]:
        fields: dict[str, str] = {}
        for raw in self.response:
            line = raw.decode().rstrip("\n")
            if line:
                name, _, value = line.partition(": ")
                fields[name] = value
                continue
            if "event" in fields:
                frame = json.loads(fields["data"])
                assert frame["type"] == fields["event"]
                assert fields.get("id") == (str(frame["id"]) if "id" in frame else None)
                yield frame
            fields = {}

    def until(self, kind: str) -> list[dict]:
        frames = []
        for frame in self:
            frames.append(frame)
            if frame["type"] == kind:
                return frames
        raise AssertionError(f"the stream ended before {kind}")

    def close(self) -> None:
        self.response.close()


@pytest.fixture(autouse=True)
def tail_stopped() -> Iterator[None]:
    """The process's tail of the log ends with each test (its streams are gone with the
    client; the server would notice at its next heartbeat)."""
    yield
    live.TAIL.stop()


@pytest.fixture(params=["wsgi", "asgi"])
def server(request) -> str:
    """The URL of a server: the tests' live server (WSGI: the stream is iterated in its request
    thread) or daphne (ASGI: in its event loop), as production may run either."""
    if request.param == "asgi":
        return request.getfixturevalue("asgi_server").url
    return request.getfixturevalue("live_server").url


@pytest.fixture
def key(alice) -> str:
    return api_key_create(user=alice, name="live")[1]


def test_a_batch_tells_its_story_to_a_client_that_follows_it(alice, bob, key, server, settings):
    stream = Stream(f"{server}/api/v1/events/", key)
    bobs = two_invoices(bob, settings)  # not alice's: never in her stream
    batch = two_invoices(alice, settings)
    drain(budget_seconds=120)

    frames = stream.until("batch.completed")
    stream.close()

    kinds = [frame["type"] for frame in frames if frame["data"]["batch"]["id"] == str(batch.pk)]
    assert kinds[0] == "batch.started"
    assert kinds.count("document.completed") == 2
    assert kinds[-1] == "batch.completed"
    assert not [f for f in frames if f["data"]["batch"]["id"] == str(bobs.pk)]
    ids = [frame["id"] for frame in frames]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    completed = [f for f in frames if f["type"] == "document.completed"]
    for frame in completed:
        document = frame["data"]["document"]
        assert document["filename"] in ("1.pdf", "2.pdf")
        assert sum(document["values"].values()) == 2  # invoice number and total, by status
    finished = frames[-1]["data"]["batch"]
    assert (finished["status"], finished["counts"]["completed"], finished["run"]) == (
        "completed",
        2,
        1,
    )


def test_a_client_that_reconnects_gets_what_it_missed_then_live_events(
    alice, key, server, settings
):
    batch, story = a_finished_batch(alice, settings)
    seen = story[1]  # the client saw the start and one more, then lost its connection

    stream = Stream(
        f"{server}/api/v1/events/?batch={batch.pk}", key, **{"Last-Event-ID": str(seen.pk)}
    )
    missed = stream.until("batch.completed")
    assert [frame["id"] for frame in missed] == [event.pk for event in story[2:]]

    # Still connected: a re-run's events come live.
    services.document_rerun(document=batch.documents.first())
    drain(budget_seconds=120)
    live_frames = stream.until("batch.completed")
    stream.close()
    assert live_frames[0]["type"] == "batch.started"
    assert live_frames[0]["data"]["batch"]["run"] == 2


def test_an_id_older_than_an_hour_gets_a_resync_first(alice, key, live_server, settings):
    batch, story = a_finished_batch(alice, settings)
    Event.objects.filter(batch=batch).update(created_at=timezone.now() - timedelta(hours=2))
    first = story[0]

    stream = Stream(f"{live_server.url}/api/v1/events/?last_event_id={first.pk}", key)
    frames = iter(stream)
    resync = next(frames)
    stream.close()

    assert resync["type"] == "resync" and "id" not in resync


def test_a_quiet_stream_gets_heartbeats(alice, key, live_server, monkeypatch):
    monkeypatch.setattr(live, "HEARTBEAT_SECONDS", 0.3)
    stream = Stream(f"{live_server.url}/api/v1/events/", key)
    frames = iter(stream)
    beats = [next(frames), next(frames)]
    stream.close()
    assert [beat["type"] for beat in beats] == ["heartbeat", "heartbeat"]


def test_the_stream_is_the_owners_only(alice, bob, key, live_server, settings):
    bobs = two_invoices(bob, settings)

    def status(url: str, **headers: str) -> tuple[int, dict]:
        try:
            Stream(url, key, **headers).close()
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())
        return 200, {}

    base = f"{live_server.url}/api/v1/events/"
    assert status(f"{base}?batch={bobs.pk}")[0] == 404
    assert status(f"{base}?last_event_id=yesterday") == (
        400,
        {
            "code": "invalid",
            "detail": "last_event_id must be an event id (a whole number), not 'yesterday'.",
        },
    )
    request = urllib.request.Request(base)  # noqa: S310 - the test's loopback server
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)  # noqa: S310 - loopback
    assert refused.value.code == 401


def test_a_client_that_saw_the_newest_event_misses_none_of_those_recorded_at_once(alice, settings):
    """Two workers record events at the same time and the first commits last. PostgreSQL hands
    out ids when rows are inserted, not when they commit: whatever a client has seen of the log
    meanwhile, resuming after the newest id it saw gets all the rest."""
    batch = two_invoices(alice, settings)
    recorded, release = threading.Event(), threading.Event()

    def resume(*, hold: bool) -> None:
        try:
            with transaction.atomic():
                outbox_batch_state(batch_id=batch.pk, kind=EventKind.BATCH_RESUMED, reason="budget")
                if hold:
                    recorded.set()
                    release.wait(10)
        finally:
            connection.close()

    first = threading.Thread(target=resume, kwargs={"hold": True})
    first.start()
    assert recorded.wait(10)
    second = threading.Thread(target=resume, kwargs={"hold": False})
    second.start()
    second.join(1.0)  # out of order, it would have committed by now with the higher id
    seen = list(Event.objects.filter(batch=batch).values_list("pk", flat=True))
    release.set()
    first.join(10)
    second.join(10)

    _, missed = live.events_missed(
        user_id=alice.pk, last_id=max(seen, default=0), batch_id=batch.pk
    )
    recorded_ids = list(
        Event.objects.filter(batch=batch).order_by("pk").values_list("pk", flat=True)
    )
    assert len(recorded_ids) == 2
    assert sorted([*seen, *(event.pk for event in missed)]) == recorded_ids


def test_events_that_notified_nobody_are_forgotten_after_a_day(alice, settings):
    from notifications.services import notifications_sweep

    batch = two_invoices(alice, settings)
    drain(budget_seconds=120)
    kinds = set(Event.objects.filter(batch=batch).values_list("kind", flat=True))
    assert {"batch.started", "document.completed", "batch.completed"} <= kinds

    swept = notifications_sweep(now=timezone.now() + timedelta(days=2))

    assert swept["forgotten"] >= 3
    # What the owner was told of stays (its email, its webhook deliveries' log).
    assert list(Event.objects.filter(batch=batch).values_list("kind", flat=True)) == [
        "batch.completed"
    ]
