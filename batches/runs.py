"""Runs of a batch: the upload is run 1, and each document's outcome is kept per run
(`RunResult`) beside `Document.result`, the current run's cache that everything reads."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from batches.models import BatchProcess, Run, RunResult
from documents.models import Document, result_value_counts


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


def run_result_store(
    *,
    document_id: uuid.UUID,
    batch_id: uuid.UUID,
    result: dict[str, Any] | None,
    cost_usd: Decimal | None,
    usage: dict[str, int] | None,
) -> None:
    """Write a document's outcome into its row of the batch's current run, in the transaction
    that stores it on the document: one statement (it runs for every document), an upsert, so
    a retry overwrites the row and never adds a second."""
    counts = result_value_counts(result) if result is not None else None
    values = {
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
        f"SELECT current_run_id, %s, {', '.join(['%s'] * len(columns))} "
        f"FROM {quote(BatchProcess._meta.db_table)} WHERE id = %s AND current_run_id IS NOT NULL "
        "ON CONFLICT (run_id, document_id) DO UPDATE SET "
        + ", ".join(f"{column} = excluded.{column}" for column in updated)
    )
    pk = BatchProcess._meta.pk
    assert pk is not None
    document_pk = Document._meta.pk
    assert document_pk is not None
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            [
                document_pk.get_db_prep_value(document_id, connection),
                *params,
                pk.get_db_prep_value(batch_id, connection),
            ],
        )


def run_reviews(*, document_id: uuid.UUID, batch_id: uuid.UUID) -> dict[str, Any]:
    """The reviews made of the document's values in its batch's current run, by field name:
    its row there keeps the outcome a re-run replaces until the new one is stored."""
    stored = (
        RunResult.objects.filter(document_id=document_id, run__current_of__pk=batch_id)
        .values_list("result", flat=True)
        .first()
    )
    fields = (stored or {}).get("fields") or {}
    return {
        name: cell["review"]
        for name, cell in fields.items()
        if isinstance(cell, dict) and cell.get("review") is not None
    }


def run_reopened(*, batch_id: uuid.UUID) -> None:
    """The current run is unfinished again (its batch was reopened by a retry)."""
    Run.objects.filter(current_of__pk=batch_id).update(finished_at=None)


def run_finished(*, batch_id: uuid.UUID) -> None:
    """The current run finished with its batch."""
    Run.objects.filter(current_of__pk=batch_id).update(finished_at=timezone.now())
