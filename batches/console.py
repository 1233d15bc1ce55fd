"""What `manage.py batch` shows: rich tables, the live progress of a run, and the one-line
reports of the other actions.

Nothing here reads the database or changes anything: the command gathers what the services and
selectors return and hands it over, so the command reads as parse, call, show. Names, messages
and values go into tables as `Text`: rich would read a plain string as markup, and a file named
"invoice [draft].pdf" would show as "invoice .pdf".
"""

from __future__ import annotations

import io
import logging
import os
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, cast

from django.core.management.base import OutputWrapper
from django.template.defaultfilters import filesizeformat, pluralize
from django.utils import timezone
from rich.console import Console, Group
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from batches.exports import cell_status, cell_value
from batches.models import BatchProcess
from batches.pipeline import Claim
from batches.pipeline.budgets import dollars
from batches.runs import RunSummary, run_status
from batches.selectors import Outcome
from batches.selectors import Progress as BatchProgress
from batches.templatetags.batch_tags import status_counts
from batchsite.errors import Rejected
from documents.models import Document
from documents.uploads import KINDS

# A table written to a file or a pipe is laid out this wide, unless COLUMNS says otherwise (a
# terminal uses its own width).
PLAIN_WIDTH = 200
# Ids in tables are cut to this many characters, as git shortens hashes; every command takes
# such a prefix where it takes a batch id.
SHORT_ID = 8

INTERRUPTED = "Interrupted: the documents in flight were finished; the rest stay queued."


class _Stream(io.TextIOBase):
    """A command's output as rich writes it: as given (OutputWrapper would add line ends)."""

    def __init__(self, wrapper: OutputWrapper) -> None:
        self._wrapper = wrapper

    def write(self, text: str) -> int:
        self._wrapper.write(text, ending="")
        return len(text)

    def flush(self) -> None:
        self._wrapper.flush()

    def isatty(self) -> bool:
        return self._wrapper.isatty()


def rich_console(out: OutputWrapper) -> Console:
    """A rich console onto a command's output, as wide as the terminal, COLUMNS or
    PLAIN_WIDTH."""
    stream = cast(IO[str], _Stream(out))  # rich needs only write, flush and isatty
    sized = out.isatty() or os.environ.get("COLUMNS", "").isdigit()
    return Console(file=stream, width=None if sized else PLAIN_WIDTH)


def log_handler(console: Console) -> logging.Handler:
    """Log lines printed by `console`, so that they go above its progress bar, not into it."""
    return RichHandler(
        console=console,
        show_path=False,
        markup=False,
        log_time_format="[%X]",
        omit_repeated_times=False,
    )


def short(pk: uuid.UUID) -> str:
    return str(pk)[:SHORT_ID]


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {seconds:02d}s" if minutes else f"{seconds}s"


def documents(count: int) -> str:
    return f"{count} document{pluralize(count)}"


def _status(batch: BatchProcess) -> str:
    if batch.waits_for_start and batch.start_at is not None:
        return f"{batch.status} ({starts(batch.start_at)})"
    return batch.status + (f" ({batch.paused_reason})" if batch.paused_reason else "")


def starts(moment: datetime) -> str:
    """ "starts 2026-12-24 08:00 UTC": when a batch was told to start."""
    return f"starts {moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


# A batch's values per status and its documents' checks: the words of the batch page.
_OUTCOME_COLUMNS = {
    "Checked": ("values", "checked"),
    "Found": ("values", "found"),
    "Not found": ("values", "unverified"),
    "Invalid": ("values", "invalid"),
    "Missing": ("values", "missing"),
    "Reconciled": ("checks", "reconciled"),
    "Checks failed": ("checks", "failed"),
    "Not checked": ("checks", "not_checked"),
}


def outcome_table(batches: Sequence[tuple[BatchProcess, Outcome]]) -> Table:
    """The values of each batch's completed documents per status, and how many documents'
    checks reconciled, failed or could not run."""
    table = Table(title="Values (of completed documents) and checks")
    table.add_column("Batch", no_wrap=True)
    for column in _OUTCOME_COLUMNS:
        table.add_column(column, justify="right")
    for batch, outcome in batches:
        cells = [str(getattr(outcome, group)[key]) for group, key in _OUTCOME_COLUMNS.values()]
        table.add_row(short(batch.pk), *cells)
    return table


