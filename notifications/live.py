"""Events for live clients: the event log (`Event`, one row per event, ids rising) followed by
WebSocket connections (`/ws/events/`, notifications.consumers) and server-sent events
(`GET /api/v1/events/`).

A client's events come to its connection through an `Inbox`, from one of two sources:

- With a channel layer (`REDIS_URL`): the process that records an event publishes it after
  commit (`publish`, one Redis PUBLISH per event) to its owner's group; each web process hands
  it to that owner's connections.
- Without one (the embedded default), each web process runs one `Tail` of the log: a thread
  that reads the events written since its last read every POLL_SECONDS (one query for every
  open connection of the process, not one each) and hands each to the connections of its
  owner. Server-sent events always follow the tail.

Ids commit in the order they rise (notifications.services._event_insert), so reading "after
the last id seen" misses nothing, live or on resuming.

`follow` is what every client gets: what it missed after its `last_event_id` (read from the
log, as far back as RESUME_WINDOW; an id older than that gets a `resync` event first, telling
the client to read the batch again), then live events, each once, and a `heartbeat` (no id)
after HEARTBEAT_SECONDS without one, so proxies keep the connection open and clients know it is
alive.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import close_old_connections, connection
from django.utils import timezone

from batchsite.metrics import observe_event_delivery
from notifications.models import Event, EventKind

logger = logging.getLogger(__name__)

RESUME_WINDOW = timedelta(hours=1)
HEARTBEAT_SECONDS = 15.0
POLL_SECONDS = 0.2
READ_AT_MOST = 500
SEEN_KEPT = 2048
# The channel layer message type: its handler is EventsConsumer.live_event.
LAYER_MESSAGE = "live.event"


P = ParamSpec("P")
R = TypeVar("R")


def database_call(function: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """`function` (which reads the database) for an event loop: run in Django's thread for such
    calls, its connection closed after it. A live connection reads the database once, when it
    opens: a connection kept for it would sit idle for hours."""

    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        finally:
            connection.close()

    return sync_to_async(call, thread_sensitive=True)


def group_name(user_id: int) -> str:
    """The channel layer group of a user's connections."""
    return f"sheaf-events-{user_id}"


@dataclass(frozen=True)
class Live:
    """An event on its way to live clients: its frame (as webhooks send it) and whom it is for."""

    id: int
    user_id: int
    batch_id: str | None
    created_at: datetime
    frame: dict[str, Any]

    @classmethod
    def of(cls, event: Event) -> Live:
        return cls(
            id=event.pk,
            user_id=event.user_id,
            batch_id=str(event.batch_id) if event.batch_id else None,
            created_at=event.created_at,
            frame=event.body,
        )

    def message(self) -> dict[str, Any]:
        """As a channel layer message (msgpack: plain values only)."""
        return {
            "type": LAYER_MESSAGE,
            "id": self.id,
            "user": self.user_id,
            "batch": self.batch_id,
            "created_at": self.created_at.isoformat(),
            "frame": self.frame,
        }

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> Live:
        return cls(
            id=message["id"],
            user_id=message["user"],
            batch_id=message["batch"],
            created_at=datetime.fromisoformat(message["created_at"]),
            frame=message["frame"],
        )


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
    missed = Event.objects.filter(user_id=user_id, pk__gt=last_id, created_at__gte=cutoff).exclude(
        kind=EventKind.PING
    )
    if batch_id is not None:
        missed = missed.filter(batch_id=batch_id)
    return resync, list(missed.order_by("pk")[:READ_AT_MOST])


class Inbox:
    """What one connection is handed, in the event loop that serves it; `put` from any thread."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[Live] = asyncio.Queue()

    def put(self, live: Live) -> None:
        self._loop.call_soon_threadsafe(self._queue.put_nowait, live)

    def put_nowait(self, live: Live) -> None:
        """`put` from the inbox's own event loop."""
        self._queue.put_nowait(live)

    async def get(self, timeout: float) -> Live | None:
        """The next event, or None after `timeout` seconds without one."""
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None


async def follow(
    inbox: Inbox, *, user_id: int, batch_id: uuid.UUID | None, last_id: int | None, via: str
) -> AsyncGenerator[dict[str, Any]]:
    """The frames of one client (see the module's docstring), read from `inbox` once its source
    is connected (so nothing falls between what was missed and what comes live); `via` names
    the transport in the delivery-lag metric."""
    seen: dict[int, None] = {}  # ids sent, the latest SEEN_KEPT: an event is sent once
    wanted = str(batch_id) if batch_id is not None else None

    def fresh(event_id: int) -> bool:
        if event_id in seen:
            return False
        seen[event_id] = None
        if len(seen) > SEEN_KEPT:
            del seen[next(iter(seen))]
        return True

    if last_id is not None:
        resync, missed = await database_call(events_missed)(
            user_id=user_id, last_id=last_id, batch_id=batch_id
        )
        if resync:
            yield signal("resync")
        for event in missed:
            if fresh(event.pk):
                yield event.body
    while True:
        live = await inbox.get(HEARTBEAT_SECONDS)
        if live is None:
            yield signal("heartbeat")
        elif (wanted is None or live.batch_id == wanted) and fresh(live.id):
            lag = (timezone.now() - live.created_at).total_seconds()
            observe_event_delivery(max(lag, 0.0), via)
            yield live.frame


