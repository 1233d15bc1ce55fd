"""Events for live clients: the event log (`Event`, one row per event, ids rising) read as a
stream, for server-sent events (`GET /api/v1/events/`).

Each web process runs one `Tail` of the log, a thread that reads the events written since its
last read every POLL_SECONDS (one query for every open stream of the process, not one each) and
hands each to the streams of its owner. A stream that (re)connects with a `last_event_id` first
gets what it missed from the log, as far back as RESUME_WINDOW; an id older than that gets a
`resync` event first (the client should read the batch again). With no event for
HEARTBEAT_SECONDS a stream gets a `heartbeat` (no id), so proxies keep it open and clients know
it is alive.

PostgreSQL hands out ids when rows are inserted, not when they commit, so an event can appear
after one with a higher id: the tail looks again for the ids it skipped for GAP_SECONDS.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import close_old_connections, connection
from django.utils import timezone

from batchsite.metrics import observe_event_delivery
from notifications.models import Event

logger = logging.getLogger(__name__)

RESUME_WINDOW = timedelta(hours=1)
HEARTBEAT_SECONDS = 15.0
POLL_SECONDS = 0.2
GAP_SECONDS = 10.0
READ_AT_MOST = 500
SEEN_KEPT = 2048


def event_frame(event: Event) -> dict[str, Any]:
    """An event as clients get it: `{"id", "type", "created_at", "data"}` (webhooks alike)."""
    return {"id": event.pk, **event.payload}


def sse(frame: dict[str, Any]) -> str:
    """One server-sent event: `id:` (when it has one), `event:` and one `data:` line."""
    head = f"id: {frame['id']}\n" if frame.get("id") is not None else ""
    return f"{head}event: {frame['type']}\ndata: {json.dumps(frame, default=str)}\n\n"


def signal(kind: str) -> dict[str, Any]:
    """A frame that is no event of the log (`heartbeat`, `resync`): it has no id."""
    return {"type": kind, "created_at": timezone.now().isoformat(), "data": {}}


def events_missed(
    *, user_id: int, last_id: int, batch_id: uuid.UUID | None = None
) -> tuple[bool, list[Event]]:
    """What a client that saw `last_id` missed: (resync, events). `resync` when events after it
    may be gone (it is older than RESUME_WINDOW, or unknown); the events are those of the last
    RESUME_WINDOW after it, oldest first."""
    cutoff = timezone.now() - RESUME_WINDOW
    anchor = (
        Event.objects.filter(user_id=user_id, pk__lte=last_id)
        .order_by("-pk")
        .values_list("created_at", flat=True)
        .first()
    )
    resync = last_id > 0 and (anchor is None or anchor < cutoff)
    missed = Event.objects.filter(user_id=user_id, pk__gt=last_id, created_at__gte=cutoff)
    if batch_id is not None:
        missed = missed.filter(batch_id=batch_id)
    return resync, list(missed.order_by("pk")[:READ_AT_MOST])


@dataclass(eq=False)
class Subscriber:
    """One open stream: its owner, the batch it is narrowed to, and what the tail hands it."""

    user_id: int
    batch_id: uuid.UUID | None
    events: queue.SimpleQueue[Event] = field(default_factory=queue.SimpleQueue)

    def wants(self, event: Event) -> bool:
        return event.user_id == self.user_id and (
            self.batch_id is None or event.batch_id == self.batch_id
        )


class Tail:
    """The process's one reader of the event log (see the module's docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: set[Subscriber] = set()
        self._thread: threading.Thread | None = None
        self._after: int | None = None  # the highest id read
        self._gaps: dict[int, float] = {}  # skipped id -> when to stop looking for it

    def subscribe(self, *, user_id: int, batch_id: uuid.UUID | None) -> Subscriber:
        subscriber = Subscriber(user_id=user_id, batch_id=batch_id)
        with self._lock:
            self._subscribers.add(subscriber)
            if self._thread is None or not self._thread.is_alive():
                if self._after is None:
                    self._after = Event.objects.order_by("-pk").values_list("pk", flat=True).first()
                    self._after = self._after or 0
                self._thread = threading.Thread(target=self._run, name="sheaf-events", daemon=True)
                self._thread.start()
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            self._subscribers.discard(subscriber)

    @property
    def streams(self) -> int:
        """How many streams are open in this process."""
        with self._lock:
            return len(self._subscribers)

    def stop(self, timeout: float = 5.0) -> None:
        """Drop every stream and wait for the thread to end (tests; a process that exits)."""
        with self._lock:
            self._subscribers.clear()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        try:
            while True:
                with self._lock:
                    if not self._subscribers:
                        self._thread = None
                        self._after = None  # read from the newest again when needed
                        self._gaps.clear()
                        return
                try:
                    found = self._read()
                except Exception:
                    logger.exception("the event tail could not read the log")
                    close_old_connections()
                    found = 0
                if not found:
                    time.sleep(POLL_SECONDS)
        finally:
            connection.close()

    def _read(self) -> int:
        """Hand the events written since the last read to their streams; the count read."""
        after = self._after or 0
        rows = list(Event.objects.filter(pk__gt=after).order_by("pk")[:READ_AT_MOST])
        now = time.monotonic()
        self._gaps = {pk: until for pk, until in self._gaps.items() if until > now}
        if self._gaps:
            rows += Event.objects.filter(pk__in=list(self._gaps))
        expected = after + 1
        for row in sorted(rows, key=lambda row: row.pk):
            self._gaps.pop(row.pk, None)
            if row.pk > after:
                for missing in range(expected, row.pk):
                    self._gaps.setdefault(missing, now + GAP_SECONDS)
                expected = row.pk + 1
                self._after = row.pk
            self._hand_out(row)
        return len(rows)

    def _hand_out(self, event: Event) -> None:
        with self._lock:
            subscribers = [s for s in self._subscribers if s.wants(event)]
        for subscriber in subscribers:
            subscriber.events.put(event)


TAIL = Tail()


def event_stream(*, user_id: int, batch_id: uuid.UUID | None, last_id: int | None) -> Iterator[str]:
    """The server-sent events of one client: what it missed after `last_id`, then live events,
    with a heartbeat when nothing happens. Ends when the client goes away."""
    subscriber = TAIL.subscribe(user_id=user_id, batch_id=batch_id)
    seen: dict[int, None] = {}  # ids sent, the latest SEEN_KEPT: an event is sent once

    def fresh(event: Event) -> bool:
        if event.pk in seen:
            return False
        seen[event.pk] = None
        if len(seen) > SEEN_KEPT:
            del seen[next(iter(seen))]
        return True

    try:
        yield "retry: 3000\n\n"
        resync, missed = (
            events_missed(user_id=user_id, last_id=last_id, batch_id=batch_id)
            if last_id is not None
            else (False, [])
        )
        if not connection.in_atomic_block:
            # Nothing more is read here (the tail reads for every stream): the connection goes
            # back now, not when the client leaves.
            connection.close()
        if resync:
            yield sse(signal("resync"))
        for event in missed:
            if fresh(event):
                yield sse(event_frame(event))
        while True:
            try:
                event = subscriber.events.get(timeout=HEARTBEAT_SECONDS)
            except queue.Empty:
                yield sse(signal("heartbeat"))
                continue
            if fresh(event):
                lag = (timezone.now() - event.created_at).total_seconds()
                observe_event_delivery(max(lag, 0.0), "sse")
                yield sse(event_frame(event))
    finally:
        TAIL.unsubscribe(subscriber)
