from __future__ import annotations

from typing import Any
from uuid import UUID

from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from batches.models import BatchProcess
from batches.selectors import Costs, Progress, batch_costs, batch_documents, batch_progress
from batches.services import MAX_NAME_LENGTH, MAX_PROMPT_LENGTH
from batchsite.json_input import InvalidJson, json_loads
from documents.models import Document
from extraction.fields import (
    FIELD_TYPES,
    SCALAR_TYPES,
    ColumnSpec,
    FieldSpec,
    InvalidFields,
    fields_from_json,
    parse_fields,
)

# Four serializers here declare a field named `fields`. DRF's metaclass moves declared fields
# out of the class, so it never replaces Serializer.fields, but the stubs cannot know that; those
# lines carry an ignore of the one error it causes.


START_AT_HELP = (
    "Start no earlier than this: ISO 8601 with a time zone, e.g. 2026-12-24T09:00:00+01:00, at "
    "most 90 days ahead. The batch stays queued until then; a time already past means now; a "
    "time without a zone is refused (invalid_start_at). Quota and plan are taken at submission."
)


class BudgetField(serializers.DecimalField):
    """A budget in dollars; its bounds are checked by the service (`budget_problem`), so every
    surface answers alike. Not a number: 400 `invalid`."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault(
            "help_text",
            "Dollars, e.g. 5.00: dispatching stops when what the batch spent plus the estimates "
            "of its documents in flight reaches it (the plan's default_budget_usd when left out).",
        )
        super().__init__(max_digits=None, decimal_places=None, **kwargs)


class BatchCreateInputSerializer(serializers.Serializer[None]):
    # Lenient on purpose: `batch_create` checks files, prompt and name, so the API answers with
    # the same codes and messages as the dashboard.
    files = serializers.ListField(
        child=serializers.FileField(allow_empty_file=True, use_url=False),
        required=False,
        default=list,
        help_text="Repeat the part once per file: PDF, CSV, XLSX, TXT, PNG, JPEG or TIFF.",
    )
    prompt = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="What to extract, in words."
    )
    name = serializers.CharField(required=False, allow_blank=True, default="")
    description = serializers.CharField(required=False, allow_blank=True, default="")
    fields = serializers.CharField(  # type: ignore[assignment]  # a field, see the top
        required=False,
        allow_blank=True,
        default="",
        help_text="One per line (or comma-separated): name[:type][ -- description], `name!` for "
        "a required field, `name: table(col; col:number -- description; ...)` for a table (one "
        'field per line only); or a JSON list of {"name", "type", "description", "required", '
        '"columns": [{"name", "type", "description"}]}. Inferred from the prompt when empty.',
    )
    mode = serializers.ChoiceField(
        choices=BatchProcess.Mode.choices, default=BatchProcess.Mode.STANDARD
    )
    # Text, not a DateTimeField: `batch_create` reads it, so that a time without a zone, one
    # past or one too far ahead is answered alike on every surface (`invalid_start_at`).
    start_at = serializers.CharField(
        required=False, allow_blank=True, default=None, help_text=START_AT_HELP
    )
    budget_usd = BudgetField(required=False, allow_null=True, default=None)

    def validate_fields(self, value: str) -> list[FieldSpec]:
        return fields_input(value)

    def validate_start_at(self, value: str | None) -> str | None:
        if value is not None and not value.strip():
            # The schema promises a date-time: an empty one is a mistake, not "at once".
            raise serializers.ValidationError(
                "start_at is empty: leave it out to start at once, or give a time with its "
                "zone, e.g. 2026-12-24T09:00:00+01:00.",
                code="invalid_start_at",
            )
        return value


def fields_input(value: str | list[Any]) -> list[FieldSpec]:
    """Fields as a client sends them: the text syntax, or a JSON list (as text or parsed)."""
    try:
        if isinstance(value, list):
            return fields_from_json(value)
        if value.lstrip().startswith("["):
            try:
                parsed = json_loads(value)
            except InvalidJson as exc:
                raise InvalidFields(f"Fields look like JSON but do not parse: {exc}.") from exc
            return fields_from_json(parsed)
        return parse_fields(value)
    except InvalidFields as problem:
        raise serializers.ValidationError(str(problem), code="invalid_fields") from problem


@extend_schema_serializer(component_name="BatchCreateInput")
class BatchCreateDocumentedSerializer(BatchCreateInputSerializer):
    """The upload as the schema documents it: at least one file and a prompt are required. The
    input serializer leaves them to `batch_create`, which answers `no_files` / `invalid_prompt`."""

    files = serializers.ListField(
        child=serializers.FileField(use_url=False),
        min_length=1,
        help_text="Repeat the part once per file: PDF, CSV, XLSX, TXT, PNG, JPEG or TIFF.",
    )
    prompt = serializers.CharField(max_length=MAX_PROMPT_LENGTH, help_text="What to extract.")
    name = serializers.CharField(required=False, allow_blank=True, max_length=MAX_NAME_LENGTH)
    # Documented as what it takes; the input serializer reads it as text (see there).
    start_at = serializers.DateTimeField(  # type: ignore[assignment]
        required=False,
        help_text=START_AT_HELP,
    )


class BatchUpdateInputSerializer(serializers.Serializer[None]):
    budget_usd = BudgetField(
        required=False,
        allow_null=True,
        help_text="The new budget in dollars (null: none; left out: unchanged). Above what the "
        "batch spent and has in flight, a batch its budget paused resumes; below, it stays "
        "paused.",
    )


class BatchListInputSerializer(serializers.Serializer[None]):
    status = serializers.ChoiceField(choices=BatchProcess.Status.choices, required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # A form-style serializer reads `?status=` as "not sent"; the schema promises a status.
        if self.initial_data.get("status") == "":
            raise serializers.ValidationError(
                {"status": "Give a status, or leave the parameter out."}, code="invalid"
            )
        return attrs


class ResultsInputSerializer(serializers.Serializer[None]):
    # Blank allowed so that `?format=` reaches the view's invalid_format rather than the default.
    format = serializers.CharField(required=False, allow_blank=True, default="json")


class ColumnSpecSerializer(serializers.Serializer[ColumnSpec]):
    name = serializers.CharField()
    type = serializers.ChoiceField(choices=SCALAR_TYPES)
    description = serializers.CharField(allow_blank=True)


class FieldSpecSerializer(serializers.Serializer[FieldSpec]):
    name = serializers.CharField()
    type = serializers.ChoiceField(choices=FIELD_TYPES)
    description = serializers.CharField(allow_blank=True)
    required = serializers.BooleanField(  # type: ignore[assignment]  # a field, see the top
        required=False, help_text="A missing value of a required field is a review reason."
    )
    columns = ColumnSpecSerializer(
        many=True,
        required=False,
        help_text='A table field\'s columns, in order; only with type "table".',
    )


class CountsSerializer(serializers.Serializer[Progress]):
    total = serializers.IntegerField()
    queued = serializers.IntegerField()
    processing = serializers.IntegerField()
    completed = serializers.IntegerField()
    failed = serializers.IntegerField()
    canceled = serializers.IntegerField()


class CostSerializer(serializers.Serializer[Costs]):
    estimated_usd = serializers.DecimalField(max_digits=14, decimal_places=4, allow_null=True)
    actual_usd = serializers.DecimalField(max_digits=14, decimal_places=6)


class ValueCountsSerializer(serializers.Serializer[dict[str, int]]):
    """Values of the batch's completed documents per status (DESIGN.md "Results")."""

    found = serializers.IntegerField(help_text="Quote located on the value's page.")
    checked = serializers.IntegerField(help_text="Found, and passed an arithmetic check.")
    unverified = serializers.IntegerField(help_text="Quote not found in the document's text.")
    invalid = serializers.IntegerField(help_text="The answer did not validate; value null.")
    missing = serializers.IntegerField(help_text="No value.")


