"""What every API endpoint shares: the error shape ``{"code": "...", "detail": "..."}`` and the
exception handler that turns DRF's exceptions and Sheaf's `Rejected` into it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.views import defaults
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from batchsite.errors import HTTP_STATUS, Rejected

API_PREFIX = "/api/v1/"

# DRF's exceptions in Sheaf's vocabulary (DESIGN.md, "Errors"); a failed key and a missing one
# are both `not_authenticated` to the client.
DRF_CODES: dict[type[exceptions.APIException], str] = {
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "not_authenticated",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.Throttled: "rate_limited",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.ParseError: "parse_error",
}


class StrictCharField(serializers.CharField):
    """A string and only a string: DRF's CharField would store JSON ``0`` as ``"0"``, which the
    schema (type string) says is refused."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class ProblemSerializer(serializers.Serializer[dict[str, str]]):
    code = serializers.CharField()
    message = serializers.CharField()


class ErrorSerializer(serializers.Serializer[dict[str, Any]]):
    """Every error the API answers with."""

    code = serializers.CharField(help_text="Stable, e.g. not_found, too_many_files, rate_limited.")
    detail = serializers.CharField(help_text="What went wrong, for a person.")
    problems = ProblemSerializer(
        many=True, required=False, help_text="Every problem found, when there were several."
    )
    # Declared fields leave the class (DRF's metaclass), so this does not replace
    # Serializer.errors; the stubs cannot see that.
    errors = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Messages per input field, for validation errors.",
    )


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    """Schema entries for the error statuses an endpoint can answer with; every endpoint is
    throttled (accounts.api.throttling), so 429 is always one."""
    return {
        code: OpenApiResponse(ErrorSerializer, description="Error")
        for code in sorted({*statuses, 429})
    }


def _rejected(exc: Rejected) -> Response:
    body: dict[str, Any] = {"code": exc.code, "detail": str(exc)}
    if len(exc.problems) > 1:
        body["problems"] = [{"code": p.code, "message": p.message} for p in exc.problems]
    response = Response(body, status=exc.http_status)
    if exc.retry_after is not None:
        response["Retry-After"] = str(exc.retry_after)
    return response


def _validation_code(codes: Any) -> str:
    """The first error's code when it is one of Sheaf's (invalid_fields, ...), else "invalid"."""
    while isinstance(codes, dict | list) and codes:
        codes = next(iter(codes.values())) if isinstance(codes, dict) else codes[0]
    return codes if isinstance(codes, str) and codes in HTTP_STATUS else "invalid"


def _messages(detail: Any) -> list[str]:
    """The messages of one field, nested ones (a list's items, a nested object's fields) prefixed
    with where they are: ``item 0: This field may not be blank.``"""
    if isinstance(detail, dict):
        return [
            f"{'item ' if isinstance(key, int) else ''}{key}: {message}"
            for key, value in detail.items()
            for message in _messages(value)
        ]
    if isinstance(detail, list):
        return [message for item in detail for message in _messages(item)]
    return [str(detail)]


def _validation(exc: exceptions.ValidationError) -> Response:
    detail = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
    errors = {field: _messages(messages) for field, messages in detail.items()}
    summary = "; ".join(
        message if field == "non_field_errors" else f"{field}: {message}"
        for field, messages in errors.items()
        for message in messages
    )
    body = {"code": _validation_code(exc.get_codes()), "detail": summary, "errors": errors}
    return Response(body, status=status.HTTP_400_BAD_REQUEST)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    response = _error_response(exc, context)
    request = context.get("request")
    if response is not None and request is not None:
        # Errors are JSON whatever was negotiated for success (the schema's YAML, say).
        request.accepted_renderer = JSONRenderer()
        request.accepted_media_type = JSONRenderer.media_type
    return response


def _error_response(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, Rejected):
        return _rejected(exc)
    if isinstance(exc, exceptions.ValidationError):
        return _validation(exc)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(*exc.args)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a bug: Django's 500 handling and logging take over
    code = exc.get_codes() if isinstance(exc, exceptions.APIException) else None
    if not (isinstance(code, str) and code in HTTP_STATUS):  # else one of Sheaf's own codes
        code = next(
            (c for cls, c in DRF_CODES.items() if isinstance(exc, cls)),
            getattr(exc, "default_code", "error"),
        )
    detail = response.data.get("detail", "") if isinstance(response.data, dict) else ""
    response.data = {"code": code, "detail": str(detail)}
    return response


def paginated(
    name: str, item: type[serializers.Serializer[Any]]
) -> serializers.Serializer[dict[str, Any]]:
    """The schema of a page: ``{"count", "next", "previous", "results"}``."""
    return inline_serializer(
        name=name,
        fields={
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": item(many=True),
        },
    )


def paginate(
    request: Request,
    view: APIView,
    queryset: QuerySet[Any],
    item: type[serializers.Serializer[Any]],
) -> Response:
    """One page of `queryset`, each row through the output serializer `item`."""
    paginator = PageNumberPagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(item(page, many=True).data)


# Django's own error views, for what never reaches a DRF view (an unknown path or a malformed id
# under /api/v1/, an unhandled exception): JSON in the API's error shape there, HTML elsewhere.


def _api_error(status_code: int, code: str, detail: str) -> JsonResponse:
    return JsonResponse({"code": code, "detail": detail}, status=status_code)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if request.path.startswith(API_PREFIX):
        return _api_error(404, "not_found", f"Nothing at {request.path}; see {API_PREFIX}docs/.")
    return defaults.page_not_found(request, exception)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if request.path.startswith(API_PREFIX):
        return _api_error(400, "invalid", "The request could not be read.")
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if request.path.startswith(API_PREFIX):
        return _api_error(403, "permission_denied", str(exception) or "Not allowed.")
    return defaults.permission_denied(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if request.path.startswith(API_PREFIX):
        return _api_error(500, "server_error", "Sheaf failed to answer; the error was logged.")
    return defaults.server_error(request)


def _method_not_allowed(request: HttpRequest) -> HttpResponse:
    return _api_error(405, "method_not_allowed", f'Method "{request.method}" not allowed.')


# The JSON for each error status Django itself may answer an API request with.
_API_ERRORS: dict[int, Callable[[HttpRequest], HttpResponse]] = {
    400: lambda request: bad_request(request, Exception()),
    403: lambda request: permission_denied(request, Exception()),
    404: lambda request: page_not_found(request, Exception()),
    405: _method_not_allowed,
    500: server_error,
}


class ApiErrorsAsJson:
    """Under DEBUG (`make run`), Django answers an unknown path or a crash with its debug page,
    HTML or plain text, and never calls the handlers above; the API promises JSON whatever the
    mode. This puts the handlers' JSON in such an answer under /api/v1/, in the same response
    object: Django has logged the error (with its traceback, for a 500) and marked the response
    so, and would log a new one again. Innermost in MIDDLEWARE, so the others still add their
    headers."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        as_json = _API_ERRORS.get(response.status_code)
        if (
            as_json is None
            or not isinstance(response, HttpResponse)
            or not request.path.startswith(API_PREFIX)
            or response.get("Content-Type", "").startswith("application/json")
        ):
            return response
        body = as_json(request)
        response.content = body.content
        response["Content-Type"] = body["Content-Type"]
        return response
