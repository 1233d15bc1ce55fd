"""The document page: a document's original beside its values, each with its status, its quote
and the box it came from on its page, and a form to correct or confirm it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET, require_POST

from accounts.http import AuthenticatedHttpRequest
from batches import reviews, runs, selectors, services
from batches.checks import document_check_reasons
from batches.exports import cell_status
from batchsite.errors import Rejected
from documents.models import Document
from documents.pages import Box, PageUnavailable, has_page_images, page_png, quote_boxes
from documents.readresults import ReadPage
from documents.selectors import document_read_result
from extraction.quotes import QuoteChecker

_SCALAR_INPUTS = {"number": "text", "date": "date", "string": "text", "list": "text"}


@dataclass
class _Value:
    """One value (or one table row) as the page lists it."""

    index: int
    name: str
    kind: str
    status: str
    shown: str  # what the row shows: the reviewed value when there is one
    machine: str  # the machine's value as text
    quote: str | None
    page: int | None
    review: dict[str, Any] | None
    input_type: str = "text"
    editable: bool = True
    rows: list[_Value] = field(default_factory=list)
    # A table field and its rows: the table's columns as (name, input type, the row's value as
    # text, "" for the table's "add a row" form), and the row's number.
    cells: list[tuple[str, str, str]] = field(default_factory=list)
    table: str = ""
    row: int = 0


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return "; ".join(_text(item) for item in value)
    if isinstance(value, dict):
        return " · ".join(_text(item) for item in value.values() if item not in (None, ""))
    return str(value)


def document_values(document: Document) -> list[_Value]:
    """The document's values as its page lists them (a table's rows after it), reviews shown."""
    fields = (document.reviewed_result or {}).get("fields") or {}
    specs = reviews.review_fields(document)
    values: list[_Value] = []
    for name, spec in specs.items():
        found = fields.get(name)
        cell: dict[str, Any] = found if isinstance(found, dict) else {}
        kind = spec.get("type", "string")
        review = cell.get("review") if isinstance(cell.get("review"), dict) else None
        machine = cell.get("value")
        value = _Value(
            index=len(values),
            name=name,
            kind=kind,
            status=cell_status(cell),
            shown=_text(review["value"] if review else machine),
            machine=_text(machine),
            quote=cell.get("quote"),
            page=cell.get("page"),
            review=review,
            input_type=_SCALAR_INPUTS.get(kind, "text"),
        )
        values.append(value)
        if kind == "table":
            columns = spec.get("columns", [])
            value.cells = [(column["name"], _input_type(column), "") for column in columns]
            values += _row_values(name, cell, review, columns, start=len(values))
    return values


def _input_type(spec: Any) -> str:
    return _SCALAR_INPUTS.get(spec.get("type", "string"), "text")


def _row_values(
    name: str,
    cell: dict[str, Any],
    review: dict[str, Any] | None,
    columns: list[Any],
    *,
    start: int,
) -> list[_Value]:
    """A table's rows as the page lists them: a person's rows when they reviewed the table
    (the machine's quotes no longer belong to them), else the machine's with their proofs."""
    shown = review["value"] if review else cell.get("value")
    given = cell.get("rows") if not review else None
    proofs: list[Any] = given if isinstance(given, list) else []
    rows: list[_Value] = []
    for number, row in enumerate(shown if isinstance(shown, list) else [], start=1):
        kept = proofs[number - 1] if number <= len(proofs) else None
        proof: dict[str, Any] = kept if isinstance(kept, dict) else {}
        row = row if isinstance(row, dict) else {}
        # In the columns' order: PostgreSQL's jsonb keeps a row's keys in an order of its own.
        cells = [
            (column["name"], _input_type(column), _text(row.get(column["name"])))
            for column in columns
        ]
        text = " · ".join(value for _, _, value in cells if value)
        rows.append(
            _Value(
                index=start + len(rows),
                name=f"{name} row {number}",
                kind="row",
                status="reviewed" if review else str(proof.get("status") or "found"),
                shown=text,
                machine=text,
                quote=proof.get("quote"),
                page=proof.get("page"),
                review=None,
                cells=cells,
                table=name,
                row=number,
            )
        )
    return rows


def _page_view(page: ReadPage, values: list[_Value]) -> dict[str, Any]:
    """A page as the document page draws it: its number, the boxes over its picture and, when a
    value's quote stands on it but not among its words' boxes, its text with that quote marked."""
    on_page = [value for value in values if value.page == page.number and value.quote]
    boxes = {value.index: quote_boxes(page, value.quote) for value in on_page}
    unboxed = [value for value in on_page if not boxes[value.index]]
    marked = _marked_text(page.text, unboxed) if unboxed and page.text else None
    return {"number": page.number, "boxes": _page_svg(page, boxes), "text": marked}


def _page_svg(page: ReadPage, boxes_of: dict[int, list[Box]]) -> SafeString:
    """Boxes over a page's picture (an SVG in the page's points, so no inline style is needed
    under the Content-Security-Policy), one group per value quoted on it."""
    groups = []
    for index, boxes in boxes_of.items():
        if boxes:
            rects = format_html_join(
                "",
                '<rect x="{}" y="{}" width="{}" height="{}"></rect>',
                ((b.x - 1, b.y - 1, b.width + 2, b.height + 2) for b in boxes),
            )
            groups.append(format_html('<g class="quote" data-value="{}">{}</g>', index, rects))
    return format_html(
        '<svg class="page-boxes" viewBox="0 0 {} {}" preserveAspectRatio="none" '
        'aria-hidden="true">{}</svg>',
        page.width,
        page.height,
        SafeString("".join(groups)),
    )


def _marked_text(text: str, values: list[_Value]) -> SafeString:
    """A text document with each value's first quote marked (the first value wins an overlap)."""
    checker = QuoteChecker(text)
    spans: list[tuple[int, int, int]] = []
    for value in values:
        at = checker.locate(value.quote) if value.quote else None
        if at is None or value.quote is None:
            continue
        end = at + len(value.quote)
        if all(end <= start or at >= stop for start, stop, _ in spans):
            spans.append((at, end, value.index))
    parts, position = [], 0
    for start, stop, index in sorted(spans):
        parts.append(format_html("{}", text[position:start]))
        parts.append(
            format_html('<mark class="quote" data-value="{}">{}</mark>', index, text[start:stop])
        )
        position = stop
    parts.append(format_html("{}", text[position:]))
    return SafeString("".join(parts))