class CheckFailureSerializer(serializers.Serializer[dict[str, Any]]):
    check = serializers.CharField(help_text='"row", "rows_total" or "net_tax_total".')
    message = serializers.CharField()
    expected = serializers.CharField()
    actual = serializers.CharField()
    difference = serializers.CharField()
    fields = serializers.ListField(child=serializers.CharField())  # type: ignore[assignment]  # a field, see the top


class ChecksSerializer(serializers.Serializer[dict[str, Any]]):
    status = serializers.ChoiceField(choices=["reconciled", "failed", "not_checked"])
    failures = CheckFailureSerializer(many=True)


class DocumentErrorSerializer(serializers.Serializer[dict[str, str]]):
    code = serializers.CharField()
    message = serializers.CharField()
    kind = serializers.ChoiceField(
        choices=Document.ErrorKind.choices,
        allow_null=True,
        help_text="permanent: retrying fails again; transient: Sheaf retries it; critical: the "
        "provider refused the account and the document waits; gave_up: transient errors spent "
        "its attempts, a retry may succeed. null for a canceled document.",
    )


_STATUSES = ["missing", "invalid", "unverified", "found", "checked"]
_REVIEW = {
    "type": "object",
    "nullable": True,
    "description": "A person's correction; it wins over the machine's value in exports and "
    "the API.",
    "properties": {
        "value": {"description": "The reviewed value."},
        "by": {"type": "string"},
        "at": {"type": "string", "format": "date-time"},
    },
}
_COMMON_CELL = {
    "page": {"type": "integer", "nullable": True, "description": "1-based page of the value."},
    "status": {
        "type": "string",
        "enum": _STATUSES,
        "description": "found: quote located on its page; checked: also passed a check beyond "
        "its type and failed none; unverified: quote not found; invalid: did not validate "
        "(value null, see raw and reason); missing: no value.",
    },
    "source": {"type": "string", "enum": ["text", "ocr", "xml"]},
    "verified": {
        "type": "boolean",
        "description": "Deprecated, kept for one release: status is found or checked.",
    },
    "review": _REVIEW,
}
SCALAR_CELL_SCHEMA = {
    "type": "object",
    "title": "Scalar field cell",
    "required": ["value"],
    "properties": {
        "value": {
            "nullable": True,
            "description": "string, number, ISO date, boolean or list; null when missing.",
        },
        "quote": {"type": "string", "nullable": True, "description": "The text it came from."},
        **_COMMON_CELL,
        "raw": {
            "type": "string",
            "description": "Only when invalid: the text that did not validate.",
        },
        "reason": {"type": "string", "description": "Only when invalid: why it did not validate."},
    },
}
TABLE_CELL_SCHEMA = {
    "type": "object",
    "title": "Table field cell",
    "required": ["value", "rows"],
    "properties": {
        "value": {
            "type": "array",
            "description": "The rows in document order, each keyed by column name (null when "
            "the cell is empty).",
            "items": {"type": "object", "additionalProperties": {"nullable": True}},
        },
        "rows": {
            "type": "array",
            "description": "Each row's proof, same length and order as value.",
            "items": {
                "type": "object",
                "required": ["quote", "page", "pages", "status"],
                "properties": {
                    "quote": {"type": "string", "nullable": True},
                    "page": {"type": "integer", "nullable": True, "description": "First page."},
                    "pages": {
                        "type": "array",
                        "items": {"type": "integer"},
                        "description": "Every page the row spans.",
                    },
                    "status": {"type": "string", "enum": _STATUSES},
                },
            },
        },
        "quote": {"type": "string", "nullable": True, "description": "Always null for a table."},
        **_COMMON_CELL,
    },
}
RESULT_SCHEMA = {
    "type": "object",
    "nullable": True,
    "properties": {
        "engine": {"type": "string", "enum": ["local", "anthropic"]},
        "model": {"type": "string", "nullable": True},
        "fields": {
            "type": "object",
            "description": "One cell per field, keyed by the field's name.",
            "additionalProperties": {"anyOf": [TABLE_CELL_SCHEMA, SCALAR_CELL_SCHEMA]},
        },
        "checks": {
            "type": "object",
            "description": "The arithmetic proof of the document.",
            "properties": {
                "status": {"type": "string", "enum": ["reconciled", "failed", "not_checked"]},
                "failures": {"type": "array", "items": {"type": "object"}},
            },
        },
    },
}


