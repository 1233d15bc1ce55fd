from __future__ import annotations

from collections.abc import Mapping
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


class BatchUploadForm(forms.Form):
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
    # Set by upload.js: the files were sent one by one into this draft (batches.drafts), and
    # the batch is made of them instead of files sent with the form.
    draft = forms.UUIDField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, plan: Plan, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # `fields` and `files` are also BaseForm's own attributes (the form's fields, the files
        # sent). Declared in the class body they would hide those from the type checker
        # (typeddjango/django-stubs#1054), so they join the form here, in their place in it.
        self.fields["fields"] = forms.CharField(
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
        self.fields["files"] = MultipleFileField()
        self.order_fields(
            ["name", "description", "prompt", "fields", "mode", "budget_usd", "files"]
        )
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

    def clean_fields(self) -> list[FieldSpec]:
        try:
            return parse_fields(self.cleaned_data["fields"])
        except InvalidFields as problem:
            raise forms.ValidationError(str(problem), code="invalid_fields") from None

    def add_rejection(self, rejection: Rejected) -> None:
        for problem in rejection.problems:
            self.add_error(
                PROBLEM_FIELD.get(problem.code),
                forms.ValidationError(problem.message, code=problem.code),
            )