def _neighbours(document: Document, *, queue: bool) -> tuple[Any, Any]:
    """The ids of the documents before and after this one: in upload order, or in the batch's
    review queue (worst first; a document just reviewed has left it, its successor is first)."""
    if queue:
        ids = selectors.batch_review_queue(batch=document.batch)
        if document.pk not in ids:
            return None, next((pk for pk in ids if pk != document.pk), None)
    else:
        ids = list(selectors.batch_documents(batch=document.batch).values_list("pk", flat=True))
    at = ids.index(document.pk)
    return (ids[at - 1] if at > 0 else None, ids[at + 1] if at + 1 < len(ids) else None)


def _page_url(document_id: Any, *, queue: bool) -> str:
    url = reverse("document_detail", kwargs={"document_id": document_id})
    return f"{url}?queue=review" if queue else url


@login_required
@require_GET
def batch_review(request: AuthenticatedHttpRequest, batch_id: str) -> HttpResponse:
    """The review queue's first document, or the batch page when nothing needs a person."""
    batch = selectors.batch_get_for_user(user=request.user, batch_id=batch_id)
    queue = selectors.batch_review_queue(batch=batch)
    if not queue:
        messages.success(request, "Nothing needs review: every value was found or reviewed.")
        return redirect("batch_detail", batch_id=batch.pk)
    return redirect(_page_url(queue[0], queue=True))


@login_required
@require_GET
def document_detail(request: AuthenticatedHttpRequest, document_id: str) -> HttpResponse:
    document = selectors.document_get_for_user(user=request.user, document_id=document_id)
    values = document_values(document)
    pictures = has_page_images(document)
    read = document_read_result(document=document) if pictures else None
    pages = [_page_view(page, values) for page in (read.pages if read is not None else ())]
    queue = request.GET.get("queue") == "review"
    previous, following = _neighbours(document, queue=queue)
    context = {
        "document": document,
        "batch": document.batch,
        "values": values,
        "pages": pages,
        "text": None if pages else _marked_text(document.text, values),
        "previous": _page_url(previous, queue=queue) if previous else None,
        "next": _page_url(following, queue=queue) if following else None,
        "queue": queue,
        "hard_to_read": document.ocr_confidence is not None
        and document.ocr_confidence < settings.SHEAF_OCR_REVIEW_BELOW,
        "unreviewed": [value.name for value in values if value.kind != "row" and not value.review],
        # What the batch's current run changed in each value against the run before it.
        "changes": runs.run_document_changes(document=document),
        "disagreements": (document.result or {}).get("disagreements", []),
        "check_reasons": document_check_reasons(batch=document.batch, document_id=document.pk),
    }
    return render(request, "batches/document_detail.html", context)


@login_required
@require_GET
@cache_control(private=True, max_age=3600)
def document_page(request: AuthenticatedHttpRequest, document_id: str, number: int) -> HttpResponse:
    document = selectors.document_get_for_user(user=request.user, document_id=document_id)
    try:
        png = page_png(document, number)
    except PageUnavailable as error:
        raise Http404(str(error)) from None
    return HttpResponse(png, content_type="image/png")


