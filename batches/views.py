from __future__ import annotations

from collections.abc import Callable, Sequence

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files import File
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
from django.utils.http import content_disposition_header, urlencode
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.http import AuthenticatedHttpRequest
from accounts.selectors import user_effective_plan, user_usage
from batches import conditional, drafts, exports, field_views, results, runs, selectors, services
from batches.exports import EXPORT_FORMATS
from batches.forms import BatchUploadForm, BudgetForm, RunForm
from batches.models import BatchProcess
from batches.pipeline.budgets import dollars
from batchsite.errors import Rejected
from extraction import engine_estimate_rates, engine_for_new_batch, engine_summary
from extraction.fields import fields_to_text


@login_required
@require_GET
def batch_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    status = request.GET.get("status", "")
    if status not in BatchProcess.Status.values:
        status = ""
    search = request.GET.get("q", "").strip()[:MAX_SEARCH_LENGTH]
    batches = selectors.batch_list_for_user(user=request.user, status=status or None, search=search)
    page = Paginator(batches, 20).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "status": status,
        "search": search,
        # What the pagination links keep of the filter.
        "filter_query": urlencode({k: v for k, v in (("q", search), ("status", status)) if v}),
        "statuses": BatchProcess.Status.choices,
        "month": selectors.month_figures_for_user(user=request.user),
        # The newcomer's first batch can be the sample (see batch_sample_new).
        "has_batches": bool(search or status or page.object_list)
        or selectors.batch_list_for_user(user=request.user).exists(),
        # Redrawn on events (static/js/live.js) while a batch on the page runs.
        "live": any(not batch.is_terminal for batch in page),
    }
    return render(request, "batches/batch_list.html", context)


MAX_SEARCH_LENGTH = 200


@login_required
@require_POST
def batch_sample_new(request: AuthenticatedHttpRequest) -> HttpResponse:
    """ "Try it with example invoices": the sample batch (made now, or the one that exists)."""
    batch, created = services.batch_sample_create(user=request.user)
    if created:
        messages.success(
            request,
            f"Batch “{batch.name}” is queued: {batch.total_documents} example invoices, "
            "not counted against your plan.",
        )
    else:
        messages.info(request, "This is your sample batch: you have one at a time.")
    return redirect("batch_detail", batch_id=batch.pk)


@login_required
@require_http_methods(["GET", "POST"])
def batch_upload(request: AuthenticatedHttpRequest) -> HttpResponse:
    plan = user_effective_plan(request.user).plan
    form = BatchUploadForm(
        request.POST or None,
        request.FILES or None,
        plan=plan,
        initial=field_views.template_initial(request),
    )
    status = 200
    if request.method == "POST":
        if form.is_valid():

            def create(files: Sequence[File[bytes]]) -> BatchProcess:
                return services.batch_create(
                    user=request.user,
                    files=files,
                    prompt=form.cleaned_data["prompt"],
                    fields=form.cleaned_data["fields"],
                    name=form.cleaned_data["name"],
                    description=form.cleaned_data["description"],
                    mode=form.cleaned_data["mode"],
                    start_at=form.cleaned_data["start_at"],
                    budget_usd=form.cleaned_data["budget_usd"],
                )

            draft_id = form.cleaned_data["draft"]
            try:
                if draft_id:
                    batch = drafts.draft_submit(user=request.user, draft_id=draft_id, create=create)
                else:
                    batch = create(form.cleaned_data["files"])
            except Rejected as rejection:
                form.add_rejection(rejection)
            else:
                queued = f"Batch “{batch.name}” is queued"
                if batch.start_at:
                    queued += f" to start at {batch.start_at:%Y-%m-%d %H:%M} UTC"
                messages.success(request, f"{queued}.")
                return redirect("batch_detail", batch_id=batch.pk)
        status = 400
    engine = engine_for_new_batch(
        settings.SHEAF_EXTRACTION_ENGINE, api_key=settings.ANTHROPIC_API_KEY
    )
    context = {
        "form": form,
        "plan": plan,
        "usage": user_usage(request.user),
        "engine_summary": engine_summary(engine),
        "estimate_rates": engine_estimate_rates(engine),
        "templates": selectors.field_template_list_for_user(user=request.user),
        # A refused submission of a draft keeps its files: the page lists them again.
        "draft_files": drafts.draft_files_for_user(
            user=request.user, draft_id=getattr(form, "cleaned_data", {}).get("draft")
        ),
    }
    return render(request, "batches/batch_upload.html", context, status=status)


# The batch page (and each 2-second poll of its live part) draws one page of documents: a
# 1,000-document batch redrawn whole took 0.4 s of server time per poll.
DOCUMENTS_PER_PAGE = 50


