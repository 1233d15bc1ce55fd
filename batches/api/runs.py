"""Runs of a batch over the API: list, start ("re-run with changes"), diff, keep."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.http import AuthenticatedRequest
from batches import runs, selectors
from batches.api.serializers import FieldSpecSerializer, fields_input
from batches.services import MAX_PROMPT_LENGTH
from batchsite.api import error_responses
from extraction.fields import FieldSpec

CHANGE_COUNTS_HELP = (
    "Values compared with the run before: `same`, `changed`, `new` (found where there was no "
    "value) and `lost` (none where there was one)."
)


class ChangeCountsSerializer(serializers.Serializer[dict[str, int]]):
    same = serializers.IntegerField()
    changed = serializers.IntegerField()
    new = serializers.IntegerField()
    lost = serializers.IntegerField()


class RunOutputSerializer(serializers.Serializer[runs.RunSummary]):
    number = serializers.IntegerField(source="run.number")
    status = serializers.SerializerMethodField()
    current = serializers.BooleanField(help_text="The run the batch shows, exports and serves.")
    trial = serializers.BooleanField(
        source="run.trial", help_text="Tried on the reviewed documents only; never current."
    )
    prompt = serializers.CharField(source="run.prompt")
    fields = FieldSpecSerializer(many=True, source="run.fields")  # type: ignore[assignment]
    asked = serializers.ListField(
        child=serializers.CharField(),
        source="run.asked",
        help_text="When the run only added fields: the fields asked of the engine (the others "
        "kept their values); empty when every field was asked.",
    )
    engine = serializers.CharField(source="run.engine")
    model = serializers.CharField(source="run.model")
    documents = serializers.IntegerField(help_text="Documents the run sent to the engine.")
    cost_usd = serializers.DecimalField(max_digits=12, decimal_places=6)
    changes = ChangeCountsSerializer(allow_null=True, help_text=CHANGE_COUNTS_HELP)
    score = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField(source="run.created_at")
    finished_at = serializers.DateTimeField(source="run.finished_at", allow_null=True)

    @extend_schema_field(serializers.ChoiceField(choices=["running", "finished", "canceled"]))
    def get_status(self, summary: runs.RunSummary) -> str:
        return runs.run_status(summary.run)

    @extend_schema_field(serializers.DictField(allow_null=True))
    def get_score(self, summary: runs.RunSummary) -> dict[str, Any] | None:
        """The run's score against the reviewed documents (null while none is reviewed)."""
        return summary.score.as_dict() if summary.score is not None else None


class RunStartInputSerializer(serializers.Serializer[None]):
    prompt = serializers.CharField(
        required=False,
        max_length=MAX_PROMPT_LENGTH,
        help_text="The new prompt; the current run's when left out.",
    )
    fields = serializers.JSONField(  # type: ignore[assignment]  # a field, as in serializers.py
        required=False,
        help_text="The new fields, in the upload's text syntax or as a JSON list; left out, "
        "they follow a new prompt when they were inferred from the old one, and stay otherwise.",
    )
    trial = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Run on the reviewed documents only and score it; it never becomes current.",
    )

    def validate_fields(self, value: Any) -> list[FieldSpec]:
        if not isinstance(value, str | list):
            raise serializers.ValidationError(
                "Fields are the text syntax or a JSON list.", code="invalid_fields"
            )
        return fields_input(value)


class ValueChangeSerializer(serializers.Serializer[runs.ValueChange]):
    field = serializers.CharField()
    change = serializers.ChoiceField(choices=list(runs.CHANGES))
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)


class DocumentChangesSerializer(serializers.Serializer[runs.DocumentChanges]):
    id = serializers.UUIDField(source="document_id")
    filename = serializers.CharField()
    values = ValueChangeSerializer(many=True)


class RunDiffSerializer(serializers.Serializer[runs.RunDiff]):
    run = serializers.IntegerField(source="run.number")
    against = serializers.IntegerField(source="against.number", allow_null=True)
    counts = ChangeCountsSerializer(help_text=CHANGE_COUNTS_HELP)
    documents = DocumentChangesSerializer(many=True)


def _summary(batch_runs: list[runs.RunSummary], number: int) -> runs.RunSummary:
    for summary in batch_runs:
        if summary.run.number == number:
            return summary
    raise AssertionError(number)


class BatchRunsApi(APIView):
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="batches_runs_list",
        responses={200: RunOutputSerializer(many=True), **error_responses(401, 404, 405)},
    )
    def get(self, request: AuthenticatedRequest, batch_id: str) -> Response:
        batch = selectors.batch_get_for_user(user=request.user, batch_id=batch_id, trials=False)
        summaries = runs.run_list(batch=batch)
        return Response(serializers.ListSerializer(summaries, child=RunOutputSerializer()).data)

    @extend_schema(
        operation_id="batches_runs_create",
        request=RunStartInputSerializer,
        responses={201: RunOutputSerializer, **error_responses(400, 401, 403, 404, 405, 409)},
        description="Run the batch again on the text already read, with a new prompt or fields "
        "(no upload, no reading, no OCR again). The run becomes current when it finishes; until "
        "then the batch serves the current run. 409 conflict while the batch is processing.",
    )
    def post(self, request: AuthenticatedRequest, batch_id: str) -> Response:
        batch = selectors.batch_get_for_user(user=request.user, batch_id=batch_id, trials=False)
        data = RunStartInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        run = runs.run_start(batch=batch, **data.validated_data)
        summary = _summary(runs.run_list(batch=batch), run.number)
        return Response(RunOutputSerializer(summary).data, status=status.HTTP_201_CREATED)


class BatchRunDiffApi(APIView):
    @extend_schema(
        operation_id="batches_runs_diff",
        responses={200: RunDiffSerializer, **error_responses(401, 404, 405)},
    )
    def get(self, request: AuthenticatedRequest, batch_id: str, number: int) -> Response:
        batch = selectors.batch_get_for_user(user=request.user, batch_id=batch_id, trials=False)
        run = runs.run_get(batch=batch, number=number)
        return Response(RunDiffSerializer(runs.run_diff(run=run)).data)


class BatchRunKeepApi(APIView):
    @extend_schema(
        operation_id="batches_runs_keep",
        request=None,
        responses={200: RunOutputSerializer, **error_responses(401, 404, 405, 409)},
        description="Make run n the batch's current run again: its values, statuses and errors.",
    )
    def post(self, request: AuthenticatedRequest, batch_id: str, number: int) -> Response:
        batch = selectors.batch_get_for_user(user=request.user, batch_id=batch_id, trials=False)
        runs.run_keep(batch=batch, number=number)
        summary = _summary(runs.run_list(batch=batch), number)
        return Response(RunOutputSerializer(summary).data)
