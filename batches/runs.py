"""Runs of a batch: the upload is run 1; "re-run with changes" makes the next.

Each document's outcome is kept per run (`RunResult`); `Document.result` caches the batch's
current run (`BatchProcess.current_run`), which everything reads. A re-run is *staged*: its
documents go back to the queue with the run (`Document.run`), their outcomes go to the run's rows
only, and the batch serves its current run until the new one finishes and becomes current
(`run_settle`, in the transaction that finishes the batch). A trial run (on the reviewed
documents, to score a change before paying for the whole batch) never becomes current; nor does
a canceled one. Keeping an older run makes its outcomes current again (`run_keep`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import Case, Exists, F, Max, OuterRef, Q, Value, When
from django.utils import timezone

from accounts.selectors import user_effective_plan
from accounts.services import (
    limits_check_submission,
    limits_reserve_submission,
)
from batches.checks import batch_checks_refresh
from batches.models import BatchProcess, Run, RunResult
from batchsite.errors import Rejected
from documents.models import VALUE_STATUSES, Document, result_value_counts
from extraction.fields import FieldSpec, fields_from_prompt

logger = logging.getLogger(__name__)


def engine_model(engine: str) -> str:
    """The model an engine runs with ("" for the offline engine)."""
    return settings.SHEAF_ANTHROPIC_MODEL if engine == BatchProcess.Engine.ANTHROPIC else ""


def run_first(*, batch: BatchProcess) -> Run:
    """Run 1 of a new batch, made its current run (inside the batch's creating transaction)."""
    run = Run.objects.create(
        batch=batch,
        number=1,
        prompt=batch.extraction_prompt,
        fields=batch.fields,
        engine=batch.engine,
        model=engine_model(batch.engine),
        created_at=batch.created_at,
    )
    BatchProcess.objects.filter(pk=batch.pk).update(current_run=run)
    batch.current_run = run
    return run


def run_fields(run: Run) -> list[FieldSpec]:
    """The fields a run asks for: its list, or those its prompt names."""
    return list(run.fields) or fields_from_prompt(run.prompt)


# -- Starting a run --------------------------------------------------------------------------


def run_start(
    *,
    batch: BatchProcess,
    prompt: str | None = None,
    fields: list[FieldSpec] | None = None,
    documents: Sequence[Document] | None = None,
    trial: bool = False,
) -> Run:
    """Start the batch's next run on the text already read: with `prompt` and `fields` where
    given (fields left out follow a new prompt when the current ones were inferred from the old
    prompt, and are kept otherwise), over `documents` (default: all; a trial: the reviewed
    ones). Each document sent counts against the month's quota, the run as one submission.

    When the prompt is unchanged and fields were only added, only the new fields are asked of
    the engine (`Run.asked`) and the others keep their values. Raises Rejected: `conflict` while
    the batch runs or when it was canceled, `invalid_prompt`, the plan's limits."""
    batch = BatchProcess.objects.select_related("current_run", "user").get(pk=batch.pk)
    current = batch.current_run
    if current is None:
        raise Rejected.one("conflict", f"Batch “{batch.name}” has no run to start from.")
    if batch.status == BatchProcess.Status.CANCELED:
        raise Rejected.one("conflict", f"Batch “{batch.name}” was canceled; upload it again.")
    if batch.waits_for_start and batch.start_at is not None:
        raise Rejected.one(
            "conflict",
            f"Batch “{batch.name}” has not started yet: it is scheduled for "
            f"{batch.start_at:%Y-%m-%d %H:%M} UTC. Start a run once it has finished, or cancel "
            "it and upload it again with the prompt and fields you want now.",
        )
    if not batch.is_terminal:
        raise Rejected.one(
            "conflict",
            f"Batch “{batch.name}” is still processing; start a run when it has finished.",
        )
    new_prompt = current.prompt if prompt is None else prompt.strip()
    if not new_prompt:
        raise Rejected.one("invalid_prompt", "Say what to extract, e.g. “invoice number, total”.")
    if fields is None:
        inferred = list(current.fields) == fields_from_prompt(current.prompt)
        fields = fields_from_prompt(new_prompt) if inferred else list(current.fields)
    fields = fields or fields_from_prompt(new_prompt)
    chosen = list(batch.documents.all()) if documents is None else list(documents)
    if trial:
        chosen = [document for document in chosen if document.reviewed_at is not None]
        if not chosen:
            raise Rejected.one(
                "conflict",
                f"No document of “{batch.name}” has been reviewed yet: review a few first, then "
                "try the change on them.",
            )
    if not chosen:
        raise Rejected.one("conflict", f"Batch “{batch.name}” has no documents to run.")
    plan = user_effective_plan(batch.user).plan
    limits_check_submission(user=batch.user, plan=plan, documents=len(chosen))
    now = timezone.now()
    with transaction.atomic():
        locked = BatchProcess.objects.select_for_update(no_key=True).get(pk=batch.pk)
        if not locked.is_terminal or locked.status == BatchProcess.Status.CANCELED:
            raise Rejected.one("conflict", f"Batch “{batch.name}” is running or was canceled.")
        number = (locked.runs.aggregate(n=Max("number"))["n"] or 0) + 1
        run = Run.objects.create(
            batch=locked,
            number=number,
            prompt=new_prompt,
            fields=fields,
            engine=locked.engine,
            model=engine_model(locked.engine),
            created_at=now,
            staged=True,
            trial=trial,
            asked=_added_fields(current, new_prompt, fields),
        )
        month = limits_reserve_submission(
            user=batch.user, plan=plan, documents=len(chosen), now=now
        )
        ids = [document.pk for document in chosen]
        Document.objects.filter(pk__in=ids, status__in=Document.TERMINAL_STATUSES).update(
            **queued_again(run_id=run.pk, month=month, now=now)
        )
        BatchProcess.objects.filter(pk=batch.pk).update(
            status=BatchProcess.Status.PROCESSING, completed_at=None, paused_reason=""
        )
        from batches.pipeline.claims import kick_workers
        from batches.pipeline.finishing import batch_refresh
        from notifications.services import outbox_batch_started

        outbox_batch_started(batch_id=batch.pk, run=run.number)
        batch_refresh(batch_id=batch.pk)
        transaction.on_commit(kick_workers)
    logger.info(
        "batch %s: run %d started on %d document(s)%s",
        batch.pk,
        run.number,
        len(ids),
        f", asking only {', '.join(run.asked)}" if run.asked else "",
    )
    return run


def queued_again(*, run_id: int | None, month: Any, now: datetime) -> dict[str, Any]:
    """A finished document's changes to go back to the queue for `run_id` with fresh attempts,
    its extraction reserved in `month` (its result stays: see the callers)."""
    return {
        "run": run_id,
        "quota_month": month,
        "status": Document.Status.QUEUED,
        "attempts": 0,
        "next_attempt_at": now,
        "error_code": "",
        "error_message": "",
        "error_kind": "",
        "rate_limited_since": None,
        # A new extraction: an economy document goes into a new provider batch (only documents
        # without one are sent), and its old batch is not read again.
        "provider_batch_id": "",
        "completed_at": None,
        "updated_at": now,
    }


def _added_fields(current: Run, prompt: str, fields: list[FieldSpec]) -> list[str]:
    """The names of the fields a run adds to the current run's, when it only adds fields (the
    same prompt, every current field unchanged); empty otherwise: every field is asked."""
    if prompt != current.prompt:
        return []
    before = {spec["name"]: spec for spec in run_fields(current)}
    after = {spec["name"]: spec for spec in fields}
    if any(after.get(name) != spec for name, spec in before.items()):
        return []
    return [name for name in after if name not in before]


# -- Storing outcomes ------------------------------------------------------------------------


def unless_staged(values: dict[str, Any]) -> dict[str, Any]:
    """Changes to a document's cached result for one UPDATE, each made only when the run the
    document was sent to is not staged: a staged run's outcome goes to its own row only, and the
    document keeps showing the current run's until the run finishes."""
    staged = Exists(Run.objects.filter(pk=OuterRef("run_id"), staged=True))
    fields = {field.name: field for field in Document._meta.concrete_fields}
    return {
        name: Case(
            When(staged, then=F(name)),
            default=Value(value, output_field=fields[name]),
            output_field=fields[name],
        )
        for name, value in values.items()
    }


def run_result_store(
    *,
    document_id: uuid.UUID,
    result: dict[str, Any] | None,
    cost_usd: Decimal | None,
    usage: dict[str, int] | None,
    status: str,
    error: tuple[str, str, str] = ("", "", ""),
) -> None:
    """Write a document's outcome into its row of the run it was sent to, in the transaction
    that stores it on the document: one statement (it runs for every document), an upsert, so a
    retry overwrites the row and never adds a second. `error`: code, message, kind."""
    counts = result_value_counts(result) if result is not None else None
    code, message, kind = error
    values = {
        "status": status,
        "error_code": code,
        "error_message": message,
        "error_kind": kind,
        "carried": False,
        "result": result,
        "values_total": counts.total if counts else None,
        "values_found": counts.found if counts else None,
        "values_verified": counts.verified if counts else None,
        "cost_usd": cost_usd,
        "usage": usage,
        "created_at": timezone.now(),
        "updated_at": timezone.now(),
    }
    meta, quote = RunResult._meta, connection.ops.quote_name
    fields = {field.name: field for field in meta.concrete_fields}
    columns = [quote(fields[name].get_attname_column()[1] or name) for name in values]
    params = [fields[name].get_db_prep_save(value, connection) for name, value in values.items()]
    updated = [column for column in columns if column != quote("created_at")]
    # Only the model's own table and column names are formatted in; every value is a parameter.
    sql = (
        f"INSERT INTO {quote(meta.db_table)} (run_id, document_id, {', '.join(columns)}) "  # noqa: S608
        f"SELECT run_id, id, {', '.join(['%s'] * len(columns))} "
        f"FROM {quote(Document._meta.db_table)} WHERE id = %s AND run_id IS NOT NULL "
        "ON CONFLICT (run_id, document_id) DO UPDATE SET "
        + ", ".join(f"{column} = excluded.{column}" for column in updated)
    )
    document_pk = Document._meta.pk
    assert document_pk is not None
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, document_pk.get_db_prep_value(document_id, connection)])


