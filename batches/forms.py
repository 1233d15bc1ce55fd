from __future__ import annotations

import zoneinfo
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from django import forms
from django.core.files.uploadedfile import UploadedFile
from django.utils.datastructures import MultiValueDict

from accounts.plans import Plan
from batches.models import BatchProcess
from batches.services import MAX_BUDGET_USD
from batchsite.errors import Rejected
from documents.uploads import ACCEPT, SUPPORTED
from extraction.fields import FieldSpec, InvalidFields, parse_fields

# Where each problem code is shown on the upload form; others are shown above it.
PROBLEM_FIELD = {
    "unsupported_type": "files",
    "empty_file": "files",
    "file_too_large": "files",
    "too_many_files": "files",
    "no_files": "files",
    "invalid_fields": "fields",
    "invalid_prompt": "prompt",
    "plan_limit": "mode",
    "invalid_start_at": "start_at",
    "not_found": "files",  # an upload draft that expired
}


class FilesInput(forms.FileInput):
    """Reads every file sent under the field's name, even when rendered as a single picker, so a
    second file is reported ("one file too many") instead of silently dropped."""

    allow_multiple_selected = True

    def value_from_datadict(
        self, data: Mapping[str, Any], files: MultiValueDict[str, UploadedFile[Any]], name: str
    ) -> list[UploadedFile[Any]]:
        return files.getlist(name)


class MultipleFileField(forms.FileField):
    """A file field that returns every file sent under its name; the service validates them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", FilesInput())
        kwargs.setdefault("required", False)
        super().__init__(*args, **kwargs)

    def clean(self, data: Any, initial: Any = None) -> list[Any]:
        if data is None:
            return []
        files = data if isinstance(data, list | tuple) else [data]
        return [f for f in files if f]


def fields_field() -> forms.CharField:
    """The `fields` box of the upload and re-run forms (fields-editor.js draws rows over it)."""
    return forms.CharField(
        widget=forms.Textarea(
            attrs={
                "rows": 4,
                "placeholder": "invoice number\ndate:date\ntotal:number -- with currency",
            }
        ),
        required=False,
        help_text="Optional. One per line: name[:type][ -- description]; "
        "types are string, number, date, boolean, list, or table(column; column:number; …) "
        "for line items. name! marks a required field. Inferred from the prompt if blank.",
    )


def clean_fields_text(text: str) -> list[FieldSpec]:
    try:
        return parse_fields(text)
    except InvalidFields as problem:
        raise forms.ValidationError(str(problem), code="invalid_fields") from None


# The IANA zones a browser names (Intl's "Europe/Berlin"), and UTC; not the system's own
# aliases ("localtime", "Factory") nor the old country names ("GB", "Japan").
TIME_ZONES = sorted(zone for zone in zoneinfo.available_timezones() if "/" in zone or zone == "UTC")


def budget_field(*, required: bool) -> forms.DecimalField:
    """A batch's budget in dollars, as the upload form and the batch page take it."""
    return forms.DecimalField(
        label="Budget (USD)",
        required=required,
        min_value=Decimal("0.01"),
        max_value=MAX_BUDGET_USD,
        decimal_places=2,
        widget=forms.NumberInput(attrs={"step": "0.01", "min": "0.01", "inputmode": "decimal"}),
    )


class BudgetForm(forms.Form):
    budget_usd = budget_field(required=True)


class RejectionsShown:
    """A form that shows a service's refusal beside the field each problem is about
    (PROBLEM_FIELD), the others above the form."""

    def add_rejection(self: Any, rejection: Rejected) -> None:
        for problem in rejection.problems:
            field = PROBLEM_FIELD.get(problem.code)
            self.add_error(
                field if field in self.fields else None,
                forms.ValidationError(problem.message, code=problem.code),
            )


