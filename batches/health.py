"""Operations reads for staff: batch health metrics computed in the database, the queue's state,
and daily throughput. Each function is a constant number of queries, whatever the data size.
Also `/healthz`'s one write, which tells whether the database takes writes at all.

Definitions (also in README, "Operations"):

- *finished* documents are completed or failed; canceled documents count in neither.
- *error rate* is failed / finished, in percent.
- A document is only `failed` once it will not be retried automatically (a transient error puts
  it back in the queue while attempts remain). Failed documents split in two by the kind stored
  with their error (`Document.error_kind`): *permanent failures* failed because of the document
  or the request (an unreadable or refused file), and retrying will fail again; *gave up*
  failures spent all `SHEAF_MAX_ATTEMPTS` on transient errors or dying workers (or waited out
  rate limits for too long), and a retry may well succeed.
- *processing time* runs from the first document's first claim to the last document's finish.
- *latest error* is the latest failure, or the latest failed attempt of a document waiting for
  its retry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, TypedDict, cast

from django.conf import settings
from django.db import connection, transaction
from django.db.models import (
    BooleanField,
    Case,
    CharField,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    FloatField,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Cast, Concat, NullIf, TruncDate
from django.utils import timezone

from accounts.selectors import effective_plan_expression
from batches.models import BatchProcess, EngineCircuit, HealthProbe
from batches.selectors import before_start
from documents.models import Document

Status = Document.Status

UNHEALTHY_ERROR_RATE = 20  # percent of finished documents
TOP_ERROR_CODES = 3
RUNNING = (BatchProcess.Status.QUEUED, BatchProcess.Status.PROCESSING)


class Health(TypedDict):
    """What `batches_with_health` annotates on each batch."""

    n_total: int
    n_completed: int
    n_failed: int
    n_processing: int
    n_queued: int
    n_canceled: int
    n_permanent: int
    n_expired_leases: int
    max_attempts_used: int | None
    first_started_at: datetime | None
    last_finished_at: datetime | None
    latest_error_at: datetime | None
    oldest_due_at: datetime | None
    error_code_1: str | None
    error_code_2: str | None
    error_code_3: str | None
    n_gave_up: int
    error_rate: float | None
    processing_time: timedelta | None
    computed_status: str
    issue_paused: bool
    issue_stalled: bool
    issue_expired_leases: bool
    issue_status: bool
    issue_error_rate: bool
    issue_gave_up: bool


if TYPE_CHECKING:
    # A type only: on Python 3.11 the alias cannot be subscripted at runtime.
    from django_stubs_ext import WithAnnotations

    BatchWithHealth = WithAnnotations[BatchProcess, Health]


def _count(condition: Q | None = None) -> Count:
    return Count("documents", filter=condition)


def _in(*statuses: str) -> Q:
    return Q(documents__status__in=statuses)


def _top_error_code(rank: int) -> Subquery:
    """The rank-th most frequent error code among the batch's failed documents, as "code: n"."""
    by_code = (
        Document.objects.filter(batch=OuterRef("pk"), status=Status.FAILED)
        .order_by()
        .values("error_code")
        .annotate(n=Count("pk"))
        .annotate(label=Concat("error_code", Value(": "), Cast("n", output_field=CharField())))
        .order_by("-n", "error_code")
        .values("label")
    )
    return Subquery(by_code[rank : rank + 1])


