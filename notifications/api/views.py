from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from django.core.handlers.asgi import ASGIRequest
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.http import AuthenticatedRequest
from batches import selectors
from batchsite.api import error_responses, paginate, paginated
from batchsite.errors import Rejected
from notifications import live
from notifications.api.serializers import (
    WebhookEndpointCreatedOutputSerializer,
    WebhookEndpointCreateInputSerializer,
    WebhookEndpointOutputSerializer,
)
from notifications.selectors import webhook_endpoint_list_for_user
from notifications.services import webhook_endpoint_create, webhook_endpoint_delete


class WebhookListCreateApi(APIView):
    @extend_schema(
        operation_id="webhooks_list",
        responses={
            200: paginated("PaginatedWebhookEndpointList", WebhookEndpointOutputSerializer),
            **error_responses(401, 405),
        },
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        endpoints = webhook_endpoint_list_for_user(user=request.user)
        return paginate(request, self, endpoints, WebhookEndpointOutputSerializer)

    @extend_schema(
        operation_id="webhooks_create",
        request=WebhookEndpointCreateInputSerializer,
        responses={
            201: WebhookEndpointCreatedOutputSerializer,
            **error_responses(400, 401, 403, 405, 415),
        },
    )
    def post(self, request: AuthenticatedRequest) -> Response:
        serializer = WebhookEndpointCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint = webhook_endpoint_create(user=request.user, **serializer.validated_data)
        return Response(
            WebhookEndpointCreatedOutputSerializer(endpoint).data, status=status.HTTP_201_CREATED
        )


class WebhookDeleteApi(APIView):
    @extend_schema(
        operation_id="webhooks_delete",
        responses={204: None, **error_responses(401, 404, 405)},
    )
    def delete(self, request: AuthenticatedRequest, endpoint_id: int) -> Response:
        webhook_endpoint_delete(user=request.user, endpoint_id=endpoint_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class EventStreamRenderer(BaseRenderer):
    """`text/event-stream`: the events endpoint answers with a stream; its errors (401, 404,
    429) are the API's JSON error bodies under this type, which clients read as JSON."""

    media_type = "text/event-stream"
    format = "event-stream"
    charset = "utf-8"

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        return json.dumps(data).encode()


class EventStreamApi(APIView):
    """The user's events as server-sent events (see notifications.live)."""

    renderer_classes = [EventStreamRenderer, JSONRenderer]

    @extend_schema(
        operation_id="events_stream",
        summary="Follow your batches' events (server-sent events)",
        description=(
            "A `text/event-stream` of the events of your batches (all of them, or the one of "
            "`?batch=`): each event has `id:`, `event:` (its type) and `data:` lines, the data "
            'being `{"id", "type", "created_at", "data"}` as in webhooks. A `heartbeat` (no id) '
            "comes after 15 s without an event. Resume with `?last_event_id=` or the "
            "`Last-Event-ID` header: the events after it from the last hour come first; an id "
            "older than that gets a `resync` event first (read the batch again)."
        ),
        parameters=[
            OpenApiParameter("batch", OpenApiTypes.UUID, description="Only this batch's events."),
            OpenApiParameter(
                "last_event_id", OpenApiTypes.INT, description="The last event id seen."
            ),
        ],
        responses={
            (200, "text/event-stream"): OpenApiResponse(
                OpenApiTypes.STR, description="The stream, open until the client leaves."
            ),
            **error_responses(400, 401, 404, 405),
        },
    )
    def get(self, request: AuthenticatedRequest) -> StreamingHttpResponse:
        batch = request.query_params.get("batch")
        batch_id = (
            selectors.batch_get_for_user(user=request.user, batch_id=batch, trials=False).pk
            if batch
            else None
        )
        last = request.query_params.get("last_event_id") or request.headers.get("Last-Event-ID")
        try:
            last_id = int(last) if last not in (None, "") else None
        except ValueError:
            raise Rejected.one(
                "invalid", f"last_event_id must be an event id (a whole number), not {last!r}."
            ) from None
        stream = live.event_stream(user_id=request.user.pk, batch_id=batch_id, last_id=last_id)
        response = StreamingHttpResponse(
            # An ASGI server iterates it in its event loop; a WSGI server in this thread.
            stream if isinstance(request._request, ASGIRequest) else live.iterate_in_thread(stream),
            content_type="text/event-stream",
        )
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
        return response
