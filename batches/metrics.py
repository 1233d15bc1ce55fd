"""The metrics the database knows, read at scrape time (README, "Operations: metrics").

Three queries per scrape, whatever the data size: documents and their attempts by status and
error kind (one GROUP BY), the queue (`health.queue_state`, the same read as /healthz), and the
durations of the batches finished in the last `BATCH_WINDOW` (one aggregate with a count per
bucket).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, cast

from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from django.utils import timezone
from prometheus_client.core import GaugeHistogramMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from batches.health import queue_state
from batches.models import BatchProcess
from documents.models import Document

BATCH_WINDOW = timedelta(hours=24)
# Upper bounds of the batch duration buckets, in seconds: from a one-file batch to a long day.
BATCH_BUCKETS = (10, 30, 60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400)
FINISHED = (
    BatchProcess.Status.COMPLETED,
    BatchProcess.Status.COMPLETED_WITH_ERRORS,
    BatchProcess.Status.FAILED,
)


class DatabaseCollector(Collector):
    """Gauges computed from the database each time it is collected."""

    def __init__(self, *, now: datetime | None = None) -> None:
        self._now = now

    def collect(self) -> Iterator[Metric]:
        now = self._now or timezone.now()
        yield from _documents()
        yield from _queue(now)
        yield _batch_durations(now)


def _documents() -> Iterator[Metric]:
    documents = GaugeMetricFamily(
        "sheaf_documents",
        "Documents by status and, for failed ones (and ones waiting for a retry), error kind.",
        labels=["status", "error_kind"],
    )
    attempts = GaugeMetricFamily(
        "sheaf_document_attempts",
        "Attempts spent by the documents of each status and error kind (a retry starts afresh).",
        labels=["status", "error_kind"],
    )
    rows = (
        Document.objects.order_by()
        .values("status", "error_kind")
        .annotate(n=Count("pk"), attempts=Sum("attempts"))
    )
    for row in rows:
        labels = [row["status"], row["error_kind"]]
        documents.add_metric(labels, row["n"])
        attempts.add_metric(labels, row["attempts"] or 0)
    yield documents
    yield attempts


def _queue(now: datetime) -> Iterator[Metric]:
    queue = queue_state(now=now)
    gauges: list[tuple[str, str, float | None]] = [
        ("sheaf_queue_depth", "Queued documents of running batches.", queue.depth),
        ("sheaf_queue_due", "Queued documents a worker could take now.", queue.due),
        ("sheaf_queue_paused", "Queued documents whose engine is paused.", queue.paused),
        ("sheaf_queue_scheduled", "Queued documents whose batch starts later.", queue.scheduled),
        (
            "sheaf_queue_oldest_due_age_seconds",
            "How long the longest-waiting due document has waited (0: none is due).",
            queue.oldest_due_seconds,
        ),
    ]
    for name, documentation, value in gauges:
        yield GaugeMetricFamily(name, documentation, value=value or 0)


def _batch_durations(now: datetime) -> GaugeHistogramMetricFamily:
    """Started to finished, of the batches that finished in the last BATCH_WINDOW, by outcome.
    A gauge histogram: the window slides, so the counts go down as well as up."""
    family = GaugeHistogramMetricFamily(
        "sheaf_batch_duration_seconds",
        f"From start to finish, batches that finished in the last "
        f"{BATCH_WINDOW.total_seconds() / 3600:g} hours, by status.",
        labels=["status"],
    )
    duration = ExpressionWrapper(F("completed_at") - F("started_at"), output_field=DurationField())
    buckets: dict[str, Any] = {
        f"le_{bound}": Count("pk", filter=Q(duration__lte=timedelta(seconds=bound)))
        for bound in BATCH_BUCKETS
    }
    rows = (
        BatchProcess.objects.filter(
            status__in=FINISHED, completed_at__gte=now - BATCH_WINDOW, started_at__isnull=False
        )
        .annotate(duration=duration)
        .order_by()
        .values("status")
        .annotate(n=Count("pk"), total=Sum("duration"), **buckets)
    )
    # The bucket counts are named at run time, which the rows' type cannot know.
    for row in cast("list[dict[str, Any]]", list(rows)):
        counts = [(f"{float(bound)}", row[f"le_{bound}"]) for bound in BATCH_BUCKETS]
        total: timedelta = row["total"] or timedelta(0)
        family.add_metric(
            [row["status"]],
            [*counts, ("+Inf", row["n"])],
            gsum_value=total.total_seconds(),
        )
    return family