# -- Finishing, keeping, canceling -----------------------------------------------------------


def run_reopened(*, batch_id: uuid.UUID) -> None:
    """The current run is unfinished again (its batch was reopened by a retry)."""
    Run.objects.filter(current_of__pk=batch_id).update(finished_at=None)


def run_settle(*, batch_id: uuid.UUID, now: datetime) -> bool:
    """The batch's open run finished (inside the transaction that finishes the batch, under its
    lock): its rows gain every document it did not extract, carried from the current run; a
    staged run becomes current, with its outcomes cached on the documents; a trial's documents
    show the current run's outcomes again. Returns whether documents' statuses changed (a trial),
    so the caller counts them again."""
    run = Run.objects.filter(batch_id=batch_id, finished_at=None, canceled_at=None).last()
    if run is None:
        return False
    batch = BatchProcess.objects.select_related("current_run").get(pk=batch_id)
    current = batch.current_run
    if current is not None and current.pk != run.pk and not run.trial:
        _carry(run=run, source=current)
    Run.objects.filter(pk=run.pk).update(finished_at=now, staged=False)
    if not run.staged or current is None:
        return False
    if run.trial:
        _show(run=current, statuses=True, document_ids=_sent_to(run))
        return True
    _flag_disagreements(run=run, previous=current)
    _show(run=run, statuses=False)
    BatchProcess.objects.filter(pk=batch_id).update(
        current_run=run, extraction_prompt=run.prompt, fields=run.fields
    )
    return False


