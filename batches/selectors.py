"""Reads of batches and documents; every lookup of a user-owned object is scoped to its owner."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connections, router
from django.db.models import Count, F, Max, Min, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.http import Http404
from django.utils import timezone

from accounts.models import User
from accounts.selectors import month_start, user_effective_plan, user_usage
from batches.models import BatchProcess, EngineCircuit, FieldTemplate, Run, RunResult
from batches.shipped_templates import SHIPPED_TEMPLATES
from documents.models import VALUE_STATUSES, Document
from documents.readresults import ReadResult
from documents.selectors import document_read_result


def batch_list_for_user(
    *, user: User, status: str | None = None, search: str = ""
) -> QuerySet[BatchProcess]:
    """The user's batches, newest first; tries on one document are not batches to them.
    `search` keeps those whose name, or one of whose documents' filenames, contains it (any
    case)."""
    batches = (
        BatchProcess.objects.filter(user=user, is_trial=False)
        .select_related("current_run")
        .order_by("-created_at", "-id")
    )
    if status:
        batches = batches.filter(status=status)
    search = search.strip()
    if search:
        named = Document.objects.filter(user=user, original_filename__icontains=search)
        batches = batches.filter(Q(name__icontains=search) | Q(pk__in=named.values("batch_id")))
    return batches


@dataclass(frozen=True)
class MonthFigures:
    """The dashboard's figures for this calendar month (UTC)."""

    documents: int  # reserved against the month's quota, as the plan counts them
    documents_allowed: int
    spent_usd: Decimal  # what every extraction cost (each run's, failed attempts included)
    finished: int  # documents that completed or failed this month
    failed: int

    @property
    def failure_percent(self) -> int | None:
        """Failed of finished documents, in whole percent; None before any finished."""
        return round(100 * self.failed / self.finished) if self.finished else None


def month_figures_for_user(*, user: User, now: datetime | None = None) -> MonthFigures:
    """This month's documents (the quota's count), spend and failure rate of the user's
    batches; sample batches, which are outside the plan, are left out of all three."""
    now = now or timezone.now()
    start = datetime.combine(month_start(now), datetime.min.time(), tzinfo=UTC)
    spent = RunResult.objects.filter(
        run__batch__user=user, run__batch__is_sample=False, updated_at__gte=start
    ).aggregate(total=Sum("cost_usd"))["total"]
    finished = Document.objects.filter(
        user=user,
        batch__is_sample=False,
        completed_at__gte=start,
        status__in=(Document.Status.COMPLETED, Document.Status.FAILED),
    ).aggregate(finished=Count("id"), failed=Count("id", filter=Q(status=Document.Status.FAILED)))
    return MonthFigures(
        documents=user_usage(user, now=now).documents_this_month,
        documents_allowed=user_effective_plan(user).plan.documents_per_month,
        spent_usd=spent or Decimal(0),
        finished=finished["finished"],
        failed=finished["failed"],
    )


def batch_get_for_user(
    *, user: User, batch_id: uuid.UUID | str, trials: bool = True
) -> BatchProcess:
    """The user's batch, or Http404 (another user's batch does not exist for them). With
    `trials=False` (the API) a try on one document does not exist either."""
    batches = BatchProcess.objects.filter(user=user)
    if not trials:
        batches = batches.filter(is_trial=False)
    try:
        return batches.select_related("current_run").get(pk=batch_id)
    except (BatchProcess.DoesNotExist, ValueError, ValidationError) as exc:
        raise Http404("No such batch.") from exc


# The batch's own columns its reads show (or that change whenever those do); `status` first.
STATE_COLUMNS = (
    "status", "updated_at", "name", "paused_reason", "budget_usd", "budget_paused_at",
    "start_at", "started_at", "completed_at", "current_run_id", "finish_seq", "checked_at",
)  # fmt: skip
# Stand-ins for the user and the batch in the state query as compiled once (see below).
_ANY_USER = -1
_ANY_BATCH = uuid.UUID(int=0)
_STATE_SQL: dict[tuple[str, bool], tuple[str, list[Any]]] = {}