def batches_with_health(
    batches: QuerySet[BatchProcess], *, now: datetime | None = None
) -> QuerySet[BatchWithHealth]:
    """Annotate every batch with its health metrics in one query (aggregates over one join of
    its documents, plus one small correlated subquery per top error code).

    The join means a later filter on `documents__…` would multiply the counts: filter batches by
    their documents with `pk__in` instead.
    """
    now = now or timezone.now()
    max_queue_age = timedelta(seconds=settings.SHEAF_HEALTH_MAX_QUEUE_AGE)
    failed = Q(documents__status=Status.FAILED)
    permanent = failed & Q(documents__error_kind=Document.ErrorKind.PERMANENT)
    gave_up = failed & Q(documents__error_kind=Document.ErrorKind.GAVE_UP)
    due = Q(
        documents__status=Status.QUEUED,
        documents__next_attempt_at__lte=now,
        budget_paused_at__isnull=True,
    )
    annotated = batches.annotate(
        n_total=_count(),
        n_completed=_count(_in(Status.COMPLETED)),
        n_failed=_count(failed),
        n_processing=_count(_in(Status.PROCESSING)),
        n_queued=_count(_in(Status.QUEUED)),
        n_canceled=_count(_in(Status.CANCELED)),
        n_permanent=_count(permanent),
        n_gave_up=_count(gave_up),
        n_expired_leases=_count(
            Q(documents__status=Status.PROCESSING, documents__lease_expires_at__lt=now)
        ),
        max_attempts_used=Max("documents__attempts"),
        first_started_at=Min("documents__started_at"),
        last_finished_at=Max("documents__completed_at"),
        latest_error_at=Max(
            Case(
                When(failed, then=F("documents__completed_at")),
                When(
                    Q(documents__status=Status.QUEUED) & ~Q(documents__error_code=""),
                    then=F("documents__updated_at"),
                ),
            )
        ),
        oldest_due_at=Min("documents__next_attempt_at", filter=due),
        error_code_1=_top_error_code(0),
        error_code_2=_top_error_code(1),
        error_code_3=_top_error_code(2),
    ).annotate(
        error_rate=Cast(F("n_failed") * 100.0, FloatField())
        / NullIf(F("n_completed") + F("n_failed"), Value(0)),
        processing_time=ExpressionWrapper(
            F("last_finished_at") - F("first_started_at"), output_field=DurationField()
        ),
        computed_status=_computed_status(),
    )
    # CASE, not the bare condition: a comparison with NULL (no finished documents, no error
    # rate) must read as "no problem", also under NOT in the "healthy" filter.
    flags = {
        name: Case(
            When(rule.condition(now, max_queue_age), then=Value(True)),
            default=Value(False),
            output_field=BooleanField(),
        )
        for name, rule in HEALTH_RULES.items()
    }
    # The plugin types what it sees annotated; the flags come by name from HEALTH_RULES.
    return cast("QuerySet[BatchWithHealth]", annotated.annotate(**flags))


def _computed_status() -> Case:
    """The batch status its documents imply, by the rules of `pipeline.batch_refresh`."""
    S = BatchProcess.Status
    return Case(
        When(n_total=0, then=F("status")),
        When(status=S.CANCELED, then=Value(S.CANCELED.value)),
        When(
            Q(n_queued__gt=0) | Q(n_processing__gt=0),
            then=Case(
                When(first_started_at__isnull=True, then=Value(S.QUEUED.value)),
                default=Value(S.PROCESSING.value),
            ),
        ),
        When(n_completed=F("n_total") - F("n_canceled"), then=Value(S.COMPLETED.value)),
        When(n_completed=0, then=Value(S.FAILED.value)),
        default=Value(S.COMPLETED_WITH_ERRORS.value),
    )


@dataclass(frozen=True)
class HealthRule:
    condition: Callable[[datetime, timedelta], Q]
    explain: Callable[[Any], str]


HEALTH_RULES: dict[str, HealthRule] = {
    "issue_paused": HealthRule(
        lambda now, age: ~Q(paused_reason="") & Q(status__in=RUNNING),
        lambda b: f"paused: {b.paused_reason}",
    ),
    "issue_stalled": HealthRule(
        lambda now, age: Q(status__in=RUNNING, paused_reason="", oldest_due_at__lt=now - age),
        lambda b: f"stalled: a document has been due since {b.oldest_due_at:%Y-%m-%d %H:%M} UTC",
    ),
    "issue_expired_leases": HealthRule(
        lambda now, age: Q(n_expired_leases__gt=0),
        lambda b: f"{b.n_expired_leases} document(s) held by a worker that stopped",
    ),
    "issue_status": HealthRule(
        lambda now, age: ~Q(computed_status=F("status")),
        lambda b: f"status is {b.status} but its documents say {b.computed_status}",
    ),
    "issue_error_rate": HealthRule(
        lambda now, age: Q(error_rate__gte=UNHEALTHY_ERROR_RATE),
        lambda b: f"error rate {b.error_rate:.0f}% (≥ {UNHEALTHY_ERROR_RATE}%)",
    ),
    "issue_gave_up": HealthRule(
        lambda now, age: Q(n_gave_up__gt=0),
        lambda b: f"{b.n_gave_up} document(s) gave up on transient errors (a retry may succeed)",
    ),
}


def unhealthy_condition() -> Q:
    """True for a batch annotated by `batches_with_health` that has at least one problem."""
    condition = Q()
    for name in HEALTH_RULES:
        condition |= Q(**{name: True})
    return condition


def batch_health_problems(batch: BatchWithHealth) -> list[str]:
    """Why a batch annotated by `batches_with_health` is unhealthy (empty when it is healthy)."""
    return [rule.explain(batch) for name, rule in HEALTH_RULES.items() if getattr(batch, name)]


def batch_top_error_codes(batch: BatchWithHealth) -> list[str]:
    labels = (batch.error_code_1, batch.error_code_2, batch.error_code_3)
    return [label for label in labels if label]


# --- The queue and the site as a whole -----------------------------------------------------------