def _flag_disagreements(*, run: Run, previous: Run) -> None:
    """Mark in `run`'s results each reviewed value it read differently from both the review and
    the reading the person reviewed (`previous`'s): the review stands, and the document goes back
    to the review queue (`result["disagreements"]`, the fields' names) until the person saves,
    confirms or reverts that value."""
    from batches.reviews import review_value

    reviews = dict(
        Document.objects.filter(run=run, reviewed_at__isnull=False).values_list("pk", "reviews")
    )
    if not reviews:
        return
    specs = {spec["name"]: spec for spec in run_fields(run)}
    before = {
        row.document_id: _values(row.result)
        for row in RunResult.objects.filter(run=previous, document_id__in=list(reviews))
    }
    flagged = []
    rows = RunResult.objects.filter(
        run=run, carried=False, document_id__in=list(reviews), result__isnull=False
    )
    for row in rows:
        after, seen = _values(row.result), before.get(row.document_id, {})
        names = [
            name
            for name, review in (reviews[row.document_id] or {}).items()
            if name in specs  # a field the run no longer has is not read differently
            and not any(
                _same(specs[name], expected, after.get(name), review_value)
                for expected in (review.get("value"), seen.get(name))
            )
        ]
        if names:
            row.result = {**(row.result or {}), "disagreements": names}
            flagged.append(row)
    RunResult.objects.bulk_update(flagged, ["result"])


