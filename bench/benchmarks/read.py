"""8. Reading PDFs: pages/s of Sheaf's sandboxed reader against raw pypdf `extract_text`, over the
corpus PDFs that both read."""

from __future__ import annotations

import json
import logging
import os
import statistics
import subprocess
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bench.harness import Bench
from bench.inputs import corpus_pdfs
from bench.measurement import tree_cpu_seconds
from bench.processes import PYTHON, log
from bench.report import verdict

READ_TARGET = 0.9  # Sheaf's reader over raw pypdf, pages per second


@dataclass
class ReadBench:
    files: list[Path]
    pages: int
    skipped: dict[str, str]  # corpus file -> why it is not counted
    raw: list[float]  # pages/s per round
    sheaf: list[float]
    raw_cpu_ms: float  # CPU per page (the fresh interpreter)
    sheaf_cpu_ms: float  # CPU per page (this process and the reader children)
    sheaf_parallel: float  # pages/s with the pool's size of reads at once
    processes: int

    @property
    def ratios(self) -> list[float]:
        """Sheaf over pypdf in each round: the two ran back to back, under the same load."""
        return [sheaf / raw for sheaf, raw in zip(self.sheaf, self.raw, strict=True)]

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios)


def raw_pypdf_pages(path: Path) -> list[str]:
    """What pypdf alone does: open, try the empty password, extract every page's text."""
    from pypdf import PdfReader

    reader = PdfReader(path)
    if reader.is_encrypted:
        reader.decrypt("")
    return [page.extract_text() for page in reader.pages]


# Raw pypdf in a fresh interpreter, like the reader's child (`python -I`, only pypdf imported):
# in the bench's own process Django's heap makes every garbage collection slower, which would
# handicap pypdf. One warm-up pass, then `passes` timed ones; prints seconds and CPU seconds.
RAW_PYPDF = """
import json, logging, resource, sys, time, warnings
from pypdf import PdfReader
logging.disable(logging.CRITICAL)
warnings.simplefilter("ignore")
paths, passes = json.loads(sys.argv[1]), int(sys.argv[2])
def read(path):
    reader = PdfReader(path)
    if reader.is_encrypted:
        reader.decrypt("")
    return [page.extract_text() for page in reader.pages]
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
for path in paths:
    read(path)
cpu_before, started = cpu(), time.perf_counter()
for _ in range(passes):
    for path in paths:
        read(path)
print(json.dumps({"seconds": time.perf_counter() - started, "cpu": cpu() - cpu_before}))
"""


def raw_pypdf_pass(files: list[Path], passes: int) -> tuple[float, float]:
    """(seconds, CPU seconds) of `passes` raw pypdf reads of every file, in a fresh interpreter."""
    out = subprocess.run(  # noqa: S603 (our own interpreter and script)
        [PYTHON, "-I", "-c", RAW_PYPDF, json.dumps([str(path) for path in files]), str(passes)],
        capture_output=True,
        text=True,
        check=True,
    )
    timing = json.loads(out.stdout.strip().splitlines()[-1])
    return timing["seconds"], timing["cpu"]


def sheaf_read(path: Path) -> int:
    from documents.readers import read_document

    return read_document(path, content_type="application/pdf", filename=path.name).page_count or 0


