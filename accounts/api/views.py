from __future__ import annotations

import dataclasses

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.serializers import (
    ApiKeyCreatedOutputSerializer,
    ApiKeyCreateInputSerializer,
    ApiKeyOutputSerializer,
    MeOutputSerializer,
)
from accounts.http import AuthenticatedRequest
from accounts.selectors import api_key_list_for_user, user_effective_plan, user_usage
from accounts.services import api_key_create, api_key_revoke
from batchsite.api import error_responses, paginate, paginated


class MeApi(APIView):
    @extend_schema(
        operation_id="me", responses={200: MeOutputSerializer, **error_responses(401, 405)}
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        effective = user_effective_plan(request.user)
        plan = effective.plan
        data = {
            "email": request.user.email,
            "plan": {"key": plan.key, "name": plan.name, "source": effective.source},
            "limits": dataclasses.asdict(plan),
            "usage": dataclasses.asdict(user_usage(request.user)),
        }
        return Response(MeOutputSerializer(data).data)


class ApiKeyListCreateApi(APIView):
    @extend_schema(
        operation_id="keys_list",
        responses={
            200: paginated("PaginatedApiKeyList", ApiKeyOutputSerializer),
            **error_responses(401, 405),
        },
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        keys = api_key_list_for_user(user=request.user)
        return paginate(request, self, keys, ApiKeyOutputSerializer)

    @extend_schema(
        operation_id="keys_create",
        request=ApiKeyCreateInputSerializer,
        responses={201: ApiKeyCreatedOutputSerializer, **error_responses(400, 401, 405, 415)},
    )
    def post(self, request: AuthenticatedRequest) -> Response:
        serializer = ApiKeyCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key, secret = api_key_create(user=request.user, name=serializer.validated_data["name"])
        # The secret is returned this once and never stored: it is no attribute of the key.
        data = {**ApiKeyOutputSerializer(key).data, "key": secret}
        return Response(data, status=status.HTTP_201_CREATED)


class ApiKeyRevokeApi(APIView):
    @extend_schema(
        operation_id="keys_revoke",
        responses={204: None, **error_responses(401, 404, 405)},
    )
    def delete(self, request: AuthenticatedRequest, key_id: int) -> Response:
        api_key_revoke(user=request.user, key_id=key_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