def run_abandon(*, batch: BatchProcess) -> Run | None:
    """Cancel the batch's staged run, if one is open: its documents show the current run's
    outcomes again (a document in flight loses its lease: what it brings is not stored, what it
    cost is counted), and the batch finishes as it was. Returns the run, or None when there is
    none (the caller cancels the batch itself)."""
    run = Run.objects.filter(batch=batch, staged=True, finished_at=None, canceled_at=None).last()
    if run is None or batch.current_run is None:
        return None
    Run.objects.filter(pk=run.pk).update(canceled_at=timezone.now(), staged=False)
    # What was never sent gives its quota back; what was sent was spent.
    from batches.pipeline.finishing import quota_give_back

    quota_give_back(Document.objects.filter(run=run, status=Document.Status.QUEUED))
    _show(run=batch.current_run, statuses=True, document_ids=_sent_to(run))
    _refinish(batch_id=batch.pk)
    # The current run's values again, with any review made while the run was going.
    batch_checks_refresh(batch_id=batch.pk)
    return run


def run_keep(*, batch: BatchProcess, number: int) -> Run:
    """Make run `number` the batch's current run again: its outcomes (values, statuses, errors)
    become the documents', its prompt and fields the batch's. Raises Rejected (`not_found`,
    `conflict` while the batch runs, for a trial or a canceled run)."""
    run = batch.runs.filter(number=number).first()
    if run is None:
        raise Rejected.one("not_found", f"Batch “{batch.name}” has no run {number}.")
    if not batch.is_terminal:
        raise Rejected.one("conflict", f"Batch “{batch.name}” is still processing.")
    if run.trial or run.canceled_at is not None or run.finished_at is None:
        why = "a trial on the reviewed documents" if run.trial else "canceled or unfinished"
        raise Rejected.one("conflict", f"Run {number} cannot be kept: it was {why}.")
    with transaction.atomic():
        _show(run=run, statuses=True)
        BatchProcess.objects.filter(pk=batch.pk).update(
            current_run=run, extraction_prompt=run.prompt, fields=run.fields
        )
        if batch.status != BatchProcess.Status.CANCELED:
            _refinish(batch_id=batch.pk)
        batch_checks_refresh(batch_id=batch.pk)
    logger.info("batch %s: run %d kept as current", batch.pk, number)
    batch.refresh_from_db()
    return run


def _sent_to(run: Run) -> list[uuid.UUID]:
    return list(Document.objects.filter(run=run).values_list("pk", flat=True))


def _carry(*, run: Run, source: Run) -> None:
    """Rows in `run` for the documents it did not extract, copied from `source` at no cost."""
    have = RunResult.objects.filter(run=run).values("document_id")
    RunResult.objects.bulk_create(
        [
            RunResult(
                run=run,
                document_id=row.document_id,
                status=row.status,
                error_code=row.error_code,
                error_message=row.error_message,
                error_kind=row.error_kind,
                carried=True,
                result=row.result,
                values_total=row.values_total,
                values_found=row.values_found,
                values_verified=row.values_verified,
                cost_usd=None,
                usage=None,
            )
            for row in RunResult.objects.filter(run=source).exclude(document_id__in=have)
        ]
    )


