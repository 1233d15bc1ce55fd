from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.http import AuthenticatedRequest
from batchsite.api import error_responses, paginate, paginated
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