@dataclass(frozen=True)
class QueueState:
    depth: int  # queued documents of running batches
    due: int  # of which a worker could take now
    paused: int  # of which wait for an engine whose circuit is open, or for a budget
    oldest_due_seconds: float | None  # how long the longest-waiting due document has waited
    oldest_queued_seconds: float | None  # age of the oldest queued document since upload
    scheduled: int = 0  # of the queued documents, those whose batch starts later


def queue_state(*, now: datetime | None = None) -> QueueState:
    """One aggregate over the queued documents (the `document_claimable` index serves it)."""
    now = now or timezone.now()
    paused = Q(batch__engine__in=EngineCircuit.objects.values("engine")) | Q(
        batch__budget_paused_at__isnull=False
    )
    due = Q(next_attempt_at__lte=now) & ~paused
    scheduled = before_start(now)
    row = Document.objects.filter(status=Status.QUEUED, batch__status__in=RUNNING).aggregate(
        depth=Count("pk"),
        due=Count("pk", filter=due),
        paused=Count("pk", filter=paused),
        scheduled=Count("pk", filter=scheduled),
        oldest_due_at=Min("next_attempt_at", filter=due),
        # A batch told to start in a week is not a week late when it does.
        oldest_created_at=Min("created_at", filter=~scheduled),
    )

    def age(moment: datetime | None) -> float | None:
        return None if moment is None else round(max((now - moment).total_seconds(), 0.0), 1)

    return QueueState(
        depth=row["depth"],
        due=row["due"],
        paused=row["paused"],
        scheduled=row["scheduled"],
        oldest_due_seconds=age(row["oldest_due_at"]),
        oldest_queued_seconds=age(row["oldest_created_at"]),
    )


@dataclass(frozen=True)
class Day:
    day: date
    completed: int
    failed: int

    @property
    def finished(self) -> int:
        return self.completed + self.failed

    @property
    def error_rate(self) -> float | None:
        return round(100 * self.failed / self.finished, 1) if self.finished else None


def daily_throughput(*, days: int = 14, now: datetime | None = None) -> list[Day]:
    """Documents finished (completed or failed) per UTC day, oldest first, the last `days` days
    including today; days without any are zero."""
    today = timezone.localdate(now or timezone.now())
    first = today - timedelta(days=days - 1)
    since = timezone.make_aware(datetime.combine(first, time.min))
    rows = (
        Document.objects.filter(
            status__in=[Status.COMPLETED, Status.FAILED], completed_at__gte=since
        )
        .annotate(day=TruncDate("completed_at"))
        .values("day")
        .annotate(
            completed=Count("pk", filter=Q(status=Status.COMPLETED)),
            failed=Count("pk", filter=Q(status=Status.FAILED)),
        )
        .order_by("day")
    )
    by_day: dict[date, tuple[int, int]] = {
        row["day"]: (row["completed"], row["failed"]) for row in rows
    }
    result = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        completed, failed = by_day.get(day, (0, 0))
        result.append(Day(day=day, completed=completed, failed=failed))
    return result


def open_circuits() -> QuerySet[EngineCircuit]:
    return EngineCircuit.objects.order_by("opened_at")


def with_owner_plan(
    batches: QuerySet[BatchProcess], *, now: datetime | None = None
) -> QuerySet[BatchProcess]:
    """Annotate `owner_plan`: the owner's effective plan now (not the plan at submission)."""
    return batches.annotate(owner_plan=effective_plan_expression(user="user", now=now))


def database_write_probe() -> None:
    """Write one row and commit, or raise the DatabaseError that says why the database refuses.

    In its own transaction (a savepoint inside one), so that a refusal leaves the connection
    usable for the reads that follow.
    """
    now = timezone.now()
    with _short_lock_waits(), transaction.atomic():
        if connection.vendor == "postgresql":
            cursor = connection.cursor()
            cursor.execute("SET LOCAL lock_timeout = %s", [f"{PROBE_LOCK_WAIT_MS}ms"])
        if not HealthProbe.objects.filter(pk=1).update(checked_at=now):
            HealthProbe.objects.update_or_create(pk=1, defaults={"checked_at": now})


# A load balancer gives a probe a few seconds: a write that waits longer than this for a lock
# answers "busy" while it can still be heard, instead of timing out as if the node were down.
PROBE_LOCK_WAIT_MS = 2000


@contextmanager
def _short_lock_waits() -> Iterator[None]:
    """On SQLite, the write lock is waited for at most PROBE_LOCK_WAIT_MS (instead of the
    connection's long busy timeout, meant for workers) while the probe writes."""
    if connection.vendor != "sqlite":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA busy_timeout")
        (usual,) = cursor.fetchone()
        cursor.execute(f"PRAGMA busy_timeout = {PROBE_LOCK_WAIT_MS:d}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA busy_timeout = {int(usual):d}")