def outcome_status(row: RunResult) -> str:
    """A row's document status (rows kept before statuses were: by whether it has a result)."""
    if row.status:
        return row.status
    return Document.Status.COMPLETED if row.result is not None else Document.Status.FAILED


def _show(*, run: Run, statuses: bool, document_ids: Iterable[uuid.UUID] | None = None) -> None:
    """Cache `run`'s outcomes on its documents (all, or `document_ids`): the result and its
    counts, and with `statuses` the status and error too, each document then sent to `run`."""
    rows = RunResult.objects.filter(run=run)
    if document_ids is not None:
        rows = rows.filter(document_id__in=list(document_ids))
    changed: list[Document] = []
    names = ["result", "values_total", "values_found", "values_verified", "run"]
    names += [f"count_{status}" for status in VALUE_STATUSES]
    if statuses:
        names += ["status", "error_code", "error_message", "error_kind", "lease_token"]
        names += ["lease_expires_at"]
    for row in rows.iterator(chunk_size=500):
        counts = result_value_counts(row.result)
        document = Document(
            pk=row.document_id,
            result=row.result,
            values_total=counts.total if row.result is not None else None,
            values_found=counts.found if row.result is not None else None,
            values_verified=counts.verified if row.result is not None else None,
            status=outcome_status(row),
            error_code=row.error_code,
            error_message=row.error_message,
            error_kind=row.error_kind,
            run=run,
            lease_token=None,
            lease_expires_at=None,
        )
        for status, n in counts.statuses.items():
            setattr(document, f"count_{status}", n if row.result is not None else None)
        changed.append(document)
    Document.objects.bulk_update(changed, names, batch_size=500)


def _refinish(*, batch_id: uuid.UUID) -> None:
    """Count a finished batch's documents again and give it the status they make."""
    from batches.pipeline.finishing import batch_refresh, finished_status

    counts = Document.objects.filter(batch_id=batch_id).aggregate(
        total=models.Count("id"),
        completed=models.Count("id", filter=Q(status=Document.Status.COMPLETED)),
        failed=models.Count("id", filter=Q(status=Document.Status.FAILED)),
    )
    BatchProcess.objects.filter(pk=batch_id).update(
        status=finished_status(counts), completed_at=timezone.now()
    )
    batch_refresh(batch_id=batch_id)


# -- Reading runs ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSummary:
    run: Run
    current: bool
    documents: int
    cost_usd: Decimal
    changes: dict[str, int] | None  # same/changed/new/lost against the run before; None for 1
    score: RunScore | None  # against the reviewed values; None while nothing is reviewed

    @property
    def status(self) -> str:
        return run_status(self.run)

    @property
    def keepable(self) -> bool:
        """Whether `run_keep` takes it: a finished run, not a trial, that is not current."""
        return not self.current and not self.run.trial and self.status == "finished"


def run_list(*, batch: BatchProcess) -> list[RunSummary]:
    """The batch's runs, oldest first, each with its documents, cost and changes."""
    runs = list(
        batch.runs.annotate(
            sent=models.Count("results", filter=Q(results__carried=False)),
            spent=models.Sum("results__cost_usd"),
        ).order_by("number")
    )
    open_counts = dict(
        Document.objects.filter(batch=batch, status__in=("queued", "processing"))
        .values("run")
        .annotate(n=models.Count("id"))
        .values_list("run", "n")
    )
    summaries = []
    for run in runs:
        previous = _previous(run)
        summaries.append(
            RunSummary(
                run=run,
                current=run.pk == batch.current_run_id,
                documents=run.sent + open_counts.get(run.pk, 0),
                cost_usd=run.spent or Decimal(0),
                changes=run_diff(run=run, against=previous).counts if previous else None,
                score=run_score(run=run),
            )
        )
    return summaries


def _previous(run: Run) -> Run | None:
    """The run a run is compared with: the last earlier run that was not a trial nor canceled."""
    return (
        Run.objects.filter(batch_id=run.batch_id, number__lt=run.number, trial=False)
        .filter(canceled_at__isnull=True)
        .order_by("-number")
        .first()
    )


CHANGES = ("same", "changed", "new", "lost")


