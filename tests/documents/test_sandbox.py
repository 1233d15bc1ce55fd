"""The reader sandbox: hostile files fail one call, the calling process and the pool carry on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from documents import sandbox
from documents.formats import Text
from documents.sandbox import Limits, SandboxError
from tests.conftest import REPO
from tests.support.documents import report_lines, text_pdf
from tests.support.pdfs import cpu_burner, decompression_bomb
from tests.support.processes import live_processes
from tests.support.spreadsheets import labelled_values

LIMITS = Limits(cpu_seconds=30, memory_mb=1024, wall_seconds=60)
FIRST_LINE = "Lorem ipsum dolor sit amet, consectetur adipiscing elit."
RECYCLE_MB = 512


def read_pdf(path: str, limits: Limits, *, max_chars: int = 400_000) -> Text:
    arguments = {"path": path, "format": "pdf", "max_pages": 2000, "max_chars": max_chars}
    return Text(**sandbox.run("read", arguments, limits, processes=2, recycle_mb=RECYCLE_MB))


@pytest.fixture(autouse=True, scope="module")
def _fresh_pool() -> Iterator[None]:
    sandbox.shutdown()
    yield
    sandbox.shutdown()


@pytest.fixture(scope="module")
def readable(tmp_path_factory: pytest.TempPathFactory) -> dict[int, str]:
    """Paths of text PDFs by their number of pages; the one-page PDF starts with FIRST_LINE."""
    folder = tmp_path_factory.mktemp("pdfs")
    paths = {}
    for pages in (1, 2, 3, 4):
        lines = report_lines(pages)
        if pages == 1:
            lines[0].insert(0, FIRST_LINE)
        paths[pages] = write(folder, f"{pages}-pages.pdf", text_pdf(*lines))
    return paths


def write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


# ---- observing the children -------------------------------------------------------------------


def sandbox_children(parent: int) -> set[int]:
    """Live (not zombie) sandbox processes whose parent is `parent`."""
    return {
        process.pid
        for process in live_processes()
        if process.parent == parent and b"documents/sandbox.py" in process.cmdline
    }


@pytest.fixture
def read_minimal(readable: dict[int, str]) -> Callable[[], str]:
    return lambda: read_pdf(readable[1], LIMITS).text


@pytest.fixture
def assert_pool_still_serves(read_minimal: Callable[[], str]) -> Callable[[], None]:
    def check() -> None:
        assert read_minimal().startswith(FIRST_LINE)
        assert len(sandbox_children(os.getpid())) <= 2

    return check


# ---- tests ------------------------------------------------------------------------------------


def test_children_are_reused_between_reads(read_minimal: Callable[[], str]) -> None:
    read_minimal()
    before = sandbox_children(os.getpid())
    for _ in range(5):
        read_minimal()
    assert sandbox_children(os.getpid()) == before
    assert 1 <= len(before) <= 2


def test_a_decompression_bomb_stops_at_the_stream_limit(
    tmp_path: Path, assert_pool_still_serves: Callable[[], None]
) -> None:
    path = write(tmp_path, "bomb.pdf", decompression_bomb())
    started = time.monotonic()
    with pytest.raises(SandboxError) as caught:
        read_pdf(path, LIMITS)
    assert caught.value.code == "too_large"
    assert caught.value.reason.startswith("page 1 goes past a safety limit of the PDF reader")
    assert time.monotonic() - started < 10
    assert_pool_still_serves()


def test_a_decompression_bomb_under_a_small_memory_limit_hits_the_limit(
    tmp_path: Path, assert_pool_still_serves: Callable[[], None]
) -> None:
    path = write(tmp_path, "bomb.pdf", decompression_bomb())
    limits = Limits(30, memory_mb=100, wall_seconds=60)
    with pytest.raises(SandboxError) as caught:
        read_pdf(path, limits)
    assert (caught.value.code, caught.value.reason) == (
        "too_large",
        "reading it needs more than 100 MB of memory",
    )
    assert_pool_still_serves()


def test_a_pdf_that_burns_cpu_is_killed_at_the_cpu_limit(
    tmp_path: Path, read_minimal: Callable[[], str], assert_pool_still_serves: Callable[[], None]
) -> None:
    path = write(tmp_path, "burner.pdf", cpu_burner())
    limits = Limits(cpu_seconds=1, memory_mb=1024, wall_seconds=60)
    read_minimal()
    before = sandbox_children(os.getpid())
    with pytest.raises(SandboxError) as caught:
        read_pdf(path, limits, max_chars=10)
    assert (caught.value.code, caught.value.reason) == (
        "timeout",
        "it needs more than 1 s of CPU time",
    )
    assert_pool_still_serves()
    assert before - sandbox_children(os.getpid()), "the killed child was not replaced"


def test_a_read_past_the_wall_clock_is_killed(
    tmp_path: Path, assert_pool_still_serves: Callable[[], None]
) -> None:
    path = write(tmp_path, "burner.pdf", cpu_burner())
    limits = Limits(30, memory_mb=1024, wall_seconds=0.5)
    started = time.monotonic()
    with pytest.raises(SandboxError) as caught:
        read_pdf(path, limits, max_chars=10)
    assert (caught.value.code, caught.value.reason) == ("timeout", "it took more than 0.5 s")
    # Killed at the wall clock, long before its 30 s of CPU (a loose bound: machines get busy).
    assert time.monotonic() - started < 15
    assert_pool_still_serves()


def test_an_idle_child_killed_from_outside_fails_no_read(
    read_minimal: Callable[[], str], assert_pool_still_serves: Callable[[], None]
) -> None:
    read_minimal()
    killed = sandbox_children(os.getpid())
    for pid in killed:
        os.kill(pid, signal.SIGKILL)
    for pid in killed:
        while _alive(pid):
            time.sleep(0.01)
    assert_pool_still_serves()
    assert not killed & sandbox_children(os.getpid())


def test_eight_threads_reading_at_once_get_their_own_pages(readable: dict[int, str]) -> None:
    jobs = [(pages, path) for pages, path in readable.items() for _ in range(6)]

    def pages_of(path: str) -> int:
        return read_pdf(path, LIMITS).page_count

    with ThreadPoolExecutor(max_workers=8) as threads:
        results = list(threads.map(pages_of, [path for _, path in jobs]))
    assert results == [pages for pages, _ in jobs]
    assert len(sandbox_children(os.getpid())) <= 2


def test_a_missing_file_is_an_os_error_not_a_pdf_error(
    tmp_path: Path, assert_pool_still_serves: Callable[[], None]
) -> None:
    with pytest.raises(FileNotFoundError):
        read_pdf(str(tmp_path / "gone.pdf"), LIMITS)
    assert_pool_still_serves()


def test_shutdown_stops_every_child(read_minimal: Callable[[], str]) -> None:
    read_minimal()
    assert sandbox_children(os.getpid())
    sandbox.shutdown()
    assert not sandbox_children(os.getpid())
    assert read_minimal().strip()


def test_children_exit_when_their_parent_is_killed(readable: dict[int, str]) -> None:
    script = (
        "import sys, time\n"
        "from documents import sandbox as s\n"
        "arguments = {'path': sys.argv[1], 'format': 'pdf', 'max_pages': 9, 'max_chars': 99}\n"
        "s.run('read', arguments, s.Limits(30, 1024, 60), processes=2, recycle_mb=512)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen(  # noqa: S603 (this interpreter, a fixed script)
        [sys.executable, "-c", script, readable[1]],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None and parent.stdout.readline() == "ready\n"
        children = sandbox_children(parent.pid)
        assert children
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_alive(pid) for pid in children):
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in children)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_child_past_the_recycle_limit_after_a_call_is_replaced(
    tmp_path: Path, assert_pool_still_serves: Callable[[], None]
) -> None:
    path = write(tmp_path, "invoice.pdf", text_pdf(["Invoice number: INV-17"]))
    arguments = {"path": path, "format": "pdf", "max_pages": 9, "max_chars": 1000}
    sandbox.run("read", arguments, LIMITS, processes=2, recycle_mb=RECYCLE_MB)
    before = sandbox_children(os.getpid())
    # Every child holds more than 32 MB: this one answers, then exits.
    text = sandbox.run("read", arguments, LIMITS, processes=2, recycle_mb=32)["text"]
    assert text.startswith("Invoice number: INV-17")
    assert len(before - sandbox_children(os.getpid())) == 1
    assert_pool_still_serves()


def test_an_unknown_operation_is_refused_before_any_child_starts() -> None:
    with pytest.raises(ValueError, match="'transcribe' is not a sandbox operation"):
        sandbox.run("transcribe", {}, LIMITS, processes=2, recycle_mb=RECYCLE_MB)


def test_a_failing_operation_is_a_bug_not_a_bad_file(
    tmp_path: Path, assert_pool_still_serves: Callable[[], None]
) -> None:
    arguments = {"path": write(tmp_path, "a.txt", b"x"), "format": "docx", "max_chars": 10}
    with pytest.raises(RuntimeError) as caught:
        sandbox.run("read", arguments, LIMITS, processes=2, recycle_mb=RECYCLE_MB)
    assert str(caught.value) == (
        "the sandbox's 'read' operation failed: ValueError: no reader for the format 'docx'"
    )
    assert_pool_still_serves()


def test_answers_orjson_cannot_write_still_cross_exactly() -> None:
    # An integer past 64 bits (an engine's number) and an unpaired surrogate (a broken font
    # map) go through the json module: the integer whole, the surrogate replaced.
    value = {"total": 2**70, "text": "a\ud800b", "pages": [1.5]}

    line = sandbox.json_bytes(value)

    assert line.startswith(b"J")
    assert sandbox.from_json_bytes(line) == {"total": 2**70, "text": "a?b", "pages": [1.5]}
    assert sandbox.from_json_bytes(sandbox.json_bytes({"pages": [1.5]})) == {"pages": [1.5]}


def resident_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def test_a_child_that_reads_only_text_files_never_loads_the_pdf_and_workbook_libraries(
    tmp_path: Path, readable: dict[int, str]
) -> None:
    sandbox.shutdown()  # one child, fresh, for this test
    txt = write(tmp_path, "notes.txt", b"Invoice number: INV-17\nTotal: 12.50\n")
    csv = write(tmp_path, "items.csv", b"description,amount\nWidget,10.00\n")
    for path, kind in ((txt, "txt"), (csv, "csv")):
        arguments = {"path": path, "format": kind, "max_chars": 1000}
        assert sandbox.run("read", arguments, LIMITS, processes=1, recycle_mb=RECYCLE_MB)["text"]
    [child] = sandbox_children(os.getpid())
    text_only = resident_mb(child)

    workbook = write(tmp_path, "sheet.xlsx", labelled_values(("Total", "12.50")))
    arguments = {
        "path": workbook,
        "format": "xlsx",
        "max_chars": 1000,
        "xlsx_max_unpacked_mb": 50,
        "xlsx_max_shared_strings": 1000,
        "xlsx_max_cells": 1000,
    }
    assert "Total: 12.50" in sandbox.run("read", arguments, LIMITS, processes=1)["text"]
    assert read_pdf(readable[1], LIMITS).text.startswith(FIRST_LINE)

    assert sandbox_children(os.getpid()) == {child}  # the same child read all four
    # pypdf, pdfium and openpyxl are some 40 MB resident, loaded only for the files that need them.
    assert resident_mb(child) > text_only + 25
    sandbox.shutdown()