@dataclass(eq=False)
class Subscriber:
    """One connection following the tail: its owner, the batch it is narrowed to, and where the
    tail hands its events."""

    user_id: int
    batch_id: uuid.UUID | None
    deliver: Callable[[Live], None]

    def wants(self, event: Event) -> bool:
        """The owner's events (of the batch, when narrowed to one); a webhook's `ping` is the
        endpoint's alone."""
        return (
            event.user_id == self.user_id
            and (self.batch_id is None or event.batch_id == self.batch_id)
            and event.kind != EventKind.PING
        )


class Tail:
    """The process's one reader of the event log (see the module's docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: set[Subscriber] = set()
        self._thread: threading.Thread | None = None
        self._after: int | None = None  # the highest id read

    def subscribe(
        self, *, user_id: int, batch_id: uuid.UUID | None, deliver: Callable[[Live], None]
    ) -> Subscriber:
        """Follow the log for `user_id` (reads the database when the tail starts)."""
        subscriber = Subscriber(user_id=user_id, batch_id=batch_id, deliver=deliver)
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
        """How many connections follow the tail in this process."""
        with self._lock:
            return len(self._subscribers)

    def stop(self, timeout: float = 5.0) -> None:
        """Drop every connection and wait for the thread to end (tests; a process that exits)."""
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
        """Hand the events written since the last read to their connections; the count read."""
        rows = list(Event.objects.filter(pk__gt=self._after or 0).order_by("pk")[:READ_AT_MOST])
        for row in rows:
            self._after = row.pk
            self._hand_out(row)
        return len(rows)

    def _hand_out(self, event: Event) -> None:
        with self._lock:
            subscribers = [s for s in self._subscribers if s.wants(event)]
        if subscribers:
            live = Live.of(event)
            for subscriber in subscribers:
                subscriber.deliver(live)


TAIL = Tail()


async def event_stream(
    *, user_id: int, batch_id: uuid.UUID | None, last_id: int | None
) -> AsyncGenerator[str]:
    """The server-sent events of one client, from the tail. Ends when the client goes away."""
    inbox = Inbox()
    subscriber = await database_call(TAIL.subscribe)(
        user_id=user_id, batch_id=batch_id, deliver=inbox.put
    )
    try:
        yield "retry: 3000\n\n"
        frames = follow(inbox, user_id=user_id, batch_id=batch_id, last_id=last_id, via="sse")
        async with aclosing(frames):
            async for frame in frames:
                yield sse(frame)
    finally:
        TAIL.unsubscribe(subscriber)


T = TypeVar("T")


def iterate_in_thread(stream: AsyncGenerator[T]) -> Iterator[T]:
    """`stream` for a WSGI server: run in an event loop of the calling (request) thread, one
    item at a time; closing the iterator (the client went away) closes the stream."""
    loop = asyncio.new_event_loop()
    try:
        while True:
            try:
                yield loop.run_until_complete(anext(stream))
            except StopAsyncIteration:
                return
    finally:
        loop.run_until_complete(stream.aclose())
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


class Publisher:
    """Sends recorded events to the channel layer (when there is one) from one thread with its
    own event loop per process, so the worker's threads never wait for Redis. An event that
    cannot be sent within SEND_SECONDS is logged, and publishing pauses for QUIET_SECONDS (one
    warning, not one per event, while Redis is away); clients still get every event from the
    log when they reconnect."""

    SEND_SECONDS = 2.0
    QUIET_SECONDS = 5.0

    def __init__(self, log: logging.Logger = logger) -> None:
        self._log = log
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0
        self._quiet_until = 0.0  # time.monotonic() before which nothing is sent

    def publish(self, event: Event) -> None:
        layer = get_channel_layer()
        if layer is None or time.monotonic() < self._quiet_until:
            return
        send = layer.group_send(group_name(event.user_id), Live.of(event).message())
        future = asyncio.run_coroutine_threadsafe(
            asyncio.wait_for(send, self.SEND_SECONDS), self._running_loop()
        )
        future.add_done_callback(self._sent)

    def _sent(self, future: Any) -> None:
        if future.cancelled() or future.exception() is None:
            return
        with self._lock:
            if time.monotonic() < self._quiet_until:
                return  # already said
            self._quiet_until = time.monotonic() + self.QUIET_SECONDS
        self._log.warning(
            "live events are not published for %.0f s (clients get them from the log when they "
            "reconnect): %r",
            self.QUIET_SECONDS,
            future.exception(),
        )

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():  # new, or forked from its owner
                self._loop = asyncio.new_event_loop()
                self._pid = os.getpid()
                threading.Thread(
                    target=self._loop.run_forever, name="sheaf-publisher", daemon=True
                ).start()
            return self._loop


PUBLISHER = Publisher()
