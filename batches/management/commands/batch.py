"""`manage.py batch …`: the operator's terminal onto batches.

Every action parses its arguments, calls the services and selectors the dashboard and the
workers use (`batch_create` with the plan limits, `batch_retry_failed`, `batch_cancel`,
`batch_export`, `batch_progress`, and the drain's thread loop in `batches.pipeline.runner`),
and hands what they return to `batches.console` to show.

Verbosity is Django's, with one meaning in every action (VERBOSITY), and may be given after the
action: `process -v` is `--verbosity 2`, `-vv` is 3, `-q` is 0.
"""

from __future__ import annotations

import argparse
import re
import time
import uuid
from contextlib import AbstractContextManager, ExitStack, nullcontext
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files import File
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from rich.console import Console, RenderableType
from rich.live import Live

from accounts.selectors import user_get_by_email
from batches import console, exports, pipeline, runs, selectors, services
from batches.exports import EXPORT_FORMATS
from batches.models import BatchProcess
from batches.pipeline import Claim
from batches.pipeline.runner import Run
from batches.selectors import Outcome, Progress
from batchsite.errors import Rejected
from batchsite.logging import CommandLogging
from documents.uploads import KINDS
from extraction.fields import InvalidFields, parse_fields

EXIT_INTERRUPTED = 130

VERBOSITY = (
    "Verbosity, the same in every action: -q (0) shows only errors and what was asked for (a "
    "batch id, an export, a table); no option (1) adds progress, summaries and "
    "confirmations; -v (2) adds details: each document's outcome and extracted values "
    "(process), each file taken (create); -vv (3) adds the log lines (LOG_LEVEL's). "
    "--verbosity N (before or after the action) sets it by number."
)

# A batch id, or its first characters as the tables show them.
_ID_PREFIX = re.compile(rf"[0-9a-f]{{{console.SHORT_ID}}}[0-9a-f-]{{0,28}}", re.IGNORECASE)