@extend_schema_field(RESULT_SCHEMA)
class ResultField(serializers.JSONField):
    """A document's result; the schema documents the cell of a scalar and of a table field."""


class DocumentOutputSerializer(serializers.Serializer[Document]):
    id = serializers.UUIDField()
    filename = serializers.CharField(source="original_filename")
    status = serializers.ChoiceField(choices=Document.Status.choices)
    attempts = serializers.IntegerField()
    pages = serializers.IntegerField(source="page_count", allow_null=True)
    error = serializers.SerializerMethodField()
    result = ResultField(source="reviewed_result", allow_null=True)
    checks = serializers.SerializerMethodField()
    cost_usd = serializers.DecimalField(max_digits=12, decimal_places=6, allow_null=True)

    @extend_schema_field(ChecksSerializer(allow_null=True))
    def get_checks(self, document: Document) -> dict[str, Any] | None:
        """The arithmetic proof of the result; null without a result (or one stored before)."""
        checks = (document.result or {}).get("checks")
        return checks if isinstance(checks, dict) else None

    @extend_schema_field(DocumentErrorSerializer(allow_null=True))
    def get_error(self, document: Document) -> dict[str, str | None] | None:
        return document.error


class ReviewInputSerializer(serializers.Serializer[None]):
    values = serializers.DictField(
        child=serializers.JSONField(allow_null=True),
        required=False,
        help_text="Corrected values by field name, in the field's type (a number, a "
        "YYYY-MM-DD date, true/false, a list of strings, a table's full list of rows); null means "
        "this document has no such value.",
    )
    confirmed = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="Fields whose machine value a person confirms as right.",
    )
    revert = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="Fields whose correction or confirmation is dropped.",
    )


