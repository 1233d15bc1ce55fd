"""`Authorization: Bearer <api key>` for the REST API."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from accounts.models import ApiKey, User
from accounts.services import ApiKeyInvalid, api_key_authenticate


class BearerKeyAuthentication(BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[User, ApiKey] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword.lower().encode():
            return None  # not ours: the session may still authenticate the request
        if len(parts) != 2:
            raise AuthenticationFailed("Send the key as `Authorization: Bearer <api key>`.")
        try:
            key = api_key_authenticate(secret=parts[1].decode("ascii"))
        except UnicodeDecodeError as exc:
            raise AuthenticationFailed("Unknown API key.") from exc
        except ApiKeyInvalid as exc:
            raise AuthenticationFailed(str(exc)) from exc
        return key.user, key

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class BearerKeyScheme(OpenApiAuthenticationExtension):
    target_class = BearerKeyAuthentication
    name = "apiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key from /settings/ or POST /api/v1/keys/: sk_sheaf_…",
        }
