"""`manage.py batch …`: the operator's terminal onto batches.

Every subcommand goes through the services and selectors the dashboard and the workers use
(`batch_create` with the plan limits, `batch_retry_failed`, `batch_cancel`, `batch_export`,
`batch_progress`, and the drain's thread loop in `batches.pipeline.runner`); this module parses
arguments and renders.
"""

from __future__ import annotations

import io
import threading
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files import File
from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper
from django.template.defaultfilters import filesizeformat, pluralize
from django.utils import timezone
from rich.console import Console
from rich.live import Live
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from accounts.selectors import user_get_by_email
from batches import exports, pipeline, selectors, services
from batches.exports import EXPORT_FORMATS
from batches.models import BatchProcess
from batches.pipeline import Claim
from batches.pipeline.runner import Run
from batchsite.errors import Rejected
from documents.models import Document
from documents.uploads import KINDS
from extraction.fields import InvalidFields, parse_fields

# A table written to a file or a pipe is laid out this wide (a terminal uses its own width).
PLAIN_WIDTH = 200
EXIT_INTERRUPTED = 130


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


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(value)
    return number


def _non_negative(value: str) -> int:
    number = int(value)
    if number < 0:
        raise ValueError(value)
    return number


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {seconds:02d}s" if minutes else f"{seconds}s"


def _documents(count: int) -> str:
    return f"{count} document{pluralize(count)}"


@dataclass
class _Tally:
    """What a `process` run saw, filled in from the worker threads."""

    verbose: bool
    console: Console
    progress: Progress
    task: Any
    total: int
    batch_ids: list[uuid.UUID] = field(default_factory=list)
    failed: list[Document] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def outcome(self, claim: Claim, status: str) -> None:
        document = selectors.document_get(document_id=claim.document_id)
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
        if self.verbose and document is not None:
            self.console.print(self._line(claim, status, document), highlight=False)

    @staticmethod
    def _line(claim: Claim, status: str, document: Document) -> str:
        name = f"{document.original_filename} ({document.pk})"
        if status == Document.Status.COMPLETED:
            return f"[green]completed[/] {name}"
        if status == Document.Status.FAILED:
            return f"[red]failed[/]    {name}: {document.error_code}: {document.error_message}"
        if status == Document.Status.QUEUED:
            due = _duration((document.next_attempt_at - timezone.now()).total_seconds())
            return (
                f"[yellow]retry[/]     {name}: {document.error_code}: {document.error_message} "
                f"(attempt {claim.attempts}; next in {due})"
            )
        return f"{status:<9} {name}"