@extend_schema_field(
    {
        "type": "object",
        "description": "Each field's cell: the machine's value, quote, page and status, and the "
        "review beside it (null when nobody reviewed it).",
        "additionalProperties": {"anyOf": [TABLE_CELL_SCHEMA, SCALAR_CELL_SCHEMA]},
    }
)
class ReviewFieldsField(serializers.Field):  # type: ignore[type-arg]
    """A document's cells with their reviews (none before it has a result)."""

    def to_representation(self, value: Document) -> dict[str, Any]:
        fields = (value.reviewed_result or {}).get("fields")
        return fields if isinstance(fields, dict) else {}


class DocumentReviewOutputSerializer(serializers.Serializer[Document]):
    id = serializers.UUIDField()
    filename = serializers.CharField(source="original_filename")
    reviewed_at = serializers.DateTimeField(allow_null=True)
    fields = ReviewFieldsField(source="*", read_only=True)  # type: ignore[assignment]  # see the top


class DocumentDetailOutputSerializer(DocumentOutputSerializer):
    batch = serializers.UUIDField(source="batch_id")
    content_type = serializers.CharField()
    size = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)


class CheckedDocumentSerializer(serializers.Serializer[dict[str, str]]):
    id = serializers.UUIDField()
    filename = serializers.CharField()


class DuplicateOfSerializer(CheckedDocumentSerializer):
    batch_id = serializers.UUIDField(required=False, help_text="Only in another batch.")
    batch_name = serializers.CharField(required=False, help_text="Only in another batch.")


class BatchDuplicateSerializer(serializers.Serializer[dict[str, Any]]):
    document = CheckedDocumentSerializer()
    duplicate_of = DuplicateOfSerializer(
        help_text="The earliest invoice it repeats: in the user's earlier batches, else in "
        "this one."
    )
    by = serializers.ListField(
        child=serializers.ChoiceField(choices=["supplier_number", "total_date"]),
        help_text="What is the same: supplier and number, total and date, or both.",
    )


class MissingRowSerializer(CheckedDocumentSerializer):
    values = serializers.ListField(
        child=serializers.ChoiceField(choices=["present", "missing", "failed"]),
        help_text="One per field, in the order of `fields`; `failed`: the document failed.",
    )


class MissingMapSerializer(serializers.Serializer[dict[str, Any]]):
    fields = serializers.ListField(child=serializers.CharField())  # type: ignore[assignment]  # a field, see the top
    counts = serializers.DictField(
        child=serializers.IntegerField(), help_text="Documents missing each field."
    )
    documents = MissingRowSerializer(many=True, help_text="Completed and failed, upload order.")


class BatchOutlierSerializer(serializers.Serializer[dict[str, Any]]):
    document = CheckedDocumentSerializer()
    field = serializers.ChoiceField(choices=["total", "date"], help_text="The role, not a name.")
    value = serializers.CharField(help_text="A decimal string, or a date as YYYY-MM-DD.")
    message = serializers.CharField()


class BatchChecksSerializer(serializers.Serializer[dict[str, Any]]):
    """Checks over the current values of a finished batch (README "Batch checks")."""

    computed_at = serializers.DateTimeField()
    roles = serializers.DictField(
        child=serializers.CharField(allow_null=True),
        help_text="The field read as each of supplier, number, total, date and currency; null "
        "when no field means it.",
    )
    duplicates = BatchDuplicateSerializer(many=True)
    missing = MissingMapSerializer()
    outliers = BatchOutlierSerializer(many=True)
    currency_mix = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="Documents per currency; empty unless there is more than one currency.",
    )