class BatchUploadForm(RejectionsShown, forms.Form):
    # What the page says it takes ("PDF, CSV, … or TIFF") and the pickers' accept attribute.
    supported = SUPPORTED
    accept = ACCEPT

    name = forms.CharField(
        max_length=200, required=False, help_text="Optional; taken from the first file if blank."
    )
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    prompt = forms.CharField(
        widget=forms.Textarea(
            attrs={"rows": 3, "placeholder": "invoice number, date, total, supplier"}
        ),
        help_text="In plain language, what to pull out of every document.",
    )
    mode = forms.ChoiceField(choices=BatchProcess.Mode.choices, initial=BatchProcess.Mode.STANDARD)
    budget_usd = budget_field(required=False)
    # The time as the browser's datetime-local input writes it, and the zone it is in: start-at.js
    # picks the browser's zone; without JavaScript the user picks it (UTC preselected).
    start_at = forms.CharField(
        required=False,
        label="Start at",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="Optional: leave blank to start at once. Up to 90 days ahead; the documents "
        "count against this month's quota now.",
    )
    start_at_zone = forms.ChoiceField(
        required=False,
        label="Time zone",
        choices=[(zone, zone) for zone in TIME_ZONES],
        initial="UTC",
        help_text="The zone of the start time.",
    )
    # Set by upload.js: the files were sent one by one into this draft (batches.drafts), and
    # the batch is made of them instead of files sent with the form.
    draft = forms.UUIDField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, plan: Plan, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # `fields` and `files` are also BaseForm's own attributes (the form's fields, the files
        # sent). Declared in the class body they would hide those from the type checker
        # (typeddjango/django-stubs#1054), so they join the form here, in their place in it.
        self.fields["fields"] = fields_field()
        self.fields["files"] = MultipleFileField()
        order = ["name", "description", "prompt", "fields", "mode", "budget_usd", "start_at"]
        self.order_fields([*order, "start_at_zone", "files"])
        self.plan = plan
        self.fields["mode"].help_text = (
            "Economy sends documents through Anthropic's batch API: about half the price, "
            "but results may take hours."
        )
        if not plan.economy_lane:
            self.fields["mode"].help_text += " It comes with the Growth plan."
        default = plan.default_budget_usd
        self.fields["budget_usd"].help_text = (
            "Optional. Sheaf stops sending documents when what the batch cost plus what is in "
            "flight reaches it; raise it to go on."
            + (f" Your plan's default: ${default:,}." if default is not None else "")
        )
        if default is not None:
            self.fields["budget_usd"].widget.attrs["placeholder"] = f"{default}"
        # Free renders one picker; the server still reads (and refuses) any extra files.
        widget = self.fields["files"].widget
        widget.attrs["accept"] = ACCEPT
        widget.allow_multiple_selected = plan.batch_upload
        if not plan.batch_upload:
            widget.attrs.pop("multiple", None)
        if not self.is_bound:
            # start-at.js sets the browser's zone here, but not over one the user chose.
            self.fields["start_at_zone"].widget.attrs["data-browser-zone"] = ""

    def clean_fields(self) -> list[FieldSpec]:
        return clean_fields_text(self.cleaned_data["fields"])

    def clean(self) -> dict[str, Any]:
        """`start_at` with its zone as ISO 8601 for `batch_create`, which judges it (a time
        that does not parse is passed on as it came, for the service to say so)."""
        cleaned = super().clean() or {}
        value, zone = cleaned.get("start_at", ""), cleaned.get("start_at_zone")
        try:
            moment = datetime.fromisoformat(value) if value else None
        except ValueError:
            moment = None
        if moment is not None and moment.tzinfo is None and zone:
            cleaned["start_at"] = moment.replace(tzinfo=zoneinfo.ZoneInfo(zone)).isoformat()
        return cleaned


class RunForm(RejectionsShown, forms.Form):
    """ "Re-run with changes" on a finished batch's page: the prompt and fields it starts with
    are the current run's; a run with them unchanged extracts the documents again."""

    prompt = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What to extract, in plain language.",
    )
    trial = forms.BooleanField(
        required=False,
        label="Try on the reviewed documents first",
        help_text="Runs only the documents you reviewed and scores the run against your values; "
        "the batch keeps its current values.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # See BatchUploadForm: `fields` joins the form here.
        self.fields["fields"] = fields_field()
        self.fields["fields"].help_text = (
            "One per line: name[:type][ -- description]. Only added fields: Sheaf asks only "
            "for them and keeps the other values."
        )
        self.order_fields(["prompt", "fields", "trial"])

    def clean_fields(self) -> list[FieldSpec]:
        return clean_fields_text(self.cleaned_data["fields"])
