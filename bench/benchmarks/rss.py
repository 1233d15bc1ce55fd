"""6. Peak RSS (and PSS) of web + workers while one batch of 50, then of 1,000 corpus PDFs is
processed on the `local` engine, and while the finished batch's pages, exports and API batch are
fetched."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.harness import Bench, create_batch, wait_batch
from bench.inputs import corpus_mix, corpus_pdfs
from bench.measurement import SAMPLE_SECONDS, CpuMeter, MemoryPeak, MemorySampler, tree_hwm_kb
from bench.processes import log
from bench.report import counts, mb, verdict, workers
from bench.web import POLL_PAGE_SECONDS, PagePoller, running_web, session_cookie, web_description

RSS_GROWTH_TARGET = 1.1  # peak at 1,000 documents over the peak at 50


def finished_pages(batch_id: str) -> list[str]:
    """What a user opens once a batch is done: its page, the partial, every export, the API."""
    from batches.exports import EXPORT_FORMATS

    return [
        f"/dashboard/batches/{batch_id}/",
        f"/dashboard/batches/{batch_id}/progress/",
        *(f"/dashboard/batches/{batch_id}/export/{fmt}/" for fmt in EXPORT_FORMATS),
        f"/api/v1/batches/{batch_id}/",
    ]


@dataclass
class RssCase:
    documents: int
    processing: MemoryPeak  # from the batch's creation to its last document
    finished: MemoryPeak  # then: the batch page, the partial, every export, the API batch
    web_hwm_kb: int  # the web processes' own peaks (VmHWM), summed: spikes between samples
    seconds: float
    outcome: Counter[str]  # documents by status (and error code)
    cpu_ms: float  # cluster CPU per document
    others_cpus: float
    statuses: Counter[int | str]


def run_rss_case(bench: Bench, documents: int, pdfs: list[Path]) -> RssCase:
    """A fresh web server and cluster for one batch size (a process's RSS rarely shrinks, so the
    sizes must not share processes), both warmed on a 5-document batch, pages and exports."""
    from batches.models import BatchProcess
    from documents.models import Document

    allowed = (BatchProcess.Status.COMPLETED_WITH_ERRORS,)
    with (
        running_web(bench) as (web, base_url),
        MemorySampler() as sampler,
        PagePoller(base_url, session_cookie(bench)) as poller,
        bench.start_cluster(
            SHEAF_WORKERS=str(bench.args.workers),
            SHEAF_CONCURRENCY=str(bench.args.rss_concurrency),
        ) as cluster,
    ):
        warm = create_batch(
            bench, corpus_mix(pdfs, 5), engine="local", name=f"warm-up rss {documents}"
        )
        wait_batch(warm, timeout=120, cluster=cluster, allowed=allowed)
        for path in finished_pages(str(warm.pk)):
            poller.get(path)
        roots = {"web": web.pid, "cluster": cluster.pid}
        sampler.watch(roots)
        started = time.monotonic()
        with CpuMeter([cluster.pid, web.pid]) as cpu, CpuMeter([cluster.pid]) as cluster_cpu:
            batch = create_batch(
                bench, corpus_mix(pdfs, documents), engine="local", name=f"rss {documents}"
            )
            poller.watch(str(batch.pk))
            wait_batch(batch, timeout=120 + documents * 0.5, cluster=cluster, allowed=allowed)
        poller.watch(None)
        elapsed = time.monotonic() - started
        processing = sampler.peak()
        sampler.watch(roots)
        for path in finished_pages(str(batch.pk)):
            poller.get(path)
        time.sleep(SAMPLE_SECONDS * 3)
        finished = sampler.peak()
        web_hwm = tree_hwm_kb(web.pid)
        sampler.watch({})
    outcome = Counter(
        f"{status} ({code})" if code else status
        for status, code in Document.objects.filter(batch=batch).values_list("status", "error_code")
    )
    case = RssCase(
        documents=documents,
        processing=processing,
        finished=finished,
        web_hwm_kb=web_hwm,
        seconds=elapsed,
        outcome=outcome,
        cpu_ms=cluster_cpu.seconds / documents * 1000,
        others_cpus=cpu.others,
        statuses=poller.statuses,
    )
    log(
        f"  {documents} documents in {elapsed:.1f} s: peak RSS {processing.rss_kb / 1024:.0f} MB "
        f"(web {processing.by_tree_kb.get('web', 0) / 1024:.0f}, cluster "
        f"{processing.by_tree_kb.get('cluster', 0) / 1024:.0f}), PSS {processing.pss_kb / 1024:.0f}"
        f" MB; with pages and exports {finished.rss_kb / 1024:.0f} MB; others used "
        f"{cpu.others:.2f} CPUs"
    )
    return case


def measure(bench: Bench) -> list[RssCase]:
    pdfs = corpus_pdfs(bench.args.corpus)
    sizes = bench.args.rss_documents
    log(f"rss: batches of {' and '.join(map(str, sizes))} corpus PDFs, local engine")
    return [run_rss_case(bench, documents, pdfs) for documents in sizes]


def report(bench: Bench, cases: list[RssCase]) -> list[str]:
    lines = [
        "### 6. Peak memory at 50 and 1,000 documents, `local` engine",
        "",
        f"For each size a fresh {web_description(bench)} and cluster ({workers(bench)}, "
        f"SHEAF_CONCURRENCY={bench.args.rss_concurrency}, the PDF reader's child processes "
        "included), both warmed on a 5-document batch (its page, partial, exports and API "
        "batch fetched once); then one batch of corpus PDFs cycled (encrypted, image-only and "
        "broken ones fail as they should, so the batch ends completed_with_errors), while the "
        f"web server is polled on the progress partial every {POLL_PAGE_SECONDS:g} s as the "
        'batch page does. Memory as in section 3. "Then" = the peak again while the '
        "finished batch's page, partial, every export and `GET /api/v1/batches/<id>/` are "
        "fetched once each. Web VmHWM = the web processes' own high-water marks at the end, "
        "summed (it catches a spike between two samples).",
        "",
        "| documents | time | peak RSS sum | web | cluster | processes | largest process "
        "| peak PSS sum | then: RSS (web) | web VmHWM | cluster CPU per document | outcome |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for case in cases:
        memory, then = case.processing, case.finished
        lines.append(
            f"| {case.documents} | {case.seconds:.1f} s | {mb(memory.rss_kb)} "
            f"| {mb(memory.by_tree_kb.get('web', 0))} "
            f"| {mb(memory.by_tree_kb.get('cluster', 0))} "
            f"| {memory.processes} | {mb(memory.largest_kb)} | {mb(memory.pss_kb)} "
            f"| {mb(then.rss_kb)} ({mb(then.by_tree_kb.get('web', 0))}) "
            f"| {mb(case.web_hwm_kb)} "
            f"| {case.cpu_ms:.1f} ms | {counts(case.outcome)} |"
        )
    if len(cases) >= 2:
        small, large = cases[0], cases[-1]
        lines += ["", "| figure | ratio | target | result |", "|---|---:|---|---|"]
        for label, attr in (("RSS", "rss_kb"), ("PSS", "pss_kb")):
            ratio = getattr(large.processing, attr) / max(getattr(small.processing, attr), 1)
            target = label == "RSS"
            lines.append(
                f"| peak {label}, {large.documents} / {small.documents} documents | {ratio:.2f} "
                f"| {f'<= {RSS_GROWTH_TARGET:g}' if target else ''} "
                f"| {verdict(ratio <= RSS_GROWTH_TARGET) if target else ''} |"
            )
        ratio = large.finished.rss_kb / max(small.finished.rss_kb, 1)
        lines.append(
            f"| peak RSS with pages and exports, {large.documents} / {small.documents} "
            f"| {ratio:.2f} | | |"
        )
    statuses: Counter[int | str] = Counter()
    for case in cases:
        statuses.update(case.statuses)
    others = ", ".join(f"{case.others_cpus:.2f}" for case in cases)
    lines += [
        "",
        f"Web requests: {counts(statuses)}. CPUs used by other processes meanwhile, by size: "
        f"{others}.",
        "",
    ]
    return lines
