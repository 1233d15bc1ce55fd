from __future__ import annotations

from collections.abc import Iterable

from django.http import HttpResponse
from django.http.response import HttpResponseBase
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser, FormParser, JSONParser, MultiPartParser
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.http import AuthenticatedRequest
from batches import conditional, exports, reviews, selectors, services
from batches.api.serializers import (
    BatchCreateDocumentedSerializer,
    BatchCreateInputSerializer,
    BatchListInputSerializer,
    BatchOutputSerializer,
    BatchSummaryOutputSerializer,
    BatchUpdateInputSerializer,
    DocumentDetailOutputSerializer,
    DocumentReviewOutputSerializer,
    ResultsInputSerializer,
    ResultsJsonSerializer,
    ReviewInputSerializer,
)
from batches.exports import EXPORT_FORMATS
from batchsite.api import error_responses, paginate, paginated
from batchsite.errors import Rejected
from batchsite.parsers import BoundedJSONParser

MAX_IDEMPOTENCY_KEY_LENGTH = 255

IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="Send the same key again with the same request (after a timeout, say) to get "
    "the batch the first request created, with 200, instead of a second batch. The same request "
    "means the same prompt, fields, name, description, mode, start_at and files in the same "
    "order (by name and content); the key with a different request answers 422 "
    "idempotency_mismatch.",
)

IF_NONE_MATCH = OpenApiParameter(
    "If-None-Match",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="The ETag of an earlier answer: 304 Not Modified while the batch is unchanged.",
)
ETAG = OpenApiParameter(
    "ETag",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    response=[200, 304],
    description='A weak validator, W/"…", of everything the answer shows; send it back as '
    "If-None-Match.",
)


