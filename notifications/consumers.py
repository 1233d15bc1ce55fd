"""`/ws/events/`: a user's batch events over a WebSocket (see notifications.live).

A connection is the signed-in user's (the dashboard's session cookie, from a page of Sheaf's own
origin) or an API key's: `Authorization: Bearer <key>`, or `?key=<key>` where a header cannot be
set (browsers' WebSocket); a key in the query is refused over plain HTTP in production, where it
would travel and be logged in the clear. `?batch=<id>` narrows the events to one batch and
`?last_event_id=<id>` resumes after the last one seen. Every frame is a JSON text message
`{"id", "type", "created_at", "data"}` (a `heartbeat` or `resync` has no id).

A refused connection is accepted and closed at once with a code and a reason the client can
read: 4400 (a bad parameter), 4401 (no valid key or session), 4403 (a key over plain HTTP),
4404 (no such batch). A session from another site's page is refused before the handshake.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import BaseChannelLayer
from django.conf import settings
from django.http import Http404
from django.http.request import split_domain_port, validate_host

from accounts.models import User
from accounts.services import ApiKeyInvalid, api_key_authenticate
from batches import selectors
from notifications.live import TAIL, Inbox, Live, Subscriber, database_call, follow, group_name

logger = logging.getLogger(__name__)


class Refused(Exception):
    def __init__(self, code: int, reason: str, *, handshake: bool = False) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.handshake = handshake  # refuse the handshake itself (no code reaches the client)


@dataclass(frozen=True)
class Terms:
    """Whose events a connection gets, narrowed to which batch, after which id."""

    user_id: int
    batch_id: uuid.UUID | None
    last_id: int | None


def connection_terms(scope: dict[str, Any]) -> Terms:
    """The terms of a connection from its handshake, or Refused (reads the database)."""
    headers = {name.decode("latin-1").lower(): value for name, value in scope["headers"]}
    query = {name: values[-1] for name, values in parse_qs(scope["query_string"].decode()).items()}
    user, by_key = _who(scope, headers, query)
    batch_id = None
    if query.get("batch"):
        try:
            # As the API: a try on one document is the upload page's own, not a key's.
            batch = selectors.batch_get_for_user(
                user=user, batch_id=query["batch"], trials=not by_key
            )
        except Http404:
            raise Refused(4404, "No such batch.") from None
        batch_id = batch.pk
    last = query.get("last_event_id")
    try:
        last_id = int(last) if last else None
    except ValueError:
        raise Refused(4400, "last_event_id must be an event id (a whole number).") from None
    return Terms(user_id=user.pk, batch_id=batch_id, last_id=last_id)


def _who(
    scope: dict[str, Any], headers: dict[str, bytes], query: dict[str, str]
) -> tuple[User, bool]:
    """(user, by an API key) of the connection."""
    authorization = headers.get("authorization", b"").decode("latin-1").split()
    secret = query.get("key")
    if authorization:
        if len(authorization) != 2 or authorization[0].lower() != "bearer":
            raise Refused(4401, "Send the key as `Authorization: Bearer <api key>`.")
        secret = authorization[1]
    elif secret is not None and not (settings.DEBUG or _secure(scope, headers)):
        raise Refused(
            4403,
            "A key in the query is only taken over TLS (wss://); "
            "or send it as `Authorization: Bearer <api key>`.",
        )
    if secret is not None:
        try:
            return api_key_authenticate(secret=secret).user, True
        except ApiKeyInvalid as exc:
            raise Refused(4401, str(exc)) from None
    user = scope.get("user")
    if user is None or not user.is_authenticated:
        raise Refused(4401, "Sign in, or send an API key (`Authorization: Bearer <api key>`).")
    if not _same_site(headers):
        raise Refused(4403, "Not from a page of this site.", handshake=True)
    return user, False


def _secure(scope: dict[str, Any], headers: dict[str, bytes]) -> bool:
    """Over TLS: to this server, or to the TLS proxy in front of it (SECURE_PROXY_SSL_HEADER)."""
    if scope.get("scheme") == "wss":
        return True
    header, value = settings.SECURE_PROXY_SSL_HEADER
    name = header.removeprefix("HTTP_").replace("_", "-").lower()
    return headers.get(name, b"").decode("latin-1").split(",")[0].strip() == value


def _same_site(headers: dict[str, bytes]) -> bool:
    """A browser's connection comes from a page of Sheaf's own host (cookies go with any
    site's WebSocket, so this is the WebSocket's CSRF check)."""
    host = urlsplit(headers.get("origin", b"").decode("latin-1")).netloc
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    domain, _port = split_domain_port(host)
    return bool(domain) and validate_host(domain, allowed)


class EventsConsumer(AsyncJsonWebsocketConsumer):
    """One connection to `/ws/events/`."""

    inbox: Inbox
    terms: Terms
    pump: asyncio.Task[None] | None = None
    subscriber: Subscriber | None = None
    joined: str | None = None

    async def connect(self) -> None:
        try:
            self.terms = await database_call(connection_terms)(dict(self.scope))
        except Refused as refused:
            if not refused.handshake:
                await self.accept()
            await self.close(code=refused.code, reason=refused.reason)
            return
        self.inbox = Inbox()
        layer = cast("BaseChannelLayer | None", self.channel_layer)  # None: no CHANNEL_LAYERS
        if layer is not None:
            self.joined = group_name(self.terms.user_id)
            await layer.group_add(self.joined, self.channel_name)
        else:
            self.subscriber = await database_call(TAIL.subscribe)(
                user_id=self.terms.user_id, batch_id=self.terms.batch_id, deliver=self.inbox.put
            )
        await self.accept()
        self.pump = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        terms = self.terms
        frames = follow(
            self.inbox,
            user_id=terms.user_id,
            batch_id=terms.batch_id,
            last_id=terms.last_id,
            via="websocket",
        )
        try:
            async with aclosing(frames):
                async for frame in frames:
                    await self.send_json(frame)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("a live connection failed")
            await self.close(code=1011)

    async def live_event(self, message: dict[str, Any]) -> None:
        """A `live.event` from the channel layer (notifications.live.Publisher)."""
        self.inbox.put_nowait(Live.from_message(message))

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        """Clients have nothing to say: what they send is ignored."""

    async def disconnect(self, code: int) -> None:
        if self.pump is not None:
            self.pump.cancel()
        if self.joined is not None:
            await self.channel_layer.group_discard(self.joined, self.channel_name)
        if self.subscriber is not None:
            TAIL.unsubscribe(self.subscriber)