def measure(bench: Bench) -> ReadBench:
    """Every readable corpus PDF, `passes` times a round, raw pypdf and Sheaf's reader one
    after the other (alternating which goes first); pages/s per round, median of the rounds."""
    from documents import sandbox
    from extraction.contract import ExtractionError

    logging.getLogger("pypdf").setLevel(logging.CRITICAL)
    warnings.simplefilter("ignore")
    files, skipped, pages = [], {}, 0
    for path in corpus_pdfs(bench.args.corpus):
        corpus = bench.args.corpus
        name = str(path.relative_to(corpus)) if corpus else path.name
        try:
            texts = raw_pypdf_pages(path)
            if not any(text.strip() for text in texts):
                skipped[name] = "no text layer"
                continue
            sheaf_pages = sheaf_read(path)
        except ExtractionError as error:
            skipped[name] = f"Sheaf: {error.code}"
            continue
        except Exception as error:  # what pypdf raises for a closed or broken file
            skipped[name] = f"pypdf: {type(error).__name__}"
            continue
        if sheaf_pages != len(texts):
            skipped[name] = f"pages differ: pypdf {len(texts)}, Sheaf {sheaf_pages}"
            continue
        files.append(path)
        pages += len(texts)
    rounds, passes = bench.args.read_rounds, bench.args.read_passes
    log(
        f"read: {len(files)} readable corpus PDFs ({pages} pages), "
        f"{rounds} rounds of {passes} passes"
    )

    def timed_sheaf() -> tuple[float, float]:
        cpu = tree_cpu_seconds([os.getpid()])
        started = time.perf_counter()
        for _ in range(passes):
            for path in files:
                sheaf_read(path)
        elapsed = time.perf_counter() - started
        return elapsed, tree_cpu_seconds([os.getpid()]) - cpu

    def timed_raw() -> tuple[float, float]:
        return raw_pypdf_pass(files, passes)

    raw, sheaf, raw_cpu, sheaf_cpu = [], [], 0.0, 0.0
    for round_ in range(rounds):
        order = [("raw", timed_raw), ("sheaf", timed_sheaf)]
        for kind, timed in order if round_ % 2 == 0 else order[::-1]:
            elapsed, cpu = timed()
            rate = pages * passes / elapsed
            if kind == "raw":
                raw.append(rate)
                raw_cpu += cpu
            else:
                sheaf.append(rate)
                sheaf_cpu += cpu
        log(f"  round {round_ + 1}: pypdf {raw[-1]:.0f} pages/s, Sheaf {sheaf[-1]:.0f} pages/s")
    from django.conf import settings

    processes = min(os.cpu_count() or 1, settings.SHEAF_READER_PROCESSES)
    started = time.perf_counter()
    with ThreadPoolExecutor(processes) as pool:
        for _ in range(passes):
            list(pool.map(sheaf_read, files))
    parallel = pages * passes / (time.perf_counter() - started)
    sandbox.shutdown()
    total_pages = pages * passes * rounds
    return ReadBench(
        files=files,
        pages=pages,
        skipped=skipped,
        raw=raw,
        sheaf=sheaf,
        raw_cpu_ms=raw_cpu / total_pages * 1000,
        sheaf_cpu_ms=sheaf_cpu / total_pages * 1000,
        sheaf_parallel=parallel,
        processes=processes,
    )


def report(bench: Bench, result: ReadBench) -> list[str]:
    raw, sheaf = statistics.median(result.raw), statistics.median(result.sheaf)
    skipped = "; ".join(f"`{name}` ({why})" for name, why in sorted(result.skipped.items()))
    return [
        "### 8. Reading PDFs: Sheaf's reader against pypdf",
        "",
        f"The {len(result.files)} corpus PDFs that both read ({result.pages} pages); raw pypdf "
        '= `PdfReader(path)`, `decrypt("")` when encrypted, `extract_text()` of every page, in '
        "a fresh `python -I` that imports only pypdf, like the reader's child (in the bench's "
        "own process Django's heap slows pypdf's garbage collections), after one untimed pass; "
        "Sheaf = `documents.readers.read_document` (the sandboxed child "
        "pool of `documents/sandbox.py`, warm, one read at a time). Each round reads every "
        f"file {bench.args.read_passes} times with each, alternating which goes first; median "
        f"of {len(result.raw)} rounds, each round's rate in brackets; the result is the median "
        "of each round's Sheaf / pypdf, the two having run back to back. CPU per page: pypdf's "
        "interpreter; for Sheaf the bench's process and the reader's children; it does not "
        "depend on other load.",
        "",
        "| reader | pages/s | CPU per page | target | result |",
        "|---|---:|---:|---|---|",
        f"| raw pypdf `extract_text` | {raw:.0f} [{' '.join(f'{r:.0f}' for r in result.raw)}] "
        f"| {result.raw_cpu_ms:.2f} ms | | |",
        f"| Sheaf, one read at a time | {sheaf:.0f} "
        f"[{' '.join(f'{r:.0f}' for r in result.sheaf)}] | {result.sheaf_cpu_ms:.2f} ms "
        f"| >= {READ_TARGET:g} x pypdf "
        f"| {verdict(result.ratio >= READ_TARGET)} ({result.ratio:.2f} x "
        f"[{' '.join(f'{r:.2f}' for r in result.ratios)}]) |",
        f"| Sheaf, {result.processes} reads at once (the pool's size) "
        f"| {result.sheaf_parallel:.0f} | | | |",
        "",
        f"CPU per page, Sheaf / pypdf: {result.sheaf_cpu_ms / result.raw_cpu_ms:.2f}.",
        "",
        f"Not counted: {skipped or 'none'}.",
        "",
    ]