@dataclass(frozen=True)
class ValueChange:
    field: str
    change: str  # one of CHANGES
    before: Any
    after: Any


@dataclass(frozen=True)
class DocumentChanges:
    document_id: uuid.UUID
    filename: str
    values: list[ValueChange]


@dataclass(frozen=True)
class RunDiff:
    run: Run
    against: Run | None
    documents: list[DocumentChanges]

    @property
    def changed(self) -> list[DocumentChanges]:
        """The documents with a value that is not the same as before."""
        return [d for d in self.documents if any(v.change != "same" for v in d.values)]

    @property
    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(CHANGES, 0)
        for document in self.documents:
            for value in document.values:
                counts[value.change] += 1
        return counts


def run_diff(*, run: Run, against: Run | None = None) -> RunDiff:
    """Per document and value, what `run` changed against `against` (default: the run before
    it): `same`, `changed`, `new` (a value where there was none) or `lost` (none where there was
    one). A value neither run has is left out; so is a document the run did not extract."""
    against = against if against is not None else _previous(run)
    before: dict[uuid.UUID, dict[str, Any]] = {}
    if against is not None:
        before = {
            row.document_id: _values(row.result)
            for row in RunResult.objects.filter(run=against).only("document_id", "result")
        }
    documents = []
    rows = (
        RunResult.objects.filter(run=run, carried=False)
        .select_related("document")
        .only("document_id", "result", "document__original_filename")
        .order_by("document__created_at", "document_id")
    )
    for row in rows:
        after = _values(row.result)
        old = before.get(row.document_id, {})
        changes = [
            change
            for name in dict.fromkeys([*old, *after])
            if (change := _change(name, old.get(name), after.get(name))) is not None
        ]
        documents.append(DocumentChanges(row.document_id, row.document.original_filename, changes))
    return RunDiff(run=run, against=against, documents=documents)


def run_document_changes(*, document: Document) -> dict[str, ValueChange]:
    """The changes of the document's current run against the run before it, by field: what the
    document page shows beside each value. Empty for run 1 or a document it did not extract."""
    run = document.batch.current_run
    if run is None:
        return {}
    row = RunResult.objects.filter(run=run, document=document, carried=False).first()
    previous = _previous(run)
    if row is None or previous is None:
        return {}
    old_row = RunResult.objects.filter(run=previous, document=document).first()
    old = _values(old_row.result if old_row else None)
    after = _values(row.result)
    return {
        name: change
        for name in dict.fromkeys([*old, *after])
        if (change := _change(name, old.get(name), after.get(name))) is not None
    }


def _values(result: dict[str, Any] | None) -> dict[str, Any]:
    fields = (result or {}).get("fields") or {}
    return {
        name: cell.get("value") if isinstance(cell, dict) else None for name, cell in fields.items()
    }


def _present(value: Any) -> bool:
    return value not in (None, "", [], {})


def _change(name: str, before: Any, after: Any) -> ValueChange | None:
    if not _present(before) and not _present(after):
        return None
    if not _present(before):
        change = "new"
    elif not _present(after):
        change = "lost"
    else:
        change = "same" if before == after else "changed"
    return ValueChange(field=name, change=change, before=before, after=after)


def run_get(*, batch: BatchProcess, number: int) -> Run:
    """Run `number` of the batch, or Rejected (`not_found`)."""
    run = batch.runs.filter(number=number).first()
    if run is None:
        raise Rejected.one("not_found", f"Batch “{batch.name}” has no run {number}.")
    return run


def run_status(run: Run) -> str:
    if run.canceled_at is not None:
        return "canceled"
    return "finished" if run.finished_at is not None else "running"


# -- Scores against reviewed values ----------------------------------------------------------


@dataclass(frozen=True)
class Disagreement:
    document_id: uuid.UUID
    filename: str
    field: str
    expected: Any
    extracted: Any


@dataclass
class FieldScore:
    compared: int = 0  # values (for a table: cells, the larger of expected and extracted)
    correct: int = 0

    @property
    def rate(self) -> float | None:
        return round(self.correct / self.compared, 4) if self.compared else None