def outcome_in_words(outcome: Outcome) -> str:
    """ "Values: 30 checked, 8 found on the page, 3 not found in the text, 0 invalid, 5
    missing. Checks: 10 documents reconciled, 1 failed, 2 not checked." """
    values, checks = outcome.values, outcome.checks
    reconciled = checks["reconciled"]
    return (
        f"Values: {status_counts(values)}, {values['missing']:,} missing. "
        f"Checks: {reconciled} document{pluralize(reconciled)} reconciled, "
        f"{checks['failed']} failed, {checks['not_checked']} not checked."
    )


def refusal(rejection: Rejected) -> str:
    lines = "\n".join(f"  {p.code}: {p.message}" for p in rejection.problems)
    return f"Refused:\n{lines}"


# --- process ----------------------------------------------------------------------------------


@dataclass
class ProcessTally:
    """What a `process` run saw, filled in from the worker threads, and its live display at
    `verbosity` (Django's 0 to 3): nothing at 0, a progress bar from 1, and from 2 one line per
    outcome with a completed document's values."""

    console: Console
    total: int
    verbosity: int
    batch_ids: list[uuid.UUID] = field(default_factory=list)
    failed: list[Document] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    progress: Progress = field(init=False)
    task: Any = field(init=False)

    def __post_init__(self) -> None:
        self.progress = Progress(
            TextColumn("[bold]Processing"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("[green]{task.fields[completed_n]} completed[/]"),
            TextColumn("[red]{task.fields[failed_n]} failed[/]"),
            TimeElapsedColumn(),
            console=self.console,
            disable=self.verbosity < 1,
        )
        self.task = self.progress.add_task("process", total=self.total, completed_n=0, failed_n=0)

    def outcome(self, claim: Claim, status: str, document: Document | None) -> None:
        """Count one claim's outcome (`document` is None when it was deleted meanwhile)."""
        with self.lock:
            self.counts[status] = self.counts.get(status, 0) + 1
            if claim.batch_id not in self.batch_ids:
                self.batch_ids.append(claim.batch_id)
            if status == Document.Status.FAILED and document is not None:
                self.failed.append(document)
            finished = sum(n for s, n in self.counts.items() if s != Document.Status.QUEUED)
            self.total = max(self.total, finished)
        if status != Document.Status.QUEUED:  # a requeued retry is not done yet
            self.progress.update(
                self.task,
                advance=1,
                total=self.total,
                completed_n=self.counts.get(Document.Status.COMPLETED, 0),
                failed_n=self.counts.get(Document.Status.FAILED, 0),
            )
        if self.verbosity >= 2 and document is not None:
            # One print, so that another thread's outcome cannot come between the two.
            shown: list[Text | Table] = [_outcome_line(claim, status, document)]
            if status == Document.Status.COMPLETED:
                shown.append(values_table(document.result))
            self.console.print(*shown)


_OUTCOME_STYLES: dict[str, tuple[str, str]] = {
    Document.Status.COMPLETED: ("completed", "green"),
    Document.Status.FAILED: ("failed", "red"),
    Document.Status.QUEUED: ("retry", "yellow"),
}


def _outcome_line(claim: Claim, status: str, document: Document) -> Text:
    """ "failed    invoice.pdf (1a2b3c4d): encrypted: invoice.pdf is a password-protected
    PDF…", a file's name and message as they are (Text, not markup: a name may hold [])."""
    word, style = _OUTCOME_STYLES.get(status, (status, ""))
    line = Text.assemble((f"{word:<9}", style), f" {document.original_filename}")
    line.append(f" ({short(document.pk)})", style="dim")
    if status in (Document.Status.FAILED, Document.Status.QUEUED):
        line.append(f": {document.error_code}", style="bold")
        line.append(f": {document.error_message}")
    if status == Document.Status.QUEUED:
        due = duration(
            None
            if document.next_attempt_at is None
            else (document.next_attempt_at - timezone.now()).total_seconds()
        )
        line.append(f" (attempt {claim.attempts}; next in {due})")
    return line


def _shown(value: Any) -> str:
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, list):  # a table field's rows
        return f"{len(value)} row{pluralize(len(value))}"
    return str(value)


def values_table(result: dict[str, Any] | None) -> Table:
    """A result's values, one field a line, indented under its document's outcome line: the
    value (a review's when there is one) and its status."""
    fields = (result or {}).get("fields") or {}
    table = Table(box=None, show_header=False, padding=(0, 1), pad_edge=False)
    table.add_column("Field", style="dim", overflow="fold", max_width=30)
    table.add_column("Value", overflow="fold")
    table.add_column("Status", no_wrap=True, style="dim")
    for name, entry in fields.items():
        table.add_row(Text(f"  {name}"), Text(_shown(cell_value(entry))), cell_status(entry))
    return table


