"""Reading PDFs: pages/s of Sheaf's sandboxed reader (text and word boxes) against raw pypdfium2
producing the same output for the same pages, on seeded sample invoices and on the corpus PDFs
that both read. Standalone: no database, cluster or web server."""

from __future__ import annotations

import json
import logging
import os
import statistics
import subprocess
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bench.harness import Bench
from bench.inputs import corpus_pdfs
from bench.measurement import tree_cpu_seconds
from bench.processes import PYTHON, REPO, log
from bench.report import verdict
from samples.invoices import invoices

READ_TARGET = 0.8  # Sheaf's reader over raw pypdfium2 with the same output, pages per second
INVOICES = 24
PDF = "application/pdf"

# Raw pypdfium2 in a fresh interpreter, like the reader's child (`python -I`, only pypdfium2 and
# the word grouping imported): in the bench's own process Django's heap makes every garbage
# collection slower, which would handicap it. Per file: open it, and per page its text and
# words with boxes by `documents.layout.read_page` (the grouping both sides share is what "the
# same output" means), or with "text" only pdfium's text (`get_text_range`). With "check" it
# prints every page's (text, words) once; else one warm-up pass, then `passes` timed ones,
# printing seconds and CPU seconds.
RAW_PDFIUM = """
import json, resource, sys, time
sys.path.insert(0, sys.argv[4])
import pypdfium2 as pdfium
from documents.layout import read_page
paths, passes, mode = json.loads(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
def text_only(page):
    textpage = page.get_textpage()
    try:
        return textpage.get_text_range()
    finally:
        textpage.close()
def read(path):
    document = pdfium.PdfDocument(path)
    try:
        pages = []
        for index in range(len(document)):
            page = document[index]
            try:
                pages.append(text_only(page) if mode == "text" else read_page(page))
            finally:
                page.close()
        return pages
    finally:
        document.close()
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
if mode == "check":
    print(json.dumps([[[page.text, page.words] for page in read(path)] for path in paths]))
    sys.exit()
for path in paths:
    read(path)
cpu_before, started = cpu(), time.perf_counter()
for _ in range(passes):
    for path in paths:
        read(path)
print(json.dumps({"seconds": time.perf_counter() - started, "cpu": cpu() - cpu_before}))
"""


@dataclass
class ReadSet:
    name: str
    files: list[Path]
    pages: int
    words: int
    skipped: dict[str, str]  # file -> why it is not counted
    raw: list[float]  # pages/s per round: raw pypdfium2, text and word boxes
    sheaf: list[float]
    text_only: float  # pages/s: raw pypdfium2, text alone (no boxes), for reference
    raw_cpu_ms: float  # CPU per page (the fresh interpreter)
    sheaf_cpu_ms: float  # CPU per page (this process and the reader children)
    sheaf_parallel: float  # pages/s with the pool's size of reads at once
    processes: int

    @property
    def ratios(self) -> list[float]:
        """Sheaf over raw in each round: the two ran back to back, under the same load."""
        return [sheaf / raw for sheaf, raw in zip(self.sheaf, self.raw, strict=True)]

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios)


