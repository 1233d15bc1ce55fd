"""A person's review of a document's values: corrections and confirmations, kept apart from the
machine's result (`Document.reviews`), winning over it wherever values are shown or exported.

A review of a field is `{"value", "by", "at"}`: `value` in the field's canonical form (a number
as a decimal string, a date as YYYY-MM-DD, a table as its full list of rows); `None` means
"reviewed: this document has no such value". Confirming a field reviews it with the machine's
value; reverting drops the review.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from batches.checks import batch_checks_refresh
from batches.models import RunResult
from batchsite.errors import Problem, Rejected
from documents.models import Document
from extraction.fields import FieldSpec, fields_from_prompt

logger = logging.getLogger(__name__)

_NUMBER = re.compile(r"-?\d+(\.\d+)?")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def review_fields(document: Document) -> dict[str, FieldSpec]:
    """The fields a document's values can be reviewed for, by name: the batch's fields (listed,
    or inferred from its prompt), then any other name its result holds, as text."""
    batch = document.batch
    specs = {
        spec["name"]: spec for spec in batch.fields or fields_from_prompt(batch.extraction_prompt)
    }
    for name in (document.result or {}).get("fields") or {}:
        specs.setdefault(name, FieldSpec(name=name, type="string", description=""))
    return specs


def review_value(spec: Mapping[str, Any], value: Any, *, label: str) -> Any:
    """`value` in the canonical form of the field's type; raises ValueError saying what is wrong.
    Strict where the engines are lenient: a person's value is taken as written, not guessed."""
    kind = spec.get("type", "string")
    if value is None:
        return None
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError(f"{label}: {value!r} is not a number")
        text = str(value).strip()
        if not _NUMBER.fullmatch(text):
            raise ValueError(f"{label}: {value!r} is not a number (write it like 1234.50)")
        try:
            return f"{Decimal(text):f}"
        except InvalidOperation:
            raise ValueError(f"{label}: {value!r} is not a number") from None
    if kind == "date":
        try:
            if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
                raise ValueError
            return date.fromisoformat(value).isoformat()
        except ValueError:
            raise ValueError(f"{label}: {value!r} is not a date (YYYY-MM-DD)") from None
    if kind == "boolean":
        if not isinstance(value, bool):
            raise ValueError(f"{label}: {value!r} is not true or false")
        return value
    if kind == "list":
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ValueError(f"{label}: expected a list of strings")
        return value
    if kind == "table":
        return _table_value(spec, value, label=label)
    if not isinstance(value, str):
        raise ValueError(f"{label}: {value!r} is not text")
    return value.strip() or None


def _table_value(spec: Mapping[str, Any], value: Any, *, label: str) -> list[dict[str, Any]]:
    columns = {column["name"]: column for column in spec.get("columns", [])}
    if not isinstance(value, list) or not all(isinstance(row, dict) for row in value):
        raise ValueError(f"{label}: expected the full list of rows, each an object by column")
    rows = []
    for number, row in enumerate(value, start=1):
        unknown = sorted(set(row) - set(columns))
        if unknown:
            raise ValueError(f"{label} row {number}: no column named {unknown[0]!r}")
        rows.append(
            {
                name: review_value(column, row.get(name), label=f"{label} row {number} {name}")
                for name, column in columns.items()
            }
        )
    return rows


def _machine_value(document: Document, name: str) -> Any:
    cell = ((document.result or {}).get("fields") or {}).get(name)
    return cell.get("value") if isinstance(cell, dict) else None


def document_review(
    *,
    user: User,
    document_id: uuid.UUID | str,
    values: dict[str, Any] | None = None,
    confirmed: list[str] | None = None,
    revert: list[str] | None = None,
) -> Document:
    """Apply a person's corrections (`values`), confirmations and reverts to one of their
    documents, all or nothing. Raises Document.DoesNotExist for anyone else's document and
    Rejected (`invalid_review` naming each field at fault, or `conflict` for a document with no
    result yet)."""
    values, confirmed, revert = values or {}, confirmed or [], revert or []
    with transaction.atomic():
        document = (
            Document.objects.select_for_update(of=("self",), no_key=True)
            .select_related("batch")
            .get(pk=document_id, user=user)
        )
        if document.result is None:
            raise Rejected.one(
                "conflict",
                f"{document.original_filename} has no values to review yet ({document.status}).",
            )
        specs = review_fields(document)
        problems: list[Problem] = []
        named = [*values, *confirmed, *revert]
        for name in dict.fromkeys(named):
            if name not in specs:
                problems.append(Problem("invalid_review", f"{name}: the batch has no such field."))
            elif named.count(name) > 1:
                problems.append(
                    Problem("invalid_review", f"{name}: corrected, confirmed or reverted, not two.")
                )
        reviews = dict(document.reviews or {})
        stamp = {"by": user.email, "at": timezone.now().isoformat()}
        for name, value in values.items():
            if name not in specs:
                continue
            try:
                reviews[name] = {"value": review_value(specs[name], value, label=name), **stamp}
            except ValueError as error:
                problems.append(Problem("invalid_review", str(error)))
        for name in confirmed:
            reviews[name] = {"value": _machine_value(document, name), **stamp}
        for name in revert:
            reviews.pop(name, None)
        if problems:
            raise Rejected(problems)
        document.reviews = reviews
        document.reviewed_at = timezone.now() if reviews else None
        document.save(update_fields=["reviews", "reviewed_at", "updated_at"])
        _settle_disagreements(document, named)
    if (values or revert) and document.batch.is_terminal:
        # A corrected number or total can make or undo a duplicate or an outlier.
        batch_checks_refresh(batch_id=document.batch_id)
    logger.info(
        "document %s reviewed by user %s: %d corrected, %d confirmed, %d reverted",
        document.pk,
        user.pk,
        len(values),
        len(confirmed),
        len(revert),
    )
    return document


def _settle_disagreements(document: Document, names: list[str]) -> None:
    """A re-run's reading that disagreed with a review (runs._flag_disagreements) is settled
    once the person saves, confirms or reverts that value: the mark leaves the document's result
    and its run's row alike."""
    result = document.result or {}
    left = [name for name in result.get("disagreements", []) if name not in names]
    if left == result.get("disagreements", left):
        return
    result = {key: value for key, value in result.items() if key != "disagreements"}
    if left:
        result["disagreements"] = left
    Document.objects.filter(pk=document.pk).update(result=result)
    if document.run_id is not None:
        RunResult.objects.filter(run_id=document.run_id, document=document).update(result=result)
    document.result = result


def document_confirm_rest(*, user: User, document_id: uuid.UUID | str) -> Document:
    """Confirm every value of one of the user's documents that nobody reviewed yet (the
    review queue's "confirm and go on"). Raises as `document_review` does."""
    document = Document.objects.get(pk=document_id, user=user)
    fields = (document.result or {}).get("fields") or {}
    reviewed = document.reviews or {}
    names = [name for name in fields if name not in reviewed]
    return document_review(user=user, document_id=document_id, confirmed=names)
