"""Sheaf as an ASGI application: Django's views over HTTP and the live events' WebSocket
(`/ws/events/`, notifications.consumers) on the same port. `manage.py runserver` serves it
(daphne's runserver); in production `daphne batchsite.asgi:application` behind the TLS proxy
(README, "Production")."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "batchsite.settings")
# Django first: the consumer's imports need the apps loaded.
http = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from notifications.consumers import EventsConsumer  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": http,
        "websocket": AuthMiddlewareStack(
            # The stubs type django.urls.path for views only; Channels routes consumers with it.
            URLRouter([path("ws/events/", EventsConsumer.as_asgi())])  # type: ignore[list-item, arg-type]
        ),
    }
)