class BatchSummaryOutputSerializer(serializers.Serializer[BatchProcess]):
    """A batch without its documents (the list)."""

    id = serializers.UUIDField()
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=BatchProcess.Status.choices)
    mode = serializers.ChoiceField(choices=BatchProcess.Mode.choices)
    engine = serializers.ChoiceField(choices=BatchProcess.Engine.choices)
    prompt = serializers.CharField(source="extraction_prompt")
    fields = FieldSpecSerializer(many=True)  # type: ignore[assignment]  # a field, see the top
    paused_reason = serializers.CharField()
    start_at = serializers.DateTimeField(
        allow_null=True,
        help_text="When the batch was told to start (it is queued and none of its documents is "
        "due before then); null: as soon as a worker is free.",
    )
    budget_usd = serializers.DecimalField(
        max_digits=12,
        decimal_places=2,
        allow_null=True,
        help_text="Dispatching stops when the batch's spent cost plus its documents in flight "
        'reach it; paused_reason then says "budget reached" with the figures.',
    )
    run = serializers.SerializerMethodField()
    counts = serializers.SerializerMethodField()
    progress_percent = serializers.SerializerMethodField()
    eta_seconds = serializers.SerializerMethodField()
    cost = serializers.SerializerMethodField()
    value_counts = serializers.SerializerMethodField()
    reviewed_documents = serializers.SerializerMethodField()
    checks = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Three fields read each batch's progress: one query per batch, not three. (A list
        # serializes every batch through one instance of this serializer.)
        self._progress_by_batch: dict[UUID, Progress] = {}
        self._costs_by_batch: dict[UUID, Costs] = {}

    def _costs(self, batch: BatchProcess) -> Costs:
        if batch.pk not in self._costs_by_batch:
            self._costs_by_batch[batch.pk] = batch_costs(batch=batch)
        return self._costs_by_batch[batch.pk]

    def _progress(self, batch: BatchProcess) -> Progress:
        if batch.pk not in self._progress_by_batch:
            self._progress_by_batch[batch.pk] = batch_progress(batch=batch)
        return self._progress_by_batch[batch.pk]

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_run(self, batch: BatchProcess) -> int | None:
        """The number of the run whose results the batch shows (the upload is run 1)."""
        return batch.current_run.number if batch.current_run else None

    @extend_schema_field(CountsSerializer)
    def get_counts(self, batch: BatchProcess) -> dict[str, int]:
        return CountsSerializer(self._progress(batch)).data

    def get_progress_percent(self, batch: BatchProcess) -> int:
        return self._progress(batch).percent

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_eta_seconds(self, batch: BatchProcess) -> int | None:
        return self._progress(batch).eta_seconds

    @extend_schema_field(CostSerializer)
    def get_cost(self, batch: BatchProcess) -> dict[str, Any]:
        return CostSerializer(self._costs(batch)).data

    @extend_schema_field(ValueCountsSerializer)
    def get_value_counts(self, batch: BatchProcess) -> dict[str, int]:
        return ValueCountsSerializer(self._costs(batch).values.statuses).data

    def get_reviewed_documents(self, batch: BatchProcess) -> int:
        """Documents of the batch with at least one value a person corrected or confirmed."""
        return self._costs(batch).values.reviewed_documents

    @extend_schema_field(BatchChecksSerializer(allow_null=True))
    def get_checks(self, batch: BatchProcess) -> dict[str, Any] | None:
        """Null until the batch first finishes."""
        return batch.checks


class BatchOutputSerializer(BatchSummaryOutputSerializer):
    """A batch with its documents, in upload order."""

    documents = serializers.SerializerMethodField()

    @extend_schema_field(DocumentOutputSerializer(many=True))
    def get_documents(self, batch: BatchProcess) -> list[dict[str, Any]]:
        documents = batch_documents(batch=batch)
        return serializers.ListSerializer(documents, child=DocumentOutputSerializer()).data


class ExportedDocumentSerializer(DocumentOutputSerializer):
    """A document in the `format=json` results file: its checks are inside its result there."""

    checks = None  # type: ignore[assignment]


class ResultsBatchSerializer(serializers.Serializer[dict[str, Any]]):
    id = serializers.UUIDField()
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=BatchProcess.Status.choices)
    engine = serializers.ChoiceField(choices=BatchProcess.Engine.choices)
    prompt = serializers.CharField()
    fields = FieldSpecSerializer(many=True)  # type: ignore[assignment]  # a field, see the top
    created_at = serializers.DateTimeField()
    completed_at = serializers.DateTimeField(allow_null=True)
    checks = BatchChecksSerializer(allow_null=True)


class ResultsJsonSerializer(serializers.Serializer[dict[str, Any]]):
    """The schema of the `format=json` results file (written by `batches.exports`)."""

    batch = ResultsBatchSerializer()
    documents = ExportedDocumentSerializer(many=True)