class BatchListCreateApi(APIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        operation_id="batches_list",
        parameters=[BatchListInputSerializer],
        responses={
            200: paginated("PaginatedBatchList", BatchSummaryOutputSerializer),
            **error_responses(400, 401, 405),
        },
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        filters = BatchListInputSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        batches = selectors.batch_list_for_user(
            user=request.user, status=filters.validated_data.get("status")
        )
        return paginate(request, self, batches, BatchSummaryOutputSerializer)

    @extend_schema(
        operation_id="batches_create",
        parameters=[IDEMPOTENCY_KEY],
        request={"multipart/form-data": BatchCreateDocumentedSerializer},
        responses={
            201: BatchOutputSerializer,
            200: OpenApiResponse(BatchOutputSerializer, description="Repeated Idempotency-Key."),
            **error_responses(400, 401, 403, 405, 415, 422),
        },
    )
    def post(self, request: AuthenticatedRequest) -> Response:
        serializer = BatchCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        submission = {"user": request.user, **serializer.validated_data}
        key = request.headers.get("Idempotency-Key", "").strip()
        if len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
            raise Rejected.one(
                "invalid",
                f"Idempotency-Key is longer than {MAX_IDEMPOTENCY_KEY_LENGTH} characters.",
            )
        if key:
            batch, created = services.batch_create_once(idempotency_key=key, **submission)
        else:
            batch, created = services.batch_create(**submission), True
        return Response(
            BatchOutputSerializer(batch).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class BatchDetailApi(APIView):
    parser_classes = [BoundedJSONParser]  # a budget's null (no budget) needs JSON

    @extend_schema(
        operation_id="batches_retrieve",
        parameters=[IF_NONE_MATCH, ETAG],
        responses={
            200: BatchOutputSerializer,
            304: OpenApiResponse(
                description="Not Modified: nothing the batch shows changed since the answer "
                "whose ETag the request's If-None-Match names. No body.",
            ),
            **error_responses(401, 404, 405),
        },
        description="Answers with an ETag. Poll with `If-None-Match: <that ETag>`: while the "
        "batch is unchanged the answer is 304 with no body, at the cost of one query. A 304 "
        "counts against the plan's API requests per minute like any request.",
    )
    def get(self, request: AuthenticatedRequest, batch_id: str) -> HttpResponseBase:
        etag = conditional.batch_etag(user=request.user, batch_id=batch_id, trials=False)

        def respond() -> Response:
            batch = selectors.batch_get_for_user(user=request.user, batch_id=batch_id, trials=False)
            return Response(BatchOutputSerializer(batch).data)

        return conditional.respond_conditionally(request._request, etag=etag, respond=respond)

    @extend_schema(
        operation_id="batches_partial_update",
        request=BatchUpdateInputSerializer,
        responses={200: BatchOutputSerializer, **error_responses(400, 401, 404, 405, 415)},
        description="Set, raise or lower the batch's budget. A batch its budget paused resumes "
        "when the new budget is above what it spent and has in flight; below, it stays paused "
        "(no second notification). A budget not above 0 or not a number answers 400 invalid.",
    )
    def patch(self, request: AuthenticatedRequest, batch_id: str) -> Response:
        batch = selectors.batch_get_for_user(user=request.user, batch_id=batch_id, trials=False)
        data = BatchUpdateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if "budget_usd" in data.validated_data:
            budget = data.validated_data["budget_usd"]
            batch = services.batch_budget_set(batch=batch, budget_usd=budget)
        return Response(BatchOutputSerializer(batch).data)


class BatchRetryApi(APIView):
    @extend_schema(
        operation_id="batches_retry",
        request=None,
        responses={200: BatchOutputSerializer, **error_responses(401, 403, 404, 405, 409)},
    )
    def post(self, request: AuthenticatedRequest, batch_id: str) -> Response:
        batch = selectors.batch_get_for_user(user=request.user, batch_id=batch_id, trials=False)
        services.batch_retry_failed(batch=batch)
        batch.refresh_from_db()
        return Response(BatchOutputSerializer(batch).data)


class BatchCancelApi(APIView):
    @extend_schema(
        operation_id="batches_cancel",
        request=None,
        responses={200: BatchOutputSerializer, **error_responses(401, 404, 405, 409)},
    )
    def post(self, request: AuthenticatedRequest, batch_id: str) -> Response:
        batch = selectors.batch_get_for_user(user=request.user, batch_id=batch_id, trials=False)
        batch = services.batch_cancel(batch=batch)
        return Response(BatchOutputSerializer(batch).data)


class _AnyAccept(BaseContentNegotiation):
    """The results endpoint answers with the file the `format` parameter names, whatever the
    Accept header says (curl and browsers send */*, a client may send text/csv)."""

    def select_renderer(
        self,
        request: Request,
        renderers: Iterable[BaseRenderer],
        format_suffix: str | None = None,
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser | None:
        return next(iter(parsers), None)


class BatchResultsApi(APIView):
    content_negotiation_class = _AnyAccept

    @extend_schema(
        operation_id="batches_results",
        parameters=[
            OpenApiParameter("format", OpenApiTypes.STR, enum=list(EXPORT_FORMATS), default="json")
        ],
        responses={
            (200, "text/csv"): OpenApiTypes.BINARY,
            (200, "application/json"): ResultsJsonSerializer,
            (200, "text/markdown"): OpenApiTypes.BINARY,
            (
                200,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            ): OpenApiTypes.BINARY,
            **error_responses(400, 401, 404, 405),
        },
    )
    def get(self, request: AuthenticatedRequest, batch_id: str) -> HttpResponse:
        batch = selectors.batch_get_for_user(user=request.user, batch_id=batch_id, trials=False)
        params = ResultsInputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        fmt = params.validated_data["format"]
        if fmt not in EXPORT_FORMATS:
            raise Rejected.one(
                "invalid_format",
                f"Unknown results format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}.",
            )
        try:
            export = exports.batch_export(batch=batch, fmt=fmt)
        except exports.NoTableField as error:
            raise Rejected.one(error.code, str(error)) from None
        response = HttpResponse(export.content, content_type=export.content_type)
        response["Content-Disposition"] = content_disposition_header(True, export.filename)
        return response


class DocumentDetailApi(APIView):
    @extend_schema(
        operation_id="documents_retrieve",
        responses={200: DocumentDetailOutputSerializer, **error_responses(401, 404, 405)},
    )
    def get(self, request: AuthenticatedRequest, document_id: str) -> Response:
        document = selectors.document_get_for_user(user=request.user, document_id=document_id)
        return Response(DocumentDetailOutputSerializer(document).data)


class DocumentReviewApi(APIView):
    """A person's review of one document's values: GET shows each value with its review, PATCH
    corrects, confirms or reverts values (all or nothing)."""

    parser_classes = [JSONParser]  # a table's rows and a value's type need JSON

    @extend_schema(
        operation_id="documents_review_retrieve",
        responses={200: DocumentReviewOutputSerializer, **error_responses(401, 404, 405)},
    )
    def get(self, request: AuthenticatedRequest, document_id: str) -> Response:
        document = selectors.document_get_for_user(user=request.user, document_id=document_id)
        return Response(DocumentReviewOutputSerializer(document).data)

    @extend_schema(
        operation_id="documents_review_update",
        request=ReviewInputSerializer,
        responses={
            200: DocumentReviewOutputSerializer,
            **error_responses(400, 401, 404, 405, 409),
        },
        description="Corrections are stored apart from the machine's values, with who and "
        "when; exports and the API use them. A value of the wrong type answers 400 "
        "invalid_review naming the field; a document without a result yet answers 409 conflict.",
    )
    def patch(self, request: AuthenticatedRequest, document_id: str) -> Response:
        selectors.document_get_for_user(user=request.user, document_id=document_id)  # 404 first
        data = ReviewInputSerializer(data=request.data)
        if not data.is_valid():
            raise Rejected.one(
                "invalid_review",
                "; ".join(
                    f"{name}: {' '.join(map(str, errors))}" for name, errors in data.errors.items()
                ),
            )
        document = reviews.document_review(
            user=request.user, document_id=document_id, **data.validated_data
        )
        return Response(DocumentReviewOutputSerializer(document).data)


class DocumentOriginalApi(APIView):
    """Replace one finished document's original; it is read and extracted again in its batch."""

    parser_classes = [MultiPartParser]

    @extend_schema(
        operation_id="documents_original_update",
        request={
            "multipart/form-data": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary"}},
                "required": ["file"],
            }
        },
        responses={
            200: DocumentDetailOutputSerializer,
            **error_responses(400, 401, 403, 404, 405, 409),
        },
        description="The same checks as an upload (type, size, content); the document's "
        "text, result and reviews go, and it is queued again, counting against the month's "
        "documents. 409 conflict while it is being processed or when its batch was canceled.",
    )
    def put(self, request: AuthenticatedRequest, document_id: str) -> Response:
        document = selectors.document_get_for_user(user=request.user, document_id=document_id)
        file = request.FILES.get("file")
        if file is None:
            raise Rejected.one("no_files", "Send the new original as the multipart part `file`.")
        document = services.document_replace_original(document=document, file=file)
        return Response(DocumentDetailOutputSerializer(document).data)