def print_dry_run(
    console: Console, chosen: Sequence[Document], *, waiting: int, now: datetime
) -> None:
    """The documents a run would take (`chosen`, their batches selected), of `waiting`."""
    table = Table(title="Would process (dry run: nothing was changed)")
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("Batch", no_wrap=True)
    table.add_column("Name", overflow="fold")
    table.add_column("Document", no_wrap=True)
    table.add_column("File", overflow="fold")
    table.add_column("Attempts", justify="right", no_wrap=True)
    table.add_column("Due", no_wrap=True)
    for number, document in enumerate(chosen, start=1):
        due_at = document.next_attempt_at or now  # a waiting document always has one
        wait = (due_at - now).total_seconds()
        table.add_row(
            str(number),
            short(document.batch_id),
            Text(document.batch.name),
            short(document.pk),
            Text(document.original_filename),
            str(document.attempts),
            "now" if wait <= 0 else f"in {duration(wait)}",
        )
    console.print(table)
    more = f" of {waiting} waiting" if len(chosen) < waiting else ""
    console.print(f"{documents(len(chosen))} would be processed{more}.", highlight=False)


def print_process_summary(
    console: Console,
    tally: ProcessTally,
    batches: Sequence[tuple[BatchProcess, BatchProgress, Outcome]],
    *,
    seconds: float,
) -> None:
    """The end of a run: where its batches stand now (documents, values per status, checks),
    the documents that failed, the counts."""
    table = Table(title="Batches")
    table.add_column("Batch", no_wrap=True)
    table.add_column("Name", overflow="fold")
    table.add_column("Status", overflow="fold")
    for column in ("Completed", "Failed", "Remaining"):
        table.add_column(column, justify="right", no_wrap=True)
    for batch, progress, _ in batches:
        table.add_row(
            short(batch.pk),
            Text(batch.name),
            _status(batch),
            str(progress.completed),
            str(progress.failed),
            str(progress.queued + progress.processing),
        )
    console.print(table)
    if batches:
        console.print(outcome_table([(batch, outcome) for batch, _, outcome in batches]))
    if tally.failed:
        console.print(failures_table(tally.failed))
    counts = ", ".join(f"{n} {status}" for status, n in sorted(tally.counts.items()))
    console.print(
        f"Done in {duration(seconds)}: {counts or 'nothing to process'}.", highlight=False
    )


def failures_table(failed: Sequence[Document]) -> Table:
    """Failed documents: short ids, and the error's code and message, whole, however long the
    file's name (names and messages wrap; the code does not)."""
    table = Table(title="Failed documents")
    table.add_column("Document", no_wrap=True)
    table.add_column("Batch", no_wrap=True)
    table.add_column("File", overflow="fold")
    table.add_column("Error code", no_wrap=True)
    table.add_column("Message", overflow="fold")
    for document in failed:
        table.add_row(
            short(document.pk),
            short(document.batch_id),
            Text(document.original_filename),
            document.error_code,
            Text(document.error_message),
        )
    return table


def economy_lane_note(deferred: int) -> str:
    # The economy lane sends documents in provider message batches that a sweep submits and
    # collects later; that is the cluster's work, not this run's.
    return (
        f"{documents(deferred)} went to the economy lane: a running worker cluster "
        "(manage.py qcluster) submits them and collects their results, within 24 hours."
    )


def failed_note(failed: int) -> str:
    return f"{documents(failed)} failed."


# --- monitor ----------------------------------------------------------------------------------


def monitor_view(
    running: Sequence[tuple[BatchProcess, BatchProgress, Outcome]], *, now: datetime
) -> Group | Table:
    """The running batches' progress, then their values and checks so far."""
    progress = monitor_table([(batch, each) for batch, each, _ in running], now=now)
    if not running:
        return progress
    return Group(progress, outcome_table([(batch, outcome) for batch, _, outcome in running]))