def raw_pdfium(files: list[Path], passes: int, mode: str) -> str:
    out = subprocess.run(  # noqa: S603 (our own interpreter and script)
        [
            PYTHON,
            "-I",
            "-c",
            RAW_PDFIUM,
            json.dumps([str(path) for path in files]),
            str(passes),
            mode,
            str(REPO),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip().splitlines()[-1]


def raw_pass(files: list[Path], passes: int, mode: str = "boxes") -> tuple[float, float]:
    """(seconds, CPU seconds) of `passes` raw reads of every file, in a fresh interpreter."""
    timing = json.loads(raw_pdfium(files, passes, mode))
    return timing["seconds"], timing["cpu"]


def sheaf_read(path: Path) -> int:
    from documents.readers import read_document

    return read_document(path, content_type=PDF, filename=path.name).page_count or 0


def _same_output(files: list[Path], skipped: dict[str, str], name_of: dict[Path, str]) -> None:
    """Leave out (into `skipped`) the files whose pages Sheaf and raw pypdfium2 read differently;
    page texts are compared as Sheaf keeps them (NULs out, form feeds as line breaks)."""
    from documents.readers import read_document

    raw = json.loads(raw_pdfium(files, 0, "check"))
    for path, raw_pages in zip(list(files), raw, strict=True):
        read = read_document(path, content_type=PDF, filename=path.name)
        ours = [(page.text, [list(word) for word in page.words]) for page in read.pages]
        theirs = [
            (text.replace("\r\n", "\n").replace("\x00", "").replace("\f", "\n"), words)
            for text, words in raw_pages
        ]
        if ours != theirs:
            skipped[name_of[path]] = "pages read differently"
            files.remove(path)


def measure_set(bench: Bench, name: str, paths: list[Path], root: Path | None) -> ReadSet:
    """Every file of `paths` that both read the same, `passes` times a round, raw and Sheaf one
    after the other (alternating which goes first); pages/s per round."""
    from documents import sandbox
    from extraction.contract import ExtractionError

    files: list[Path] = []
    skipped: dict[str, str] = {}
    name_of = {path: str(path.relative_to(root)) if root else path.name for path in paths}
    for path in paths:
        try:
            raw_pass([path], 0)
            sheaf_read(path)
        except ExtractionError as error:
            skipped[name_of[path]] = f"Sheaf: {error.code}"
            continue
        except subprocess.CalledProcessError as error:
            # The traceback's last line, without the exception's module path.
            last = error.stderr.strip().splitlines()[-1] if error.stderr.strip() else "failed"
            skipped[name_of[path]] = f"pypdfium2: {last.split(': ', 1)[-1][:120]}"
            continue
        files.append(path)
    _same_output(files, skipped, name_of)
    pages = words = 0
    from documents.readers import read_document

    for path in files:
        read = read_document(path, content_type=PDF, filename=path.name)
        pages += len(read.pages)
        words += sum(len(page.words) for page in read.pages)
    rounds, passes = bench.args.read_rounds, bench.args.read_passes
    log(f"read {name}: {len(files)} PDFs ({pages} pages), {rounds} rounds of {passes} passes")

    def timed_sheaf() -> tuple[float, float]:
        cpu = tree_cpu_seconds([os.getpid()])
        started = time.perf_counter()
        for _ in range(passes):
            for path in files:
                sheaf_read(path)
        elapsed = time.perf_counter() - started
        return elapsed, tree_cpu_seconds([os.getpid()]) - cpu

    def timed_raw() -> tuple[float, float]:
        return raw_pass(files, passes)

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
        log(f"  round {round_ + 1}: pypdfium2 {raw[-1]:.0f} pages/s, Sheaf {sheaf[-1]:.0f}")
    text_seconds, _ = raw_pass(files, passes, "text")
    from django.conf import settings

    processes = min(os.cpu_count() or 1, settings.SHEAF_READER_PROCESSES)
    with ThreadPoolExecutor(processes) as pool:
        list(pool.map(sheaf_read, files))  # every child of the pool started and warm
        started = time.perf_counter()
        for _ in range(passes):
            list(pool.map(sheaf_read, files))
        parallel = pages * passes / (time.perf_counter() - started)
    sandbox.shutdown()
    total_pages = pages * passes * rounds
    return ReadSet(
        name=name,
        files=files,
        pages=pages,
        words=words,
        skipped=skipped,
        raw=raw,
        sheaf=sheaf,
        text_only=pages * passes / text_seconds,
        raw_cpu_ms=raw_cpu / total_pages * 1000,
        sheaf_cpu_ms=sheaf_cpu / total_pages * 1000,
        sheaf_parallel=parallel,
        processes=processes,
    )


def measure(bench: Bench) -> list[ReadSet]:
    """The seeded sample invoices, then the corpus PDFs when the corpus is found."""
    logging.getLogger("pypdf").setLevel(logging.CRITICAL)
    warnings.simplefilter("ignore")
    folder = Path(tempfile.mkdtemp(prefix="invoices-", dir=bench.tmp))
    for sample in invoices(INVOICES, seed=1):
        (folder / sample.filename).write_bytes(sample.pdf)
    sets = [measure_set(bench, "invoices", sorted(folder.iterdir()), folder)]
    corpus = bench.args.corpus
    if corpus is not None:
        sets.append(measure_set(bench, "corpus", corpus_pdfs(corpus), corpus))
    return sets


def report(bench: Bench, result: list[ReadSet]) -> list[str]:
    described = {
        "invoices": f"{INVOICES} sample invoices (`samples.invoices.invoices({INVOICES}, seed=1)`, "
        "one page each, English, German, French, Dutch, Spanish and Italian)",
        "corpus": "the shared corpus's PDFs that both read the same",
    }
    lines = [
        "### Reading PDFs: Sheaf's reader against raw pypdfium2",
        "",
        "Raw pypdfium2 = per file `pypdfium2.PdfDocument(path)` and, per page, its text and its "
        "words with boxes by `documents.layout.read_page` (the grouping of pdfium's characters "
        "into words that Sheaf uses, so both give the same output, which the bench checks page by "
        "page before timing), in a fresh `python -I` that imports only pypdfium2 and that module, "
        "like the reader's child (in the bench's own process Django's heap slows the garbage "
        "collections), after one untimed pass. Sheaf = `documents.readers.read_document` (the "
        "sandboxed child pool of `documents/sandbox.py`, warm, one read at a time): pypdf's "
        "checks (structure, encryption, page count, content streams inflated under its limits), "
        "the same pdfium reading, the answer as JSON through the pipe, and the worker's "
        "`ReadResult` with every page and word. Each round reads every file "
        f"{bench.args.read_passes} times with each, alternating which goes first; median of "
        f"{bench.args.read_rounds} rounds, each round's rate in brackets; the result is the "
        "median of each round's Sheaf / raw, the two having run back to back. CPU per page: the "
        "raw interpreter's; for Sheaf this process's and the reader children's. For reference, "
        "raw pypdfium2's text alone (`get_text_range`, no boxes), one timed run.",
        "",
    ]
    for measured in result:
        raw, sheaf = statistics.median(measured.raw), statistics.median(measured.sheaf)
        skipped = "; ".join(f"`{name}` ({why})" for name, why in sorted(measured.skipped.items()))
        lines += [
            f"**{measured.name.capitalize()}**: {described[measured.name]}; "
            f"{len(measured.files)} files, {measured.pages} pages, {measured.words:,} words.",
            "",
            "| reader | pages/s | CPU per page | target | result |",
            "|---|---:|---:|---|---|",
            f"| raw pypdfium2, text alone | {measured.text_only:.0f} | | | |",
            f"| raw pypdfium2, text and word boxes | {raw:.0f} "
            f"[{' '.join(f'{r:.0f}' for r in measured.raw)}] | {measured.raw_cpu_ms:.2f} ms | | |",
            f"| Sheaf, one read at a time | {sheaf:.0f} "
            f"[{' '.join(f'{r:.0f}' for r in measured.sheaf)}] | {measured.sheaf_cpu_ms:.2f} ms "
            f"| >= {READ_TARGET:g} x raw "
            f"| {verdict(measured.ratio >= READ_TARGET)} ({measured.ratio:.2f} x "
            f"[{' '.join(f'{r:.2f}' for r in measured.ratios)}]) |",
            f"| Sheaf, {measured.processes} reads at once (the pool's size) "
            f"| {measured.sheaf_parallel:.0f} | | | |",
            "",
            f"CPU per page, Sheaf / raw: {measured.sheaf_cpu_ms / measured.raw_cpu_ms:.2f}. "
            f"Not counted: {skipped or 'none'}.",
            "",
        ]
    return lines