@dataclass(frozen=True)
class RunScore:
    documents: int
    fields: dict[str, FieldScore]
    disagreements: list[Disagreement]

    @property
    def rate(self) -> float | None:
        compared = sum(score.compared for score in self.fields.values())
        correct = sum(score.correct for score in self.fields.values())
        return round(correct / compared, 4) if compared else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "documents": self.documents,
            "rate": self.rate,
            "fields": {
                name: {"compared": s.compared, "correct": s.correct, "rate": s.rate}
                for name, s in self.fields.items()
            },
            "disagreements": [
                {
                    "document": str(d.document_id),
                    "filename": d.filename,
                    "field": d.field,
                    "expected": d.expected,
                    "extracted": d.extracted,
                }
                for d in self.disagreements
            ],
        }


def run_score(*, run: Run) -> RunScore | None:
    """How well `run` agrees with what people reviewed in its batch (reviewed values are the
    ground truth): the exact-match rate per reviewed field, a table field's by cells (correct
    cells over the larger of expected and extracted, rows paired by their cells), with every
    disagreement. None while no document of the batch is reviewed (or the run has none)."""
    from batches.reviews import review_value

    reviewed = {
        document.pk: document
        for document in Document.objects.filter(batch_id=run.batch_id, reviewed_at__isnull=False)
    }
    rows = RunResult.objects.filter(run=run, document_id__in=list(reviewed))
    specs = {spec["name"]: spec for spec in run_fields(run)}
    fields: dict[str, FieldScore] = {}
    disagreements: list[Disagreement] = []
    scored = 0
    for row in rows:
        document = reviewed[row.document_id]
        extracted = _values(row.result)
        truths = {name: review for name, review in (document.reviews or {}).items()}
        if not truths:
            continue
        scored += 1
        for name, review in truths.items():
            spec = specs.get(name) or FieldSpec(name=name, type="string", description="")
            expected, value = review.get("value"), extracted.get(name)
            score = fields.setdefault(name, FieldScore())
            if spec.get("type") == "table":
                correct, cells = _table_cells(spec, expected or [], value or [], review_value)
            else:
                correct, cells = int(_same(spec, expected, value, review_value)), 1
            score.compared += cells
            score.correct += correct
            if correct < cells:
                disagreements.append(
                    Disagreement(document.pk, document.original_filename, name, expected, value)
                )
    if not scored:
        return None
    return RunScore(documents=scored, fields=fields, disagreements=disagreements)


def _canonical(spec: Any, value: Any, canon: Any) -> Any:
    """A value in the canonical form a review has (None when it has none, or does not parse)."""
    if not _present(value):
        return None
    try:
        value = canon(spec, value, label=spec.get("name", ""))
    except ValueError:
        return ("unparsed", str(value))
    if spec.get("type") == "number" and value is not None:
        return Decimal(value)
    if isinstance(value, str):
        return " ".join(value.split())
    return value


def _same(spec: Any, expected: Any, value: Any, canon: Any) -> bool:
    return bool(_canonical(spec, expected, canon) == _canonical(spec, value, canon))


def _table_cells(
    spec: Any, expected: list[Any], extracted: list[Any], canon: Any
) -> tuple[int, int]:
    """(correct cells, the larger of the expected and extracted cell counts): each expected row
    paired with the unpaired extracted row sharing most cells with it."""
    columns = [column["name"] for column in spec.get("columns", [])] or sorted(
        {name for row in [*expected, *extracted] if isinstance(row, dict) for name in row}
    )
    by_name = {column["name"]: column for column in spec.get("columns", [])}

    def cells(row: Any) -> list[Any]:
        row = row if isinstance(row, dict) else {}
        return [
            _canonical(by_name.get(name, {"name": name}), row.get(name), canon) for name in columns
        ]

    left = [cells(row) for row in extracted]
    correct = 0
    for row in (cells(row) for row in expected):
        best, hits = None, 0
        for index, candidate in enumerate(left):
            matched = sum(a == b for a, b in zip(row, candidate, strict=True))
            if matched > hits:
                best, hits = index, matched
        if best is not None:
            left.pop(best)
            correct += hits
    return correct, max(len(expected), len(extracted)) * len(columns)
