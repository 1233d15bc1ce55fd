"""1. Per-document overhead, offline engine: a document against a bare django-q2 task."""

from __future__ import annotations

import statistics
import time
import uuid
from dataclasses import dataclass

from bench.harness import Bench, create_batch, wait_batch
from bench.inputs import invoices
from bench.measurement import CpuMeter, median_of, seconds
from bench.processes import Process, log, wait_for
from bench.report import server_note, verdict

OVERHEAD_TARGET_MS = 3.0


@dataclass
class OverheadRun:
    task_ms: float
    task_e2e_ms: float
    document_ms: float
    document_e2e_ms: float
    document_busy_ms: float  # mean claim -> completed of one document
    task_cpu_ms: float  # CPU of the whole cluster per task
    document_cpu_ms: float  # CPU of the whole cluster per document
    others_cpus: float  # average CPUs used by other processes meanwhile

    @property
    def cpu_difference_ms(self) -> float:
        return self.document_cpu_ms - self.task_cpu_ms

    @property
    def difference_ms(self) -> float:
        return self.document_ms - self.task_ms


@dataclass
class Overhead:
    runs: list[OverheadRun]
    task_full_table_ms: float  # no-op task with django-q2's result table at its save_limit


def save_limit() -> int:
    """django-q2's `save_limit` in the settings measured (successful results it keeps)."""
    from django.conf import settings

    return int(settings.Q_CLUSTER.get("save_limit", 250))


def reset_task_results(stored: int) -> None:
    """Start a no-op run from a known django-q2 result table: `stored` successful results.

    django-q2's monitor reads every stored success (up to `save_limit`) for each task it saves,
    so a bare task's cost grows with that table; runs must start alike to compare.
    """
    from django.utils import timezone
    from django_q.models import Task

    Task.objects.all().delete()
    now = timezone.now()
    Task.objects.bulk_create(
        Task(
            id=uuid.uuid4().hex,
            name=f"filler-{n}",
            func="bench.tasks.noop",
            args=(),
            kwargs={},
            started=now,
            stopped=now,
            group="bench-filler",
            success=True,
        )
        for n in range(stored)
    )


def measure_noop(
    cluster: Process, k: int, group: str, stored: int = 0
) -> tuple[float, float, CpuMeter]:
    """K no-op tasks, enqueued in one transaction so the pusher never finds the queue empty
    (and sleeps its 0.5 s poll) because the bench enqueues more slowly than the cluster runs.

    django-q2 keeps only the last `save_limit` successes (the oldest is deleted as each new one
    is saved), so the interval is taken over the results still stored at the end, i.e. the
    last min(K, save_limit) tasks; end to end runs from the bench's first enqueue."""
    from django.db import transaction
    from django_q.models import Failure, Task
    from django_q.tasks import async_task

    limit = save_limit()
    kept = min(k, limit) if limit > 0 else k
    reset_task_results(stored)
    with CpuMeter([cluster.pid]) as cpu:
        enqueued = time.time()
        with transaction.atomic():
            for _ in range(k):
                last = async_task("bench.tasks.noop", group=group)
        wait_for(
            lambda: (
                Task.objects.filter(pk=last).exists()
                and Task.objects.filter(group=group).count() >= kept
            ),
            timeout=60 + k * 0.2,
            what=f"{k} no-op tasks",
            process=cluster,
            step=0.1,
        )
    if Failure.objects.filter(group=group).exists():
        raise RuntimeError("a no-op task failed")
    stopped = seconds(list(Task.objects.filter(group=group).values_list("stopped", flat=True)))
    interval = (stopped[-1] - stopped[0]) / (len(stopped) - 1) * 1000
    return interval, (stopped[-1] - enqueued) / k * 1000, cpu


def measure_documents(
    bench: Bench, cluster: Process, k: int, run: int
) -> tuple[float, float, float, CpuMeter]:
    from documents.models import Document

    with CpuMeter([cluster.pid]) as cpu:
        batch = create_batch(bench, invoices(k), engine="local", name=f"overhead {run}")
        wait_batch(batch, timeout=60 + k * 0.5, cluster=cluster)
    rows = list(Document.objects.filter(batch=batch).values_list("started_at", "completed_at"))
    completed = seconds([row[1] for row in rows])
    first = min(row[0] for row in rows).timestamp()
    busy = statistics.fmean((done - start).total_seconds() for start, done in rows)
    return (
        (completed[-1] - completed[0]) / (k - 1) * 1000,
        (completed[-1] - first) / k * 1000,
        busy * 1000,
        cpu,
    )