def _batch_context(request: HttpRequest, batch: BatchProcess) -> dict[str, object]:
    columns = results.results_columns(batch=batch)
    query = results.ResultsQuery.from_params(request.GET, columns)
    listed = results.results_documents(batch=batch, query=query, columns=columns)
    documents = Paginator(listed, DOCUMENTS_PER_PAGE)
    return {
        "batch": batch,
        "documents": documents.get_page(request.GET.get("page")),
        "progress": selectors.batch_progress(batch=batch),
        "costs": selectors.batch_costs(batch=batch),
        "engine_summary": engine_summary(batch.engine),
        "columns": columns,
        "query": query,
        "show_choices": results.SHOW_CHOICES,
        # Totals once nothing changes any more: a running batch's would be stale at once, and
        # each 2-second poll would read every result again.
        "totals": results.results_totals(documents=listed, columns=columns)
        if batch.is_terminal
        else {},
        # items.csv only where there are line items to list.
        "export_formats": [
            fmt for fmt in EXPORT_FORMATS if fmt != "items.csv" or exports.table_fields(batch=batch)
        ],
    }


def _runs_context(batch: BatchProcess, form: RunForm | None = None) -> dict[str, object]:
    """The batch page's runs panel: its runs with their changes and scores, and the "Re-run with
    changes" form starting from the current prompt and fields."""
    initial = {"prompt": batch.extraction_prompt, "fields": fields_to_text(batch.fields)}
    return {
        "runs": runs.run_list(batch=batch),
        "run_form": form or RunForm(initial=initial),
    }


@login_required
@require_GET
def batch_detail(request: AuthenticatedHttpRequest, batch_id: str) -> HttpResponse:
    batch = selectors.batch_get_for_user(user=request.user, batch_id=batch_id)
    context = {**_batch_context(request, batch), **_runs_context(batch)}
    return render(request, "batches/batch_detail.html", context)


@login_required
@require_GET
def batch_progress(request: AuthenticatedHttpRequest, batch_id: str) -> HttpResponseBase:
    """The live part of the batch page, polled by htmx until the batch is finished, with the
    status badge and dates of the page header swapped out of band (and, in the last poll, the
    runs panel: the run that was running has finished). A poll while nothing changed is a 304
    from one query (batches/conditional.py)."""
    etag = conditional.batch_etag(
        user=request.user,
        batch_id=batch_id,
        # The page and sort it draws, and the CSRF secret its forms' tokens are made from
        # (a new session's would refuse the tokens of a copy the browser kept).
        variant=(request.GET.urlencode(), request.META.get("CSRF_COOKIE", "")),
    )

    def respond() -> HttpResponse:
        batch = selectors.batch_get_for_user(user=request.user, batch_id=batch_id)
        context = {**_batch_context(request, batch), "oob": True}
        if batch.is_terminal:
            context.update(_runs_context(batch))
        return render(request, "batches/_batch_progress.html", context)

    return conditional.respond_conditionally(request, etag=etag, respond=respond)


@login_required
@require_POST
def batch_run_start(request: AuthenticatedHttpRequest, batch_id: str) -> HttpResponse:
    """ "Re-run with changes": a new run of the finished batch on the text already read."""
    batch = selectors.batch_get_for_user(user=request.user, batch_id=batch_id)
    form = RunForm(request.POST)
    if form.is_valid():
        trial = form.cleaned_data["trial"]
        try:
            run = runs.run_start(
                batch=batch,
                prompt=form.cleaned_data["prompt"],
                fields=form.cleaned_data["fields"],
                trial=trial,
            )
        except Rejected as rejection:
            form.add_rejection(rejection)
        else:
            sent = batch.documents.filter(run=run).count()
            what = "a try on the reviewed documents" if trial else "the batch"
            messages.success(
                request,
                f"Run {run.number} started: {what}, {sent} document{pluralize(sent)}"
                f"{', asking only ' + ', '.join(run.asked) if run.asked else ''}.",
            )
            return redirect("batch_detail", batch_id=batch.pk)
    context = {**_batch_context(request, batch), **_runs_context(batch, form)}
    return render(request, "batches/batch_detail.html", context, status=400)


@login_required
@require_POST
def batch_run_keep(request: AuthenticatedHttpRequest, batch_id: str, number: int) -> HttpResponse:
    def keep(batch: BatchProcess) -> str:
        runs.run_keep(batch=batch, number=number)
        return f"Run {number} is the batch's current run again."

    return _control(request, batch_id, keep)


