"""A database-side record of state changes, written by triggers, whichever process makes them.

Worker processes share the test database but not the test's Python objects, so the only honest
witness of "this row was written once" is the database itself: an AFTER UPDATE trigger appends a
row to `test_audit` for every update that a test wants counted. Works on SQLite and PostgreSQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.db import connection

from batches.models import BatchProcess
from documents.models import Document

TABLE = "test_audit"


@dataclass(frozen=True)
class Change:
    old_status: str
    new_status: str


class Audit:
    def _changes(self, kind: str, row_id: uuid.UUID) -> list[Change]:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT row_id, old_status, new_status FROM {TABLE} "  # noqa: S608 (constant)
                "WHERE kind = %s ORDER BY id",
                [kind],
            )
            rows = cursor.fetchall()
        return [Change(old, new) for rid, old, new in rows if uuid.UUID(rid) == row_id]

    def completions(self, document_id: uuid.UUID) -> list[Change]:
        """Every update that left the document completed, or touched it while completed."""
        return self._changes("document", document_id)

    def finishes(self, batch_id: uuid.UUID) -> list[Change]:
        """Every update that moved the batch into a terminal status, or set its completed_at
        again while it was terminal."""
        return self._changes("batch", batch_id)


def _terminal(statuses: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{status}'" for status in statuses) + ")"


@contextmanager
def transitions_audit() -> Iterator[Audit]:
    """Install the triggers for the duration of a (transaction=True) test."""
    documents = Document._meta.db_table
    batches = BatchProcess._meta.db_table
    completed = Document.Status.COMPLETED
    terminal = _terminal(tuple(BatchProcess.TERMINAL_STATUSES))
    conditions = {
        "document": (documents, f"NEW.status = '{completed}' OR OLD.status = '{completed}'"),
        "batch": (
            batches,
            f"NEW.status IN {terminal} AND (OLD.status NOT IN {terminal} "
            "OR NEW.completed_at IS DISTINCT FROM OLD.completed_at)",
        ),
    }
    postgres = connection.vendor == "postgresql"
    statements = []
    if postgres:
        statements += [
            f"CREATE TABLE {TABLE} (id serial PRIMARY KEY, kind text, row_id text, "
            "old_status text, new_status text)",
            f"CREATE FUNCTION {TABLE}_row() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "  # noqa: S608
            f"INSERT INTO {TABLE} (kind, row_id, old_status, new_status) "
            "VALUES (TG_ARGV[0], NEW.id::text, OLD.status, NEW.status); RETURN NULL; END $$",
        ]
        for kind, (table, condition) in conditions.items():
            statements.append(
                f"CREATE TRIGGER {TABLE}_{kind} AFTER UPDATE ON {table} FOR EACH ROW "
                f"WHEN ({condition}) EXECUTE FUNCTION {TABLE}_row('{kind}')"
            )
    else:
        statements.append(
            f"CREATE TABLE {TABLE} (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT, "
            "row_id TEXT, old_status TEXT, new_status TEXT)"
        )
        for kind, (table, condition) in conditions.items():
            condition = condition.replace("IS DISTINCT FROM", "IS NOT")
            statements.append(
                f"CREATE TRIGGER {TABLE}_{kind} AFTER UPDATE ON {table} FOR EACH ROW "  # noqa: S608
                f"WHEN {condition} BEGIN INSERT INTO {TABLE} (kind, row_id, old_status, "
                f"new_status) VALUES ('{kind}', NEW.id, OLD.status, NEW.status); END"
            )
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
    try:
        yield Audit()
    finally:
        with connection.cursor() as cursor:
            for kind, (table, _) in conditions.items():
                on = f" ON {table}" if postgres else ""
                cursor.execute(f"DROP TRIGGER IF EXISTS {TABLE}_{kind}{on}")
            if postgres:
                cursor.execute(f"DROP FUNCTION IF EXISTS {TABLE}_row()")
            cursor.execute(f"DROP TABLE IF EXISTS {TABLE}")
