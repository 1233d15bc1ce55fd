"""2 + 3. Throughput with an engine that sleeps L seconds at N documents in flight, and the peak
memory of web + workers meanwhile."""

from __future__ import annotations

import math
import statistics
import time
from collections import Counter
from dataclasses import dataclass

from bench.harness import Bench, create_batch, wait_batch
from bench.inputs import invoices
from bench.measurement import (
    SAMPLE_SECONDS,
    CpuMeter,
    MemoryPeak,
    MemorySampler,
    median_of,
    seconds,
)
from bench.processes import Process, log
from bench.report import counts, mb, server_note, verdict, workers
from bench.web import PagePoller, running_web, session_cookie, web_description

THROUGHPUT_TARGET = 0.95
RSS_TARGET_MB = 512.0
RSS_TARGET_CONCURRENCY = 64
SHORT_CASE_SECONDS = 10.0  # throughput cases with less work than this run several times


@dataclass
class ThroughputRun:
    steady_per_s: float
    overall_per_s: float
    busy_s: float  # mean claim -> completed of one document
    memory: MemoryPeak
    cpu_ms: float  # CPU of the whole cluster per document
    others_cpus: float  # average CPUs used by other processes meanwhile


@dataclass
class ThroughputCase:
    concurrency: int
    latency: float
    documents: int
    runs: list[ThroughputRun]

    @property
    def bound(self) -> float:
        return self.concurrency / self.latency

    @property
    def steady_per_s(self) -> float:
        return median_of(self.runs, "steady_per_s")

    @property
    def ratio(self) -> float:
        return self.steady_per_s / self.bound

    @property
    def ratios(self) -> list[float]:
        return [run.steady_per_s / self.bound for run in self.runs]

    @property
    def overall_per_s(self) -> float:
        return median_of(self.runs, "overall_per_s")

    @property
    def busy_s(self) -> float:
        return median_of(self.runs, "busy_s")

    @property
    def cpu_ms(self) -> float:
        return median_of(self.runs, "cpu_ms")

    @property
    def others_cpus(self) -> float:
        return median_of(self.runs, "others_cpus")

    @property
    def memory(self) -> MemoryPeak:
        return max((run.memory for run in self.runs), key=lambda memory: memory.rss_kb)


@dataclass
class Throughput:
    cases: list[ThroughputCase]
    web_statuses: Counter[int | str]  # the batch page's polls during every case, by answer
    web_latencies: list[float]


def steady_rate(completed: list[float], per_round: int) -> float:
    """Documents per second between the end of the first round and the start of the last."""
    total = len(completed)
    if total < 3 * per_round:
        raise ValueError("need at least 3 rounds")
    first, last = completed[per_round - 1], completed[total - per_round - 1]
    return (total - 2 * per_round) / (last - first)


def rounds_for(latency: float, minimum: int) -> int:
    """At least `minimum` rounds and at least ~5 s of work, so short latencies are not noise."""
    return max(minimum, math.ceil(5.0 / latency))


def run_case(
    bench: Bench, sampler: MemorySampler, poller: PagePoller, web: Process, n: int, latency: float
) -> ThroughputCase:
    """One cluster for the case; short cases (under SHORT_CASE_SECONDS of work) run several
    batches one after the other on it and report the median, long ones run once."""
    from documents.models import Document

    rounds = rounds_for(latency, bench.args.rounds)
    documents = rounds * n
    repeats = bench.args.short_repeats if rounds * latency < SHORT_CASE_SECONDS else 1
    case = ThroughputCase(concurrency=n, latency=latency, documents=documents, runs=[])
    with bench.start_cluster(
        SHEAF_WORKERS=str(bench.args.workers),
        SHEAF_CONCURRENCY=str(n),
        SHEAF_BENCH_LATENCY=str(latency),
    ) as cluster:
        # A long-running worker has done its first document (imports, engine set-up) long ago.
        warm = create_batch(bench, invoices(1), engine="sleep", name=f"warm-up N={n} L={latency}")
        wait_batch(warm, timeout=60 + latency * 4, cluster=cluster)
        for repeat in range(1, repeats + 1):
            sampler.watch({"web": web.pid, "cluster": cluster.pid})
            created = time.time()
            with CpuMeter([cluster.pid, web.pid]) as cpu, CpuMeter([cluster.pid]) as cluster_cpu:
                batch = create_batch(
                    bench, invoices(documents), engine="sleep", name=f"N={n} L={latency} #{repeat}"
                )
                poller.watch(str(batch.pk))
                wait_batch(batch, timeout=60 + rounds * latency * 4, cluster=cluster)
            poller.watch(None)
            memory = sampler.peak()
            sampler.watch({})
            if not web.alive():
                raise RuntimeError(f"the web server died:\n{web.tail()}")
            rows = list(
                Document.objects.filter(batch=batch).values_list("started_at", "completed_at")
            )
            completed = seconds([row[1] for row in rows])
            run = ThroughputRun(
                steady_per_s=steady_rate(completed, n),
                overall_per_s=documents / (completed[-1] - created),
                busy_s=statistics.fmean((done - start).total_seconds() for start, done in rows),
                memory=memory,
                cpu_ms=cluster_cpu.seconds / documents * 1000,
                others_cpus=cpu.others,
            )
            case.runs.append(run)
            log(
                f"  N={n:>3} L={latency:g}s #{repeat}: {run.steady_per_s:7.1f} docs/s of "
                f"{case.bound:6.1f} ({run.steady_per_s / case.bound:.1%}); peak RSS "
                f"{mb(memory.rss_kb)} ({memory.processes} processes); cluster CPU "
                f"{run.cpu_ms:.1f} ms/doc; others used {run.others_cpus:.2f} CPUs"
            )
    return case