class Command(BaseCommand):
    help = "Process, report, monitor, retry, cancel and create batches from a terminal."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

        process = actions.add_parser(
            "process",
            help="Process queued documents in the foreground, without the worker cluster.",
            description="Claim, read and extract queued documents here, through the same "
            "services as the workers. Exit status 1 when a document failed.",
        )
        scope = process.add_mutually_exclusive_group()
        scope.add_argument("--batch", metavar="ID", help="Only this batch's documents.")
        scope.add_argument(
            "--all", action="store_true", help="Every batch's documents (the default)."
        )
        process.add_argument(
            "--limit", type=_positive, metavar="N", help="Process at most N documents."
        )
        process.add_argument(
            "--parallel",
            type=_positive,
            metavar="N",
            help="Documents in flight at once (default: SHEAF_CONCURRENCY).",
        )
        process.add_argument(
            "--retries",
            type=_non_negative,
            metavar="N",
            help="Retry a transient failure up to N times in all: at most N + 1 attempts per "
            "document (attempts of earlier runs count), instead of SHEAF_MAX_ATTEMPTS.",
        )
        process.add_argument(
            "--dry-run", action="store_true", help="List what would be processed; change nothing."
        )
        process.add_argument(
            "-v", "--verbose", action="store_true", help="Print each document's outcome."
        )

        report = actions.add_parser(
            "report", help="A batch's results as CSV, JSON, Markdown or XLSX."
        )
        report.add_argument("batch", metavar="ID")
        report.add_argument(
            "--format",
            dest="fmt",
            choices=EXPORT_FORMATS,
            help="Default: from the -o file's extension, else json. xlsx needs -o.",
        )
        report.add_argument("-o", "--output", metavar="FILE", help="Write here, not to stdout.")

        monitor = actions.add_parser("monitor", help="A live table of the running batches.")
        monitor.add_argument(
            "--interval", type=float, default=2.0, help="Seconds between refreshes (2)."
        )
        monitor.add_argument("--once", action="store_true", help="Print the table once and exit.")

        retry = actions.add_parser("retry", help="Queue a batch's failed documents again.")
        retry.add_argument("batch", metavar="ID")
        cancel = actions.add_parser("cancel", help="Cancel a running batch.")
        cancel.add_argument("batch", metavar="ID")

        create = actions.add_parser(
            "create",
            help="Create a batch for a user from files and folders.",
            description="Folders are walked for "
            + ", ".join(f".{ext}" for ext in KINDS)
            + " files. Every limit of the user's plan applies, as on the upload form.",
        )
        create.add_argument("--user", required=True, metavar="EMAIL")
        create.add_argument("--prompt", required=True, help="What to extract.")
        create.add_argument(
            "--fields",
            default="",
            help='Field list, e.g. "invoice number, date:date, total:number" (one per line, or '
            "comma-separated; name[:type][ -- description]). Default: taken from the prompt.",
        )
        create.add_argument("--name", default="", help="Default: from the first file's name.")
        create.add_argument("--description", default="")
        create.add_argument("--mode", default=BatchProcess.Mode.STANDARD, help="standard|economy")
        create.add_argument("paths", nargs="+", metavar="PATH")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        getattr(self, f"_{action}")(**options)

    # --- helpers ----------------------------------------------------------------------------

    def _console(self) -> Console:
        tty = self.stdout.isatty()
        return Console(file=_Stream(self.stdout), width=None if tty else PLAIN_WIDTH)

    def _batch(self, value: str) -> BatchProcess:
        try:
            batch_id = uuid.UUID(value)
        except ValueError:
            raise CommandError(f"{value!r} is not a batch id (a batch id is a UUID).") from None
        batch = selectors.batch_get(batch_id=batch_id)
        if batch is None:
            raise CommandError(f"No batch with id {batch_id}.")
        return batch

    @staticmethod
    def _refusal(rejection: Rejected) -> CommandError:
        lines = "\n".join(f"  {p.code}: {p.message}" for p in rejection.problems)
        return CommandError(f"Refused:\n{lines}")

    # --- process ----------------------------------------------------------------------------

    def _process(
        self,
        *,
        batch: str | None,
        limit: int | None,
        parallel: int | None,
        retries: int | None,
        dry_run: bool,
        verbose: bool,
        verbosity: int,
        **_: Any,
    ) -> None:
        target = self._batch(batch) if batch else None
        batch_id = target.pk if target else None
        console = self._console()
        if dry_run:
            self._process_dry_run(console, batch_id=batch_id, limit=limit)
            return
        pipeline.sweep()  # as every drain starts: expired leases back to the queue
        waiting = selectors.documents_waiting(batch_id=batch_id).count()
        total = min(waiting, limit) if limit else waiting
        progress = Progress(
            TextColumn("[bold]Processing"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("[green]{task.fields[completed_n]} completed[/] "),
            TextColumn("[red]{task.fields[failed_n]} failed[/]"),
            TimeElapsedColumn(),
            console=console,
        )
        task = progress.add_task("process", total=total, completed_n=0, failed_n=0)
        tally = _Tally(
            verbose=verbose or verbosity >= 2,
            console=console,
            progress=progress,
            task=task,
            total=total,
            batch_ids=[batch_id] if batch_id else [],
        )
        run = Run(
            threads=parallel or settings.SHEAF_CONCURRENCY,
            batch_id=batch_id,
            limit=limit,
            max_attempts=None if retries is None else retries + 1,
            on_outcome=tally.outcome,
        )
        started = time.monotonic()
        interrupted = False
        with progress:
            try:
                run.run()
            except KeyboardInterrupt:
                interrupted = True
        self._process_summary(console, tally, seconds=time.monotonic() - started)
        deferred = tally.counts.get("deferred", 0)
        if deferred:
            # The economy lane sends documents in provider message batches that a sweep
            # submits and collects later; that is the cluster's work, not this run's.
            self.stderr.write(
                f"{_documents(deferred)} went to the economy lane: a running worker cluster "
                "(manage.py qcluster) submits them and collects their results, within 24 hours."
            )
        if interrupted:
            self.stderr.write(
                "Interrupted: the documents in flight were finished; the rest stay queued."
            )
            raise SystemExit(EXIT_INTERRUPTED)
        if tally.failed:
            self.stderr.write(f"{_documents(len(tally.failed))} failed.")
            raise SystemExit(1)

    def _process_dry_run(
        self, console: Console, *, batch_id: uuid.UUID | None, limit: int | None
    ) -> None:
        waiting = selectors.documents_waiting(batch_id=batch_id)
        count = waiting.count()
        chosen = list(waiting.select_related("batch").defer("text", "result")[:limit])
        now = timezone.now()
        table = Table(title="Would process (dry run: nothing was changed)")
        for column in ("#", "Batch", "Document", "Attempts", "Due"):
            table.add_column(column, no_wrap=True)
        for number, document in enumerate(chosen, start=1):
            wait = (document.next_attempt_at - now).total_seconds()
            table.add_row(
                str(number),
                f"{document.batch.name} ({document.batch_id})",
                f"{document.original_filename} ({document.pk})",
                str(document.attempts),
                "now" if wait <= 0 else f"in {_duration(wait)}",
            )
        console.print(table)
        more = f" of {count} waiting" if len(chosen) < count else ""
        console.print(f"{_documents(len(chosen))} would be processed{more}.", highlight=False)

    def _process_summary(self, console: Console, tally: _Tally, *, seconds: float) -> None:
        table = Table(title="Batches")
        table.add_column("Batch", no_wrap=True)
        for column in ("Name", "Status", "Completed", "Failed", "Remaining"):
            table.add_column(column, justify="right" if column[0] in "CFR" else "left")
        for batch_id in tally.batch_ids:
            batch = selectors.batch_get(batch_id=batch_id)
            if batch is None:
                continue  # deleted meanwhile
            progress = selectors.batch_progress(batch=batch)
            status = batch.status + (f" ({batch.paused_reason})" if batch.paused_reason else "")
            table.add_row(
                str(batch.pk),
                batch.name,
                status,
                str(progress.completed),
                str(progress.failed),
                str(progress.queued + progress.processing),
            )
        console.print(table)
        if tally.failed:
            failures = Table(title="Failed documents")
            for column in ("Document", "Batch", "Error code"):
                failures.add_column(column, no_wrap=True)
            failures.add_column("Message")
            for document in tally.failed:
                failures.add_row(
                    f"{document.original_filename} ({document.pk})",
                    str(document.batch_id),
                    document.error_code,
                    document.error_message,
                )
            console.print(failures)
        counts = ", ".join(f"{n} {status}" for status, n in sorted(tally.counts.items()))
        console.print(
            f"Done in {_duration(seconds)}: {counts or 'nothing to process'}.", highlight=False
        )

    # --- report -----------------------------------------------------------------------------

    def _report(self, *, batch: str, fmt: str | None, output: str | None, **_: Any) -> None:
        target = self._batch(batch)
        suffix = Path(output).suffix.lstrip(".").lower() if output else ""
        fmt = fmt or (suffix if suffix in EXPORT_FORMATS else "json")
        if fmt == "xlsx" and not output:
            raise CommandError("XLSX is a binary file: write it to a file with -o FILE.")
        export = exports.batch_export(batch=target, fmt=fmt)
        if output is None:
            self.stdout.write(export.content.decode("utf-8"), ending="")
            return
        try:
            Path(output).write_bytes(export.content)
        except OSError as error:
            raise CommandError(f"Cannot write {output}: {error.strerror}.") from None
        self.stdout.write(
            f"Wrote {output} ({fmt}, {filesizeformat(len(export.content))}, "
            f"{_documents(target.documents.count())})."
        )

    # --- monitor ----------------------------------------------------------------------------

    def _monitor(self, *, interval: float, once: bool, **_: Any) -> None:
        console = self._console()
        if once:
            console.print(self._monitor_table())
            return
        with Live(self._monitor_table(), console=console, auto_refresh=False) as live:
            try:
                while True:
                    time.sleep(max(interval, 0.1))
                    live.update(self._monitor_table(), refresh=True)
            except KeyboardInterrupt:
                pass

    @staticmethod
    def _monitor_table(now: datetime | None = None) -> Table:
        now = now or timezone.now()
        table = Table(title=f"Running batches at {now:%Y-%m-%d %H:%M:%S} UTC")
        columns = ("Batch", "Name", "Owner", "Status", "Queued", "Processing", "Completed")
        # Ids and emails are for copying: whole, on one line; a long name wraps instead.
        table.add_column("Batch", no_wrap=True, min_width=36)
        table.add_column("Name", overflow="fold")
        table.add_column("Owner", no_wrap=True)
        table.add_column("Status", no_wrap=True)
        for column in (*columns[4:], "Failed", "Canceled", "Total", "Done", "Rate", "ETA"):
            table.add_column(column, justify="right")
        running = list(selectors.batches_running())
        for batch in running:
            progress = selectors.batch_progress(batch=batch, now=now)
            rate = progress.per_minute
            status = batch.status + (f" ({batch.paused_reason})" if batch.paused_reason else "")
            table.add_row(
                str(batch.pk),
                batch.name,
                batch.user.email,
                status,
                str(progress.queued),
                str(progress.processing),
                str(progress.completed),
                str(progress.failed),
                str(progress.canceled),
                str(progress.total),
                f"{progress.percent}%",
                "—" if rate is None else f"{rate:.1f}/min",
                _duration(progress.eta_seconds),
            )
        if not running:
            table.caption = "No batch is running."
        return table

    # --- retry and cancel -------------------------------------------------------------------

    def _retry(self, *, batch: str, **_: Any) -> None:
        target = self._batch(batch)
        before = target.status
        try:
            count = services.batch_retry_failed(batch=target)
        except Rejected as rejection:
            raise self._refusal(rejection) from None
        target.refresh_from_db()
        self.stdout.write(
            f"Batch {target.pk} ({target.name}): {count} failed document{pluralize(count)} "
            f"queued again; status {before} -> {target.status}."
        )

    def _cancel(self, *, batch: str, **_: Any) -> None:
        target = self._batch(batch)
        before = selectors.batch_progress(batch=target)
        try:
            services.batch_cancel(batch=target)
        except Rejected as rejection:
            raise self._refusal(rejection) from None
        after = selectors.batch_progress(batch=target)
        self.stdout.write(
            f"Batch {target.pk} ({target.name}): canceled; "
            f"{_documents(after.canceled - before.canceled)} canceled before processing, "
            f"{after.processing} in flight will finish."
        )

    # --- create -----------------------------------------------------------------------------

    def _create(
        self,
        *,
        user: str,
        prompt: str,
        fields: str,
        name: str,
        description: str,
        mode: str,
        paths: list[str],
        **_: Any,
    ) -> None:
        owner = user_get_by_email(email=user)
        if owner is None:
            raise CommandError(f"No user with email {user}.")
        try:
            field_list = parse_fields(fields)
        except InvalidFields as problem:
            raise self._refusal(Rejected.one("invalid_fields", str(problem))) from None
        files = self._collect(paths)
        with ExitStack() as stack:
            uploads = [File(stack.enter_context(path.open("rb")), name=path.name) for path in files]
            try:
                batch = services.batch_create(
                    user=owner,
                    files=uploads,
                    prompt=prompt,
                    fields=field_list or None,
                    name=name,
                    description=description,
                    mode=mode,
                )
            except Rejected as rejection:
                raise self._refusal(rejection) from None
        self.stdout.write(str(batch.pk))
        self.stderr.write(
            f"Batch “{batch.name}” queued for {owner.email}: {_documents(batch.total_documents)}, "
            f"engine {batch.engine}."
        )

    def _collect(self, paths: list[str]) -> list[Path]:
        """The files named, and those in the folders named (recursively, supported extensions
        only, hidden ones left out), each once, in order."""
        found: list[Path] = []
        for raw in paths:
            path = Path(raw)
            if path.is_file():
                found.append(path)
            elif path.is_dir():
                inside = sorted(p for p in path.rglob("*") if p.is_file())
                visible = [
                    p
                    for p in inside
                    if not any(part.startswith(".") for part in p.relative_to(path).parts)
                ]
                kept = [p for p in visible if p.suffix.lower().lstrip(".") in KINDS]
                if len(kept) < len(inside):
                    self.stderr.write(
                        f"{path}: left out {len(inside) - len(kept)} file"
                        f"{pluralize(len(inside) - len(kept))} that are hidden or not "
                        + "/".join(f".{ext}" for ext in KINDS)
                        + "."
                    )
                found.extend(kept)
            else:
                raise CommandError(f"No such file or folder: {raw}")
        unique: dict[Path, Path] = {}
        for path in found:
            unique.setdefault(path.resolve(), path)
        return list(unique.values())
