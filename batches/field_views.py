"""Defining what to extract on the upload page: the field editor's live check, field templates,
and "try on one document"."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts.http import AuthenticatedHttpRequest
from accounts.selectors import user_effective_plan, user_usage
from batches import selectors, services
from batches.document_views import document_values
from batches.forms import BatchUploadForm
from batchsite.errors import Rejected
from extraction.fields import InvalidFields, fields_to_text, parse_fields


@login_required
@require_POST
def fields_check(request: AuthenticatedHttpRequest) -> JsonResponse:
    """Every problem of a field list in the text syntax (`fields`), as the upload form would
    report them; with no problem, the fields as parsed and their text written back."""
    try:
        fields = parse_fields(request.POST.get("fields", ""))
    except InvalidFields as invalid:
        return JsonResponse({"ok": False, "problems": invalid.problems, "fields": None})
    return JsonResponse(
        {"ok": True, "problems": [], "fields": fields, "text": fields_to_text(fields)}
    )


def template_initial(request: AuthenticatedHttpRequest) -> dict[str, Any]:
    """The upload form's prompt and fields from `?template=<id>` (a 404 for another user's)."""
    template_id = request.GET.get("template")
    if not template_id:
        return {}
    template = selectors.field_template_get_for_user(user=request.user, template_id=template_id)
    return {"prompt": template.prompt, "fields": fields_to_text(template.fields)}


@login_required
@require_GET
def field_template_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    templates = selectors.field_template_list_for_user(user=request.user)
    return render(request, "batches/field_templates.html", {"templates": templates})


@login_required
@require_POST
def field_template_save(request: AuthenticatedHttpRequest, batch_id: str) -> HttpResponse:
    """Save a batch's prompt and fields as one of the user's templates."""
    batch = selectors.batch_get_for_user(user=request.user, batch_id=batch_id)
    try:
        template = services.field_template_create(
            user=request.user,
            name=request.POST.get("name", ""),
            prompt=batch.extraction_prompt,
            fields=batch.fields,
        )
    except Rejected as rejection:
        messages.error(request, rejection.problems[0].message)
    else:
        messages.success(
            request, f"Saved as template “{template.name}”: start a new batch from it."
        )
    return redirect("batch_detail", batch_id=batch.pk)


@login_required
@require_POST
def field_template_delete(request: AuthenticatedHttpRequest, template_id: str) -> HttpResponse:
    template = selectors.field_template_get_for_user(
        user=request.user, template_id=template_id, own=True
    )
    services.field_template_delete(template=template)
    messages.success(request, f"Template “{template.name}” deleted.")
    return redirect("field_templates")


def _trial_context(request: AuthenticatedHttpRequest) -> dict[str, Any]:
    return {
        "plan": user_effective_plan(request.user).plan,
        "usage": user_usage(request.user),
    }


@login_required
@require_POST
def batch_trial(request: AuthenticatedHttpRequest) -> HttpResponse:
    """ "Try on one document": the upload form's prompt and fields on its one file (`files`),
    as a hidden one-document batch. Answers the part of the page that shows its values."""
    context = _trial_context(request)
    form = BatchUploadForm(request.POST, request.FILES, plan=context["plan"])
    problems: list[str] = []
    if form.is_valid():
        try:
            document = services.batch_trial_create(
                user=request.user,
                files=form.cleaned_data["files"],
                prompt=form.cleaned_data["prompt"],
                fields=form.cleaned_data["fields"],
            )
        except Rejected as rejection:
            problems = [problem.message for problem in rejection.problems]
        else:
            context = {**_trial_context(request), "document": document, "values": []}
            return render(request, "batches/_trial.html", context)
    else:
        problems = [str(error) for errors in form.errors.values() for error in errors]
    return render(request, "batches/_trial.html", {**context, "problems": problems}, status=400)


@login_required
@require_GET
def document_trial(request: AuthenticatedHttpRequest, document_id: str) -> HttpResponse:
    """A try's document and, once it is done, its values; polled by htmx until then."""
    document = selectors.trial_document_get_for_user(user=request.user, document_id=document_id)
    values = document_values(document) if document.is_terminal else []
    context = {**_trial_context(request), "document": document, "values": values}
    return render(request, "batches/_trial.html", context)