class _Louder(argparse.Action):
    """-v: one more than normal (1), each time it is given; at most 3."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        setattr(namespace, self.dest, min(getattr(namespace, self.dest, 1) + 1, 3))


def _verbosity_options(parser: CommandParser) -> None:
    """-v, -q and --verbosity after the action; unset, they leave Django's own (before the
    action) as it is."""
    group = parser.add_argument_group("verbosity", VERBOSITY)
    given = argparse.SUPPRESS
    group.add_argument(
        "-v", "--verbose", dest="verbosity", action=_Louder, default=given, help="2; -vv: 3."
    )
    group.add_argument(
        "-q", "--quiet", dest="verbosity", action="store_const", const=0, default=given, help="0."
    )
    group.add_argument(
        "--verbosity",
        dest="verbosity",
        type=int,
        choices=range(4),
        default=given,
        metavar="N",
        help="0 to 3.",
    )


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


def _dollars(value: str) -> Decimal:
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise ValueError(value) from None
    if not amount.is_finite():
        raise ValueError(value)
    return amount


def _dollars_or_none(value: str) -> Decimal | None:
    return None if value.lower() == "none" else _dollars(value)


def _refusal(rejection: Rejected) -> CommandError:
    return CommandError(console.refusal(rejection))


def _with_progress(
    batches: list[BatchProcess], now: datetime | None = None
) -> list[tuple[BatchProcess, Progress, Outcome]]:
    return [
        (
            batch,
            selectors.batch_progress(batch=batch, now=now),
            selectors.batch_outcome(batch=batch),
        )
        for batch in batches
    ]


class Command(BaseCommand):
    help = (
        "Process, report, monitor, retry, cancel, create, budget and re-run batches from a "
        "terminal. Tables show the first 8 characters of ids; every action takes them for a "
        "batch id. " + VERBOSITY
    )

    verbosity = 1
    logs: CommandLogging

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

        report = actions.add_parser(
            "report",
            help="A batch's results as CSV, JSON, Markdown, XLSX or items.csv (line items).",
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

        rerun = actions.add_parser(
            "rerun",
            help="Run a finished batch again with a new prompt or fields.",
            description="On the text already read (no upload, no reading again). The run becomes "
            "current when it finishes; when only fields were added, only they are asked.",
        )
        rerun.add_argument("batch", metavar="ID")
        rerun.add_argument("--prompt", help="The new prompt (default: the current run's).")
        rerun.add_argument(
            "--fields",
            help="The new field list, as for create (default: the current run's, or inferred "
            "from a new prompt when the current ones were).",
        )
        rerun.add_argument(
            "--trial", action="store_true", help="Only the reviewed documents, to score it."
        )
        listing = actions.add_parser("runs", help="A batch's runs, their changes and scores.")
        listing.add_argument("batch", metavar="ID")
        keep = actions.add_parser("keep", help="Make run N the batch's current run again.")
        keep.add_argument("batch", metavar="ID")
        keep.add_argument("number", type=_positive, metavar="N")

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
            "comma-separated; name[:type][ -- description]; name! for a required field; one "
            'per line for a table: "line items: table(description; amount:number)"). '
            "Default: taken from the prompt.",
        )
        create.add_argument("--name", default="", help="Default: from the first file's name.")
        create.add_argument("--description", default="")
        create.add_argument("--mode", default=BatchProcess.Mode.STANDARD, help="standard|economy")
        create.add_argument(
            "--start-at",
            default="",
            metavar="TIME",
            help="Start no earlier than TIME, ISO 8601 with a time zone (e.g. "
            "2026-12-24T09:00+01:00), at most 90 days ahead; a past time means now. "
            "Quota and plan are taken now.",
        )
        create.add_argument(
            "--budget-usd",
            type=_dollars,
            metavar="N",
            help="Stop dispatching when the batch's cost reaches N dollars (default: the plan's).",
        )
        create.add_argument("paths", nargs="+", metavar="PATH")

        budget = actions.add_parser(
            "budget",
            help="Set, raise or remove a batch's budget; raising it resumes a paused batch.",
        )
        budget.add_argument("batch", metavar="ID")
        budget.add_argument(
            "amount", type=_dollars_or_none, metavar="N", help="Dollars, or 'none' to remove it."
        )
        for each in actions.choices.values():
            _verbosity_options(each)

    def handle(self, *args: Any, action: str, verbosity: int, **options: Any) -> None:
        self.verbosity = verbosity
        with CommandLogging(verbosity) as self.logs:
            getattr(self, f"_{action}")(**options)

    def _logs_above(self, out: Console, *, live: bool) -> AbstractContextManager[None]:
        """While a live display draws on a terminal, log lines go through its console, above it,
        not into it; elsewhere (a file, a pipe) they stay on stderr."""
        if live and out.is_terminal:
            return self.logs.through(console.log_handler(out))
        return nullcontext()

    def _say(self, text: str) -> None:
        """A confirmation or a summary: not at verbosity 0."""
        if self.verbosity >= 1:
            self.stdout.write(text)

    def _note(self, text: str) -> None:
        """A note beside the output (stdout being an id or an export): not at verbosity 0."""
        if self.verbosity >= 1:
            self.stderr.write(text)

    def _batch(self, value: str) -> BatchProcess:
        try:
            batch_id = uuid.UUID(value)
        except ValueError:
            return self._batch_by_prefix(value)
        batch = selectors.batch_get(batch_id=batch_id)
        if batch is None:
            raise CommandError(f"No batch with id {batch_id}.")
        return batch

    @staticmethod
    def _batch_by_prefix(value: str) -> BatchProcess:
        if not _ID_PREFIX.fullmatch(value):
            raise CommandError(
                f"{value!r} is not a batch id (a batch id is a UUID, or its first "
                f"{console.SHORT_ID} or more characters)."
            )
        found = selectors.batches_with_id_prefix(prefix=value)
        if not found:
            raise CommandError(f"No batch has an id starting with {value}.")
        if len(found) > 1:
            raise CommandError(f"More than one batch's id starts with {value}: give more of it.")
        return found[0]

    # --- process ----------------------------------------------------------------------------

    def _process(
        self,
        *,
        batch: str | None,
        limit: int | None,
        parallel: int | None,
        retries: int | None,
        dry_run: bool,
        **_: Any,
    ) -> None:
        batch_id = self._batch(batch).pk if batch else None
        out = console.rich_console(self.stdout)
        if dry_run:
            self._process_dry_run(out, batch_id=batch_id, limit=limit)
            return
        pipeline.sweep()  # as every drain starts: expired leases back to the queue
        waiting = (
            selectors.documents_waiting(batch_id=batch_id)
            .exclude(selectors.before_start(timezone.now()))
            .count()
        )
        tally = console.ProcessTally(
            console=out,
            total=min(waiting, limit) if limit else waiting,
            verbosity=self.verbosity,
            batch_ids=[batch_id] if batch_id else [],
        )

        def on_outcome(claim: Claim, status: str) -> None:
            tally.outcome(claim, status, selectors.document_get(document_id=claim.document_id))

        run = Run(
            threads=parallel or settings.SHEAF_CONCURRENCY,
            batch_id=batch_id,
            limit=limit,
            max_attempts=None if retries is None else retries + 1,
            on_outcome=on_outcome,
        )
        started = time.monotonic()
        interrupted = False
        with tally.progress, self._logs_above(out, live=self.verbosity >= 1):
            try:
                run.run()
            except KeyboardInterrupt:
                interrupted = True
        if self.verbosity >= 1:
            self._process_summary(out, tally, seconds=time.monotonic() - started)
        deferred = tally.counts.get("deferred", 0)
        if deferred:
            self._note(console.economy_lane_note(deferred))
        if interrupted:
            self.stderr.write(console.INTERRUPTED)
            raise SystemExit(EXIT_INTERRUPTED)
        if tally.failed:
            self.stderr.write(console.failed_note(len(tally.failed)))
            raise SystemExit(1)

    @staticmethod
    def _process_dry_run(out: Console, *, batch_id: uuid.UUID | None, limit: int | None) -> None:
        waiting = selectors.documents_waiting(batch_id=batch_id)
        chosen = list(waiting.select_related("batch").defer("text", "result")[:limit])
        console.print_dry_run(out, chosen, waiting=waiting.count(), now=timezone.now())

    @staticmethod
    def _process_summary(out: Console, tally: console.ProcessTally, *, seconds: float) -> None:
        found = [selectors.batch_get(batch_id=pk) for pk in tally.batch_ids]
        batches = _with_progress([each for each in found if each is not None])  # not deleted
        console.print_process_summary(out, tally, batches, seconds=seconds)

    # --- report -----------------------------------------------------------------------------

    def _report(self, *, batch: str, fmt: str | None, output: str | None, **_: Any) -> None:
        target = self._batch(batch)
        suffix = Path(output).suffix.lstrip(".").lower() if output else ""
        if output and output.lower().endswith(".items.csv"):
            suffix = "items.csv"
        fmt = fmt or (suffix if suffix in EXPORT_FORMATS else "json")
        if fmt == "xlsx" and not output:
            raise CommandError("XLSX is a binary file: write it to a file with -o FILE.")
        try:
            export = exports.batch_export(batch=target, fmt=fmt)
        except exports.NoTableField as error:
            raise CommandError(str(error)) from None
        outcome = console.outcome_in_words(selectors.batch_outcome(batch=target))
        if output is None:
            self.stdout.write(export.content.decode("utf-8"), ending="")
            self._note(outcome)  # stdout is the export, to pipe on
            return
        try:
            Path(output).write_bytes(export.content)
        except OSError as error:
            raise CommandError(f"Cannot write {output}: {error.strerror}.") from None
        self._say(
            console.report_written(
                output,
                fmt=fmt,
                size=len(export.content),
                document_count=target.documents.count(),
            )
        )
        self._say(outcome)

    # --- monitor ----------------------------------------------------------------------------

    def _monitor(self, *, interval: float, once: bool, **_: Any) -> None:
        out = console.rich_console(self.stdout)
        if once:
            out.print(self._monitor_table())
            return
        live_table = Live(self._monitor_table(), console=out, auto_refresh=False)
        with live_table as live, self._logs_above(out, live=True):
            try:
                while True:
                    time.sleep(max(interval, 0.1))
                    live.update(self._monitor_table(), refresh=True)
            except KeyboardInterrupt:
                pass

    @staticmethod
    def _monitor_table() -> RenderableType:
        now = timezone.now()
        running = _with_progress(list(selectors.batches_running()), now=now)
        return console.monitor_view(running, now=now)

    # --- retry and cancel -------------------------------------------------------------------

    def _retry(self, *, batch: str, **_: Any) -> None:
        target = self._batch(batch)
        before = target.status
        try:
            count = services.batch_retry_failed(batch=target)
        except Rejected as rejection:
            raise _refusal(rejection) from None
        target.refresh_from_db()
        self._say(console.batch_retried(target, count=count, before=before))
        for left in services.batch_unretryable(batch=target):
            self.stderr.write(f"not retried, a retry cannot fix it: {left}")

    def _cancel(self, *, batch: str, **_: Any) -> None:
        target = self._batch(batch)
        before = selectors.batch_progress(batch=target)
        try:
            services.batch_cancel(batch=target)
        except Rejected as rejection:
            raise _refusal(rejection) from None
        after = selectors.batch_progress(batch=target)
        self._say(console.batch_canceled(target, before=before, after=after))

    # --- runs -------------------------------------------------------------------------------

    def _rerun(
        self, *, batch: str, prompt: str | None, fields: str | None, trial: bool, **_: Any
    ) -> None:
        target = self._batch(batch)
        try:
            field_list = parse_fields(fields) if fields is not None else None
            run = runs.run_start(batch=target, prompt=prompt, fields=field_list, trial=trial)
        except InvalidFields as problem:
            raise _refusal(Rejected.one("invalid_fields", str(problem))) from None
        except Rejected as rejection:
            raise _refusal(rejection) from None
        count = target.documents.filter(run=run).count()
        self._say(console.run_started(target, number=run.number, count=count, asked=run.asked))

    def _runs(self, *, batch: str, **_: Any) -> None:
        target = self._batch(batch)
        console.rich_console(self.stdout).print(console.runs_table(runs.run_list(batch=target)))

    def _keep(self, *, batch: str, number: int, **_: Any) -> None:
        target = self._batch(batch)
        try:
            runs.run_keep(batch=target, number=number)
        except Rejected as rejection:
            raise _refusal(rejection) from None
        self._say(console.run_kept(target, number=number))

    # --- budget -----------------------------------------------------------------------------

    def _budget(self, *, batch: str, amount: Decimal | None, **_: Any) -> None:
        target = self._batch(batch)
        try:
            target = services.batch_budget_set(batch=target, budget_usd=amount)
        except Rejected as rejection:
            raise _refusal(rejection) from None
        self._say(console.batch_budget(target))

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
        start_at: str,
        paths: list[str],
        budget_usd: Decimal | None,
        **_: Any,
    ) -> None:
        owner = user_get_by_email(email=user)
        if owner is None:
            raise CommandError(f"No user with email {user}.")
        try:
            field_list = parse_fields(fields)
        except InvalidFields as problem:
            raise _refusal(Rejected.one("invalid_fields", str(problem))) from None
        files = self._collect(paths)
        if self.verbosity >= 2:
            for path in files:
                self.stderr.write(f"taking {path}")
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
                    start_at=start_at,
                    budget_usd=budget_usd,
                )
            except Rejected as rejection:
                raise _refusal(rejection) from None
        self.stdout.write(str(batch.pk))
        self._note(console.batch_created(batch, owner_email=owner.email))

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
                    self._note(console.left_out_note(path, len(inside) - len(kept)))
                found.extend(kept)
            else:
                raise CommandError(f"No such file or folder: {raw}")
        unique: dict[Path, Path] = {}
        for path in found:
            unique.setdefault(path.resolve(), path)
        return list(unique.values())