def _posted_value(kind: str, text: str) -> Any:
    """A value typed into the page's form, in the form the review takes (None when empty)."""
    text = text.strip()
    if not text:
        return None
    if kind == "boolean":
        return {"yes": True, "true": True, "no": False, "false": False}.get(text.lower(), text)
    if kind == "list":
        return [item.strip() for item in text.split(";") if item.strip()]
    return text


@login_required
@require_POST
def document_review(request: AuthenticatedHttpRequest, document_id: str) -> HttpResponse:
    """The page's form: correct (`value`), confirm or revert one field."""
    document = selectors.document_get_for_user(user=request.user, document_id=document_id)
    name, action = request.POST.get("field", ""), request.POST.get("action", "")
    queue = request.POST.get("queue") == "review"
    if action == "confirm_all":
        return _confirm_all(request, document, queue=queue)
    spec = reviews.review_fields(document).get(name)
    if spec is None or action not in _DONE or (action in _ROW_ACTIONS) != (spec["type"] == "table"):
        raise Http404("No such field to review.")
    try:
        if action in _ROW_ACTIONS:
            value = _posted_rows(document, spec, action, request.POST)
        else:
            value = _posted_value(spec["type"], request.POST.get("value", ""))
        reviews.document_review(
            user=request.user,
            document_id=document.pk,
            values={name: value} if action == "save" or action in _ROW_ACTIONS else None,
            confirmed=[name] if action == "confirm" else None,
            revert=[name] if action == "revert" else None,
        )
    except Rejected as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"{name}: {_DONE[action]}.")
    return redirect(_page_url(document.pk, queue=queue))


_DONE = {
    "save": "corrected",
    "confirm": "confirmed",
    "revert": "back to the extracted value",
    "save_row": "row corrected",
    "add_row": "row added",
    "remove_row": "row removed",
}
_ROW_ACTIONS = ("save_row", "add_row", "remove_row")


def _posted_rows(document: Document, spec: Any, action: str, posted: Any) -> list[dict[str, Any]]:
    """The table's full list of rows after the page's row form: the rows shown (a person's
    earlier correction, else the machine's) with one row changed, added or removed. The review
    checks every cell's type."""
    cell = ((document.reviewed_result or {}).get("fields") or {}).get(spec["name"]) or {}
    review = cell.get("review") if isinstance(cell.get("review"), dict) else None
    shown = review["value"] if review else cell.get("value")
    rows = [
        dict(row) for row in (shown if isinstance(shown, list) else []) if isinstance(row, dict)
    ]
    if action == "add_row":
        number = len(rows) + 1
    else:
        try:
            number = int(posted.get("row", ""))
        except ValueError:
            number = 0
        if not 1 <= number <= len(rows):
            raise Rejected.one("invalid_review", f"{spec['name']}: no row {posted.get('row')}.")
    if action == "remove_row":
        del rows[number - 1]
        return rows
    row = {
        column["name"]: _posted_value(
            column.get("type", "string"), posted.get(f"column:{column['name']}", "")
        )
        for column in spec.get("columns", [])
    }
    if all(value is None for value in row.values()):
        raise Rejected.one("invalid_review", f"{spec['name']} row {number}: every cell is empty.")
    if action == "add_row":
        rows.append(row)
    else:
        rows[number - 1] = row
    return rows


def _confirm_all(
    request: AuthenticatedHttpRequest, document: Document, *, queue: bool
) -> HttpResponse:
    """Confirm every value nobody reviewed yet, then go on: to the next document that needs
    review in the queue, else to the next document of the batch."""
    try:
        reviews.document_confirm_rest(user=request.user, document_id=document.pk)
    except Rejected as error:
        messages.error(request, str(error))
        return redirect(_page_url(document.pk, queue=queue))
    messages.success(request, f"{document.original_filename}: the remaining values confirmed.")
    _, following = _neighbours(document, queue=queue)
    if following is None:
        if queue:
            messages.info(request, "The review queue is empty.")
        return redirect("batch_detail", batch_id=document.batch_id)
    return redirect(_page_url(following, queue=queue))


@login_required
@require_POST
def document_replace(request: AuthenticatedHttpRequest, document_id: str) -> HttpResponse:
    """The page's form: a new original for the document, extracted again in its batch."""
    document = selectors.document_get_for_user(user=request.user, document_id=document_id)
    file = request.FILES.get("file")
    try:
        if file is None:
            raise Rejected.one("no_files", "Choose the file to upload in its place.")
        document = services.document_replace_original(document=document, file=file)
    except Rejected as error:
        messages.error(request, str(error))
        return redirect("document_detail", document_id=document.pk)
    messages.success(request, f"{document.original_filename} uploaded; it is read again.")
    return redirect("batch_detail", batch_id=document.batch_id)