def monitor_table(running: Sequence[tuple[BatchProcess, BatchProgress]], *, now: datetime) -> Table:
    """The running batches (their owners selected) and their progress at `now`."""
    table = Table(title=f"Running batches at {now:%Y-%m-%d %H:%M:%S} UTC")
    # Two lines a batch (its status under its id, its owner under its name, its rate under its
    # ETA) so that the table fits a terminal of 100 columns; names, emails and statuses wrap.
    table.add_column("Batch", overflow="fold", min_width=SHORT_ID)
    table.add_column("Name, owner", overflow="fold")
    for column in ("Queued", "Running", "Completed", "Failed", "Done"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("ETA, rate", justify="right", no_wrap=True)
    for batch, progress in running:
        rate = progress.per_minute
        table.add_row(
            Text.assemble(short(batch.pk), "\n", (_status(batch), "dim")),
            Text.assemble(batch.name, "\n", (batch.user.email, "dim")),
            str(progress.queued),
            str(progress.processing),
            str(progress.completed),
            str(progress.failed),
            f"{progress.percent}%",
            Text.assemble(
                duration(progress.eta_seconds),
                "\n",
                ("—" if rate is None else f"{rate:.1f}/min", "dim"),
            ),
        )
    if not running:
        table.caption = "No batch is running."
    return table


# --- report, retry, cancel, create ------------------------------------------------------------


def runs_table(summaries: Sequence[RunSummary]) -> Table:
    """A batch's runs: which is current, what each asked, sent and cost, what it changed and
    how it scores against the reviewed values."""
    table = Table(title="Runs")
    table.add_column("Run", justify="right")
    table.add_column("Status")
    table.add_column("Documents", justify="right")
    table.add_column("Cost (USD)", justify="right")
    table.add_column("Changes against the run before")
    table.add_column("Score")
    table.add_column("Fields", overflow="fold")
    for summary in summaries:
        run = summary.run
        state = run_status(run) + (", current" if summary.current else "")
        state += ", trial" if run.trial else ""
        changes = (
            ", ".join(f"{n} {change}" for change, n in summary.changes.items())
            if summary.changes is not None
            else "-"
        )
        score = summary.score.rate if summary.score is not None else None
        fields = ", ".join(spec["name"] for spec in run.fields)
        if run.asked:
            fields += f" (asked: {', '.join(run.asked)})"
        table.add_row(
            str(run.number),
            state,
            str(summary.documents),
            f"{summary.cost_usd:.4f}",
            changes,
            f"{score:.0%}" if score is not None else "-",
            Text(fields),
        )
    return table


def run_started(batch: BatchProcess, *, number: int, count: int, asked: Sequence[str]) -> str:
    only = f", asking only {', '.join(asked)}" if asked else ""
    return (
        f"Batch {batch.pk} ({batch.name}): run {number} started on "
        f"{documents(count)}{only}; it becomes current when it finishes."
    )


def run_kept(batch: BatchProcess, *, number: int) -> str:
    return f"Batch {batch.pk} ({batch.name}): run {number} is current again."


def report_written(output: str, *, fmt: str, size: int, document_count: int) -> str:
    return f"Wrote {output} ({fmt}, {filesizeformat(size)}, {documents(document_count)})."


def batch_retried(batch: BatchProcess, *, count: int, before: str) -> str:
    return (
        f"Batch {batch.pk} ({batch.name}): {count} failed document{pluralize(count)} "
        f"queued again; status {before} -> {batch.status}."
    )


def batch_canceled(batch: BatchProcess, *, before: BatchProgress, after: BatchProgress) -> str:
    return (
        f"Batch {batch.pk} ({batch.name}): canceled; "
        f"{documents(after.canceled - before.canceled)} canceled before processing, "
        f"{after.processing} in flight will finish."
    )


def batch_created(batch: BatchProcess, *, owner_email: str) -> str:
    scheduled = f"; {starts(batch.start_at)}" if batch.start_at else ""
    budget = f", budget {dollars(batch.budget_usd)}" if batch.budget_usd is not None else ""
    return (
        f"Batch “{batch.name}” queued for {owner_email}: {documents(batch.total_documents)}, "
        f"engine {batch.engine}{budget}{scheduled}."
    )


def batch_budget(batch: BatchProcess) -> str:
    budget = "no budget" if batch.budget_usd is None else f"budget {dollars(batch.budget_usd)}"
    if batch.budget_paused_at:
        state = f"still paused ({batch.paused_reason})"
    else:
        state = f"status {batch.status}" if batch.is_terminal else "dispatching"
    return f"Batch {batch.pk} ({batch.name}): {budget}; {state}."


def left_out_note(folder: Path, count: int) -> str:
    return (
        f"{folder}: left out {count} file{pluralize(count)} that are hidden or not "
        + "/".join(f".{ext}" for ext in KINDS)
        + "."
    )