def _state_queryset(*, user_id: int, batch_id: uuid.UUID, trials: bool) -> QuerySet[Any]:
    batches = BatchProcess.objects.filter(user_id=user_id, pk=batch_id)
    if not trials:
        batches = batches.filter(is_trial=False)
    runs = Run.objects.filter(batch=OuterRef("pk")).order_by().values("batch")
    documents = "documents__"
    return (
        batches.annotate(checked_at=KeyTextTransform("computed_at", "checks"))
        .values_list(*STATE_COLUMNS)
        .annotate(
            state_documents=Count(documents + "id"),
            state_changed=Max(documents + "updated_at"),
            state_finished=Max(documents + "completed_at"),
            state_reviewed=Max(documents + "reviewed_at"),
            state_attempts=Sum(documents + "attempts"),
            state_pages=Sum(documents + "page_count"),
            state_spent=Sum(documents + "cost_usd"),
            state_estimated=Sum(documents + "estimated_cost_usd"),
            state_removed=Count(documents + "file_removed_at"),
            **{
                f"state_{status}": Count(documents + "id", filter=Q(documents__status=status))
                for status in Document.Status.values
            },
            state_runs=Subquery(runs.annotate(n=Count("id")).values("n")),
            state_runs_finished=Subquery(runs.annotate(at=Max("finished_at")).values("at")),
            state_runs_canceled=Subquery(runs.annotate(at=Max("canceled_at")).values("at")),
        )
    )