@login_required
@require_GET
def batch_run(request: AuthenticatedHttpRequest, batch_id: str, number: int) -> HttpResponse:
    """One run: what it asked, what it changed per document against the run before it, and its
    score against the reviewed values."""
    batch = selectors.batch_get_for_user(user=request.user, batch_id=batch_id)
    try:
        run = runs.run_get(batch=batch, number=number)
    except Rejected as rejection:
        raise Http404(rejection.problems[0].message) from None
    diff = runs.run_diff(run=run)
    context = {
        "batch": batch,
        "run": run,
        "status": runs.run_status(run),
        "current": run.pk == batch.current_run_id,
        "diff": diff,
        "score": runs.run_score(run=run),
        "current_score": runs.run_score(run=batch.current_run)
        if run.trial and batch.current_run
        else None,
    }
    return render(request, "batches/run_detail.html", context)


def _control(
    request: AuthenticatedHttpRequest, batch_id: str, action: Callable[[BatchProcess], str]
) -> HttpResponse:
    batch = selectors.batch_get_for_user(user=request.user, batch_id=batch_id)
    try:
        messages.success(request, action(batch))
    except Rejected as rejection:
        messages.error(request, rejection.problems[0].message)
    return redirect("batch_detail", batch_id=batch.pk)


@login_required
@require_POST
def batch_cancel(request: AuthenticatedHttpRequest, batch_id: str) -> HttpResponse:
    def cancel(batch: BatchProcess) -> str:
        services.batch_cancel(batch=batch)
        return "Batch canceled; documents already being processed will finish."

    return _control(request, batch_id, cancel)


@login_required
@require_POST
def batch_retry(request: AuthenticatedHttpRequest, batch_id: str) -> HttpResponse:
    def retry(batch: BatchProcess) -> str:
        count = services.batch_retry_failed(batch=batch)
        done = f"{count} failed document{pluralize(count)} queued again."
        left = services.batch_unretryable(batch=batch)
        if left:
            done += f" A retry cannot fix {len(left)}: {'; '.join(left)}."
        return done

    return _control(request, batch_id, retry)


@login_required
@require_POST
def batch_budget(request: AuthenticatedHttpRequest, batch_id: str) -> HttpResponse:
    def set_budget(batch: BatchProcess) -> str:
        form = BudgetForm(request.POST)
        if not form.is_valid():
            problems = " ".join(str(error) for error in form.errors["budget_usd"])
            raise Rejected.one("invalid", f"Budget: {problems}")
        budget = form.cleaned_data["budget_usd"]
        batch = services.batch_budget_set(batch=batch, budget_usd=budget)
        done = f"Budget set to {dollars(budget)}"
        if batch.budget_paused_at is not None:
            return f"{done}; the batch stays paused ({batch.paused_reason})."
        return f"{done}."

    return _control(request, batch_id, set_budget)


@login_required
@require_POST
def document_rerun(request: AuthenticatedHttpRequest, document_id: str) -> HttpResponse:
    document = selectors.document_get_for_user(user=request.user, document_id=document_id)

    def rerun(batch: BatchProcess) -> str:
        services.document_rerun(document=document)
        return f"{document.original_filename} queued again."

    return _control(request, str(document.batch_id), rerun)


@login_required
@require_GET
def batch_export(request: AuthenticatedHttpRequest, batch_id: str, fmt: str) -> HttpResponse:
    batch = selectors.batch_get_for_user(user=request.user, batch_id=batch_id)
    if fmt not in EXPORT_FORMATS:
        raise Http404("Unknown export format.")
    try:
        export = exports.batch_export(batch=batch, fmt=fmt)
    except exports.NoTableField as error:
        raise Http404(str(error)) from None
    response = HttpResponse(export.content, content_type=export.content_type)
    response["Content-Disposition"] = content_disposition_header(True, export.filename)
    return response


@login_required
@require_POST
def batch_delete(request: AuthenticatedHttpRequest, batch_id: str) -> HttpResponse:
    batch = selectors.batch_get_for_user(user=request.user, batch_id=batch_id)
    name = batch.name
    services.batch_delete(batch=batch)
    messages.success(request, f"Batch “{name}” and its files were deleted.")
    return redirect("dashboard")


@login_required
@require_GET
def document_original(request: AuthenticatedHttpRequest, document_id: str) -> HttpResponseBase:
    document = selectors.document_get_for_user(user=request.user, document_id=document_id)
    if document.file_removed_at is not None:
        context = {"document": document}
        return render(request, "batches/original_removed.html", context, status=410)
    if not document.file:
        raise Http404("The original file was removed.")
    try:
        handle = document.file.open("rb")
    except FileNotFoundError as exc:
        raise Http404("The original file was removed.") from exc
    return FileResponse(
        handle,
        as_attachment=True,
        filename=document.original_filename,
        content_type=document.content_type,
    )