def measure(bench: Bench) -> Overhead:
    k, repeats = bench.args.k, bench.args.repeats
    log(f"overhead: 1 worker, SHEAF_CONCURRENCY=1, K={k}, {repeats} runs")
    with bench.start_cluster(SHEAF_WORKERS="1", SHEAF_CONCURRENCY="1") as cluster:
        # Warm the worker's document path (imports, engine tables) as a running worker would be.
        warm = create_batch(bench, invoices(5), engine="local", name="warm-up")
        wait_batch(warm, timeout=60, cluster=cluster)
        runs = []
        for run in range(1, repeats + 1):
            task_ms, task_e2e, task_cpu = measure_noop(cluster, k, f"bench-noop-{run}")
            doc_ms, doc_e2e, busy, doc_cpu = measure_documents(bench, cluster, k, run)
            result = OverheadRun(
                task_ms,
                task_e2e,
                doc_ms,
                doc_e2e,
                busy,
                task_cpu_ms=task_cpu.seconds / k * 1000,
                document_cpu_ms=doc_cpu.seconds / k * 1000,
                others_cpus=max(task_cpu.others, doc_cpu.others),
            )
            runs.append(result)
            log(
                f"  run {run}: no-op task {task_ms:.2f} ms, document {doc_ms:.2f} ms "
                f"({doc_ms - task_ms:+.2f} ms); CPU {result.task_cpu_ms:.2f} / "
                f"{result.document_cpu_ms:.2f} ms; others used {result.others_cpus:.2f} CPUs"
            )
        # What a bare task costs once a long-running cluster has stored save_limit results.
        full, _, _ = measure_noop(cluster, k, "bench-noop-full", stored=save_limit())
        log(f"  no-op task with {save_limit()} stored results: {full:.2f} ms")
    return Overhead(runs, full)


def _range(runs: list[OverheadRun], attr: str) -> str:
    values = [getattr(run, attr) for run in runs]
    return f"[{min(values):.2f} .. {max(values):.2f}]" if len(values) > 1 else ""


def report(bench: Bench, result: Overhead) -> list[str]:
    overhead = result.runs
    k = bench.args.k
    task = median_of(overhead, "task_ms")
    doc = median_of(overhead, "document_ms")
    diff = median_of(overhead, "difference_ms")
    return [
        "### 1. Per-document overhead, `local` engine",
        "",
        f"1 worker process, SHEAF_CONCURRENCY=1, K={k} per run, {len(overhead)} runs "
        "(median; range in brackets). Interval = (last - first completion) / (count - 1), "
        f"over the K documents, and over the last {min(k, save_limit())} no-op tasks "
        f"(django-q2 keeps only its last save_limit = {save_limit()} results); "
        "end to end = (last completion - first enqueue or claim) / K.",
        "",
        "| figure | value | target | result |",
        "|---|---|---|---|",
        f"| no-op django-q2 task, interval | {task:.2f} ms {_range(overhead, 'task_ms')} | | |",
        f"| document (claim, read TXT, extract, complete), interval | {doc:.2f} ms "
        f"{_range(overhead, 'document_ms')} | | |",
        f"| **document - task** | **{diff:+.2f} ms** {_range(overhead, 'difference_ms')} "
        f"| <= +{OVERHEAD_TARGET_MS:.0f} ms | {verdict(diff <= OVERHEAD_TARGET_MS)} |",
        f"| no-op task, end to end | {median_of(overhead, 'task_e2e_ms'):.2f} ms | | |",
        f"| document, end to end | {median_of(overhead, 'document_e2e_ms'):.2f} ms | | |",
        f"| one document, claim to completed | "
        f"{median_of(overhead, 'document_busy_ms'):.2f} ms | | |",
        f"| no-op task, django-q2 result table full ({save_limit()} stored) | "
        f"{result.task_full_table_ms:.2f} ms | | |",
        f"| cluster CPU per no-op task | {median_of(overhead, 'task_cpu_ms'):.2f} ms | | |",
        f"| cluster CPU per document | {median_of(overhead, 'document_cpu_ms'):.2f} ms | | |",
        f"| cluster CPU, document - task | {median_of(overhead, 'cpu_difference_ms'):+.2f} ms "
        f"{_range(overhead, 'cpu_difference_ms')} | | |",
        f"| CPUs used by other processes meanwhile | "
        f"{median_of(overhead, 'others_cpus'):.2f} {_range(overhead, 'others_cpus')} | | |",
        "",
        "Each no-op run starts from an empty django-q2 result table and enqueues its K tasks "
        "in one transaction; the table-full row is the same measurement with the table at "
        "its save_limit, as it stays in a long-running deployment. Cluster CPU is the "
        "user + system time of every cluster process (sentinel, pusher, monitor, worker) "
        "over the run, divided by K: it does not depend on what else the machine is doing, "
        "unlike the intervals." + server_note(bench),
        "",
    ]