def measure(bench: Bench) -> Throughput:
    with (
        running_web(bench) as (web, base_url),
        MemorySampler() as sampler,
        PagePoller(base_url, session_cookie(bench)) as poller,
    ):
        cases = [
            run_case(bench, sampler, poller, web, n, latency)
            for latency in bench.args.latency
            for n in bench.args.concurrency
        ]
    return Throughput(cases, poller.statuses, poller.latencies)


def _ratios(case: ThroughputCase) -> str:
    if len(case.runs) < 2:
        return ""
    return " [" + " ".join(f"{ratio:.1%}" for ratio in case.ratios) + "]"


def report(bench: Bench, result: Throughput) -> list[str]:
    if not result.cases:
        return []
    lines = [
        "### 2. Throughput, engine sleeping L seconds, N documents in flight",
        "",
        f"{workers(bench)}, SHEAF_CONCURRENCY=N, rounds x N documents in one batch (at least "
        f"{bench.args.rounds} rounds and 5 s of work). Steady state leaves out the first and "
        "the last round. Overall = documents / (batch created -> last completion). "
        "Busy = mean claim -> completed of one document (L plus the pipeline's own time). "
        "Each case's cluster first drains a 1-document warm-up batch. "
        f"Cases with under {SHORT_CASE_SECONDS:g} s of work run {bench.args.short_repeats} "
        "batches one after another on the same cluster: median shown, each run's ratio in "
        "brackets; the memory columns below take the highest peak of the runs."
        + server_note(bench),
        "",
        "| N | L | documents | steady docs/s | bound N/L | ratio | target | result "
        "| overall docs/s | busy per document | cluster CPU per document "
        "| other processes' CPUs |",
        "|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---:|---:|",
    ]
    for case in result.cases:
        lines.append(
            f"| {case.concurrency} | {case.latency:g} s | {case.documents} "
            f"| {case.steady_per_s:.1f} | {case.bound:.1f} | {case.ratio:.1%}{_ratios(case)} "
            f"| >= {THROUGHPUT_TARGET:.0%} | {verdict(case.ratio >= THROUGHPUT_TARGET)} "
            f"| {case.overall_per_s:.1f} | {case.busy_s:.3f} s | {case.cpu_ms:.1f} ms "
            f"| {case.others_cpus:.2f} |"
        )
    lines += [
        "",
        "### 3. Peak memory, web + workers",
        "",
        f"{web_description(bench)} polled every 2 s on the batch's progress "
        f"partial, and the cluster (sentinel, pusher, monitor, {workers(bench)}); every "
        f"process of both trees sampled every {SAMPLE_SECONDS:g} s. RSS counts pages shared "
        "by the forked cluster processes once per process; PSS divides them.",
        "",
        "| N | L | peak RSS sum | web | cluster | processes | largest process "
        "| peak PSS sum | target | result |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for case in result.cases:
        memory = case.memory
        rss = memory.rss_kb / 1024
        target = case.concurrency == RSS_TARGET_CONCURRENCY
        lines.append(
            f"| {case.concurrency} | {case.latency:g} s | {mb(memory.rss_kb)} "
            f"| {mb(memory.by_tree_kb.get('web', 0))} "
            f"| {mb(memory.by_tree_kb.get('cluster', 0))} | {memory.processes} "
            f"| {mb(memory.largest_kb)} "
            f"| {mb(memory.pss_kb)} "
            f"| {f'< {RSS_TARGET_MB:.0f} MB' if target else ''} "
            f"| {verdict(rss < RSS_TARGET_MB) if target else ''} |"
        )
    mean = statistics.fmean(result.web_latencies) * 1000 if result.web_latencies else 0.0
    lines += [
        "",
        f"Web requests during the runs: {counts(result.web_statuses) or 'none'} "
        f"(mean {mean:.0f} ms).",
        "",
    ]
    return lines