def batch_state_for_user(
    *, user: User, batch_id: uuid.UUID | str, trials: bool = True
) -> tuple[Any, ...]:
    """In ONE query, what the batch's reads (its page, its progress partial, its API shape)
    are drawn from, for their ETag; Http404 as `batch_get_for_user`. The values are the
    database's own (not converted to Python types): they are compared, never shown.

    Not only `updated_at`: many writers are conditional UPDATEs that leave it alone (a circuit's
    pause, the checks, a document's reading, a cancel's documents), so the batch's shown columns
    are read themselves, and its documents and runs are summed up by what the pages show of
    them (states, attempts, pages, costs, reviews, removed originals, their latest change).

    The query is compiled once per database connection and kept: building and compiling it with
    the ORM took 2.5 ms of CPU on every poll, running it 0.07 ms (BENCHMARKS.md, "A 304 poll")."""
    try:
        batch_pk = batch_id if isinstance(batch_id, uuid.UUID) else uuid.UUID(batch_id)
    except ValueError as exc:
        raise Http404("No such batch.") from exc
    connection = connections[router.db_for_read(BatchProcess)]
    key = (connection.alias, trials)
    if key not in _STATE_SQL:
        query = _state_queryset(user_id=_ANY_USER, batch_id=_ANY_BATCH, trials=trials).query
        sql, params = query.get_compiler(connection=connection).as_sql()
        _STATE_SQL[key] = sql, list(params)
    sql, params = _STATE_SQL[key]
    pk = BatchProcess._meta.pk
    assert pk is not None
    any_batch = pk.get_db_prep_value(_ANY_BATCH, connection)
    this_batch = pk.get_db_prep_value(batch_pk, connection)
    values = [
        user.pk if param == _ANY_USER else this_batch if param == any_batch else param
        for param in params
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        row = cursor.fetchone()
    if row is None:
        raise Http404("No such batch.")
    return tuple(row)


def trial_document_get_for_user(*, user: User, document_id: uuid.UUID | str) -> Document:
    """The document of one of the user's tries on one document, or Http404."""
    try:
        return Document.objects.select_related("batch").get(
            pk=document_id, user=user, batch__is_trial=True
        )
    except (Document.DoesNotExist, ValueError, ValidationError) as exc:
        raise Http404("No such try.") from exc


def field_template_list_for_user(*, user: User) -> list[FieldTemplate]:
    """The templates Sheaf ships, then the user's own, by name."""
    return [*SHIPPED_TEMPLATES, *FieldTemplate.objects.filter(user=user).order_by("name", "id")]


def field_template_get_for_user(
    *, user: User, template_id: uuid.UUID | str, own: bool = False
) -> FieldTemplate:
    """A shipped template or one of the user's (only the user's with `own=True`, e.g. to delete
    it), or Http404: another user's template does not exist for them."""
    if not own:
        shipped = {str(template.pk): template for template in SHIPPED_TEMPLATES}
        if str(template_id) in shipped:
            return shipped[str(template_id)]
    try:
        return FieldTemplate.objects.get(pk=template_id, user=user)
    except (FieldTemplate.DoesNotExist, ValueError, ValidationError) as exc:
        raise Http404("No such template.") from exc


def document_get_for_user(*, user: User, document_id: uuid.UUID | str) -> Document:
    try:
        return Document.objects.select_related("batch").get(pk=document_id, user=user)
    except (Document.DoesNotExist, ValueError) as exc:
        raise Http404("No such document.") from exc


def document_read_result_for_user(
    *, user: User, document_id: uuid.UUID | str
) -> tuple[Document, ReadResult | None]:
    """One of the user's documents (404 for anyone else's) and what reading it gave (None when
    nothing is kept), e.g. for a page that draws the words' boxes over the original."""
    document = document_get_for_user(user=user, document_id=document_id)
    return document, document_read_result(document=document)


def batch_get(*, batch_id: uuid.UUID) -> BatchProcess | None:
    """Any user's batch, for operator surfaces (the `batch` command); None when there is none."""
    return BatchProcess.objects.select_related("user").filter(pk=batch_id).first()


def batches_with_id_prefix(*, prefix: str) -> list[BatchProcess]:
    """Any user's batches whose id starts with `prefix` (hex digits, dashes as in the id), for
    operator surfaces that show short ids; at most two, enough to tell one from several."""
    return list(
        BatchProcess.objects.select_related("user").filter(pk__startswith=prefix.lower())[:2]
    )


def document_get(*, document_id: uuid.UUID) -> Document | None:
    """Any user's document (without its text), for operator surfaces; None when there is none."""
    return Document.objects.defer("text").filter(pk=document_id).first()


def batches_running() -> QuerySet[BatchProcess]:
    """Every user's batches that still have work, highest priority and oldest first."""
    return (
        BatchProcess.objects.filter(
            status__in=[BatchProcess.Status.QUEUED, BatchProcess.Status.PROCESSING]
        )
        .select_related("user")
        .order_by("-priority", "created_at", "id")
    )


def documents_waiting(
    *, batch_id: uuid.UUID | None = None, document_ids: Collection[uuid.UUID] | None = None
) -> QuerySet[Document]:
    """Queued documents a worker will take, due now or once their backoff ends, in the order
    workers claim them: plan priority, then the batch served longest ago (round-robin), then
    age. Documents of a paused engine (open circuit) or of a batch its budget paused are not
    waiting for a worker.

    `batch_id` and `document_ids` narrow the queue to one batch or to given documents.
    """
    waiting = Document.objects.filter(
        status=Document.Status.QUEUED,
        batch__status__in=[BatchProcess.Status.QUEUED, BatchProcess.Status.PROCESSING],
        batch__budget_paused_at__isnull=True,
    ).exclude(batch__engine__in=EngineCircuit.objects.values("engine"))
    if batch_id is not None:
        waiting = waiting.filter(batch_id=batch_id)
    if document_ids is not None:
        waiting = waiting.filter(pk__in=document_ids)
    return waiting.order_by(
        "-batch__priority",
        F("batch__last_claimed_at").asc(nulls_first=True),
        "created_at",
        "id",
    )


def before_start(now: datetime) -> Q:
    """Documents of a batch told to start later (`BatchProcess.start_at`) that has not yet:
    they wait on purpose, due at its start."""
    return Q(batch__start_at__gt=now)


def batch_documents(*, batch: BatchProcess) -> QuerySet[Document]:
    return batch.documents.order_by("created_at", "id").defer("text")


@dataclass(frozen=True)
class Progress:
    total: int
    queued: int
    processing: int
    completed: int
    failed: int
    canceled: int
    percent: int
    eta_seconds: int | None
    # Documents finished per minute over the last ten minutes; None when none finished then.
    per_minute: float | None = None

    @property
    def done(self) -> int:
        return self.completed + self.failed + self.canceled


def batch_progress(*, batch: BatchProcess, now: datetime | None = None) -> Progress:
    """Counts per state from the documents, and the throughput of the last ten minutes with
    the ETA it gives, while the batch runs."""
    counts = {
        row["status"]: row["n"]
        for row in batch.documents.order_by().values("status").annotate(n=Count("id"))
    }
    total = sum(counts.values())
    finished = sum(counts.get(s, 0) for s in Document.TERMINAL_STATUSES)
    remaining = total - finished
    eta = per_minute = None
    if not batch.is_terminal:
        recent = _recent_throughput(batch=batch, now=now or timezone.now())
        if recent is not None:
            finished_recently, elapsed = recent
            per_minute = 60 * finished_recently / elapsed
            if remaining:
                eta = round(remaining * elapsed / finished_recently)
    return Progress(
        total=total,
        queued=counts.get(Document.Status.QUEUED, 0),
        processing=counts.get(Document.Status.PROCESSING, 0),
        completed=counts.get(Document.Status.COMPLETED, 0),
        failed=counts.get(Document.Status.FAILED, 0),
        canceled=counts.get(Document.Status.CANCELED, 0),
        percent=round(100 * finished / total) if total else 0,
        eta_seconds=eta,
        per_minute=per_minute,
    )


ETA_WINDOW = timedelta(minutes=10)


def _recent_throughput(*, batch: BatchProcess, now: datetime) -> tuple[int, float] | None:
    """Documents finished in the last ten minutes and the seconds they took, from the earliest
    start among them (not since the batch started, which after a retry of an old batch would
    be days); None when none finished then."""
    recent = batch.documents.filter(completed_at__gte=now - ETA_WINDOW).aggregate(
        n=Count("id"), since=Min("started_at")
    )
    if not recent["n"] or recent["since"] is None:
        return None
    elapsed = (now - recent["since"]).total_seconds()
    if elapsed <= 0:
        return None
    return recent["n"], elapsed


def batch_failures_by_kind(*, batch: BatchProcess) -> dict[str, int]:
    """How many of the batch's failed documents failed with each kind of error."""
    rows = (
        batch.documents.filter(status=Document.Status.FAILED)
        .order_by()
        .values("error_kind")
        .annotate(n=Count("id"))
    )
    return {row["error_kind"]: row["n"] for row in rows}


def batch_field_names(*, batch: BatchProcess) -> list[str]:
    """The batch's field names: its field list, else those inferred from the prompt."""
    from extraction.fields import fields_from_prompt

    fields = batch.fields or fields_from_prompt(batch.extraction_prompt)
    return [spec["name"] for spec in fields]


@dataclass(frozen=True)
class ValueSummary:
    """The fields of the batch's completed documents: how many have a value, how many are
    missing, and how many values' quotes were not found in the document's text."""

    fields: int
    with_value: int
    unverified: int
    statuses: dict[str, int]  # values per status (VALUE_STATUSES), the API's `value_counts`
    reviewed_documents: int = 0  # documents a person reviewed a value of

    @property
    def missing(self) -> int:
        return self.fields - self.with_value


@dataclass(frozen=True)
class Costs:
    actual_usd: Decimal
    estimated_usd: Decimal | None
    values: ValueSummary


def batch_costs(*, batch: BatchProcess) -> Costs:
    """The money spent so far (every paid call, failed and canceled documents' included), an
    estimate of the whole batch (spent + estimates of documents read but not finished, scaled
    up for those not read yet; canceled documents left out), and what the values are worth."""
    kept = ~Q(status=Document.Status.CANCELED)
    totals = batch.documents.aggregate(
        spent=Sum("cost_usd"),
        actual=Sum("cost_usd", filter=kept),
        pending=Sum("estimated_cost_usd", filter=kept & Q(cost_usd__isnull=True)),
        known=Count(
            "id", filter=kept & (Q(cost_usd__isnull=False) | Q(estimated_cost_usd__isnull=False))
        ),
        total=Count("id", filter=kept),
        fields=Sum("values_total", filter=Q(status=Document.Status.COMPLETED)),
        found=Sum("values_found", filter=Q(status=Document.Status.COMPLETED)),
        verified=Sum("values_verified", filter=Q(status=Document.Status.COMPLETED)),
        reviewed=Count("id", filter=Q(reviewed_at__isnull=False)),
        **_status_sums(),
    )
    actual = totals["spent"] or Decimal(0)
    estimated = None
    if totals["known"]:
        known_sum = (totals["actual"] or Decimal(0)) + (totals["pending"] or Decimal(0))
        estimated = (known_sum * totals["total"] / totals["known"]).quantize(Decimal("0.0001"))
    found = totals["found"] or 0
    values = ValueSummary(
        fields=totals["fields"] or 0,
        with_value=found,
        unverified=found - (totals["verified"] or 0),
        statuses=_statuses(totals),
        reviewed_documents=totals["reviewed"],
    )
    return Costs(actual_usd=actual, estimated_usd=estimated, values=values)


def _status_sums() -> dict[str, Sum]:
    """The aggregates of the completed documents' values per status (their count_* columns)."""
    completed = Q(status=Document.Status.COMPLETED)
    return {
        f"count_{status}": Sum(f"count_{status}", filter=completed) for status in VALUE_STATUSES
    }


def _statuses(totals: dict[str, Any]) -> dict[str, int]:
    return {status: totals[f"count_{status}"] or 0 for status in VALUE_STATUSES}


CHECK_STATUSES = ("reconciled", "failed", "not_checked")


@dataclass(frozen=True)
class Outcome:
    """What a batch's completed documents came to: their values per status (the API's
    `value_counts`) and how many documents' checks reconciled, failed or could not run."""

    values: dict[str, int]
    checks: dict[str, int]


def batch_outcome(*, batch: BatchProcess) -> Outcome:
    completed = batch.documents.filter(status=Document.Status.COMPLETED)
    checks = dict.fromkeys(CHECK_STATUSES, 0)
    rows = completed.order_by().values("result__checks__status").annotate(n=Count("id"))
    for row in rows:
        status = row["result__checks__status"]
        # A result stored before checks existed was not checked.
        checks[status if status in checks else "not_checked"] += row["n"]
    return Outcome(values=_statuses(completed.aggregate(**_status_sums())), checks=checks)


def documents_needing_review(*, batch: BatchProcess) -> QuerySet[Document]:
    """The batch's completed documents nobody has reviewed that have a reason to be looked at:
    failed checks, a possible duplicate or an outlier (the batch's checks), a value invalid,
    not found in the text or missing, a required field without a value (also one the result
    does not hold at all: the field was added later), or a page OCR found hard to read (below
    SHEAF_OCR_REVIEW_BELOW); and a reviewed document whose current run read a reviewed value
    differently (`result["disagreements"]`, runs._flag_disagreements)."""
    reasons = (
        Q(result__checks__status="failed")
        | Q(count_invalid__gt=0)
        | Q(count_unverified__gt=0)
        | Q(count_missing__gt=0)
        | Q(ocr_confidence__lt=settings.SHEAF_OCR_REVIEW_BELOW)
    )
    flagged = batch_checks_flagged(batch=batch)
    if flagged:
        reasons |= Q(pk__in=flagged)
    documents = batch.documents.all()
    required = [spec["name"] for spec in batch.fields if spec.get("required")]
    for number, name in enumerate(required):
        # ->> (KeyTextTransform) is NULL for a JSON null and for a missing key alike.
        value = KeyTextTransform("value", KeyTransform(name, KeyTransform("fields", "result")))
        documents = documents.annotate(**{f"required_{number}": value})
        reasons |= Q(**{f"required_{number}__isnull": True})
    return documents.filter(
        Q(reasons, reviewed_at__isnull=True) | Q(result__has_key="disagreements"),
        status=Document.Status.COMPLETED,
    ).defer("text")


def batch_checks_flagged(*, batch: BatchProcess) -> set[uuid.UUID]:
    """The documents the batch's checks (`batches.checks`) flag: possible duplicates and
    outliers."""
    checks = batch.checks or {}
    entries = [*checks.get("duplicates", []), *checks.get("outliers", [])]
    return {uuid.UUID(entry["document"]["id"]) for entry in entries}


def batch_review_queue(*, batch: BatchProcess) -> list[uuid.UUID]:
    """The batch's completed documents that need a person, worst first: a re-run disagreeing
    with a review, failed checks, then possible duplicates and outliers, required values
    missing, invalid values, values not found in the text, missing values, a page hard to read;
    a document a person has reviewed (unless a re-run disagrees with it), or with none of
    these, is not in it."""
    required = [spec["name"] for spec in batch.fields if spec.get("required")]
    rows = (
        documents_needing_review(batch=batch)
        .order_by("created_at", "id")
        .values_list(
            "pk",
            "result__checks__status",
            "count_invalid",
            "count_unverified",
            "count_missing",
            "ocr_confidence",
            "result__disagreements",
            # Only read when some field is required: a missing required value is a reason.
            "result" if required else "result__checks__status",
        )
    )
    flagged = batch_checks_flagged(batch=batch)
    queue = []
    for pk, checks, invalid, unverified, missing, confidence, disagreements, result in rows:
        fields = (result.get("fields") or {}) if required and isinstance(result, dict) else {}
        lacking = sum(1 for name in required if (fields.get(name) or {}).get("value") is None)
        hard_to_read = confidence is not None and confidence < settings.SHEAF_OCR_REVIEW_BELOW
        badness = (
            bool(disagreements),
            checks == "failed",
            pk in flagged,
            lacking,
            invalid or 0,
            unverified or 0,
            missing or 0,
            hard_to_read,
        )
        queue.append((badness, pk))
    # sorted() is stable: documents equally bad keep their upload order.
    return [pk for _, pk in sorted(queue, key=lambda item: item[0], reverse=True)]
