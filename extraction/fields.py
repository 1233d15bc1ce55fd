"""The field syntax shared by the form, the API and the CLI.

One field per line, or comma-separated when there is no newline; each item is
``name[:type][ -- description]`` with type one of string (default), number, date, boolean, list.
The API may also send a JSON list of ``{"name", "type", "description"}``.
"""

from __future__ import annotations

import re
from typing import Any, NotRequired, TypedDict

# The types a value may have; a table's columns take the scalar ones only.
SCALAR_TYPES = ("string", "number", "date", "boolean")
FIELD_TYPES = (*SCALAR_TYPES, "list")  # "table" comes with its parser
MAX_FIELDS = 50
MAX_NAME_LENGTH = 100
MAX_DESCRIPTION_LENGTH = 500


class ColumnSpec(TypedDict):
    """One column of a table field: ``name[:type][ -- description]``, a scalar type."""

    name: str
    type: str
    description: str


class FieldSpec(TypedDict):
    name: str
    type: str
    description: str
    # A missing value of a required field is a review reason (``name!`` in the text syntax).
    # Absent in fields stored before tables existed: read with ``spec.get("required", False)``.
    required: NotRequired[bool]
    # A table field's columns, in order (type "table" only); read with ``spec.get("columns", [])``.
    columns: NotRequired[list[ColumnSpec]]


class InvalidFields(ValueError):
    """A field list that does not parse; the message says which field and why. Surfaces turn it
    into their own refusal (code `invalid_fields`)."""


def _invalid(message: str) -> InvalidFields:
    return InvalidFields(message)


def _field(name: Any, type_: Any, description: Any, *, where: str) -> FieldSpec:
    if not isinstance(name, str) or not name.strip():
        raise _invalid(f"{where}: a field needs a name.")
    name = " ".join(name.split())
    if len(name) > MAX_NAME_LENGTH:
        raise _invalid(f"{where}: the name is longer than {MAX_NAME_LENGTH} characters.")
    if type_ is None or type_ == "":
        type_ = "string"
    if isinstance(type_, str):
        type_ = type_.strip().lower()
    if type_ not in FIELD_TYPES:
        raise _invalid(
            f"Field {name!r}: unknown type {type_!r}; use one of {', '.join(FIELD_TYPES)}."
        )
    description = description or ""
    if not isinstance(description, str):
        raise _invalid(f"Field {name!r}: the description must be text.")
    description = " ".join(description.split())
    if len(description) > MAX_DESCRIPTION_LENGTH:
        raise _invalid(
            f"Field {name!r}: the description is longer than {MAX_DESCRIPTION_LENGTH} characters."
        )
    return FieldSpec(name=name, type=type_, description=description)


def _check_all(fields: list[FieldSpec]) -> list[FieldSpec]:
    if len(fields) > MAX_FIELDS:
        raise _invalid(f"At most {MAX_FIELDS} fields per batch; this has {len(fields)}.")
    seen: set[str] = set()
    for spec in fields:
        key = spec["name"].casefold()
        if key in seen:
            raise _invalid(f"Field {spec['name']!r} is listed twice.")
        seen.add(key)
    return fields


def parse_fields(text: str) -> list[FieldSpec]:
    """Parse the text syntax; an empty text gives an empty list (fields come from the prompt)."""
    text = (text or "").strip()
    if not text:
        return []
    items = text.splitlines() if "\n" in text else text.split(",")
    fields = []
    for number, item in enumerate(items, start=1):
        item = item.strip()
        if not item:
            continue
        head, _, description = item.partition(" -- ")
        name, _, type_ = head.partition(":")
        fields.append(_field(name, type_ or None, description, where=f"Field {number}"))
    return _check_all(fields)


def fields_from_json(value: Any) -> list[FieldSpec]:
    if not isinstance(value, list):
        raise _invalid('Fields must be a list of {"name", "type", "description"} objects.')
    fields = []
    for number, item in enumerate(value, start=1):
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, dict):
            raise _invalid(f"Field {number}: expected an object with a name.")
        fields.append(
            _field(
                item.get("name"), item.get("type"), item.get("description"), where=f"Field {number}"
            )
        )
    return _check_all(fields)


_LEAD = re.compile(
    r"^\s*(please\s+)?(extract|pull out|pull|get|find|capture|read|return|list)\b\s*(the\s+)?",
    re.IGNORECASE,
)
_SPLIT = re.compile(r",|;|\band\b|\n", re.IGNORECASE)


_DATE_NAME = re.compile(r"\b(date|dated|day)\b", re.IGNORECASE)
_AMOUNT_NAME = re.compile(
    r"\b(total|amount|price|cost|subtotal|sum|balance|fee|net|gross)\b", re.IGNORECASE
)
_IDENTIFIER_NAME = re.compile(r"\b(id|number|no|code|reference|ref)\b", re.IGNORECASE)


def _type_from_name(name: str) -> str:
    """A type guessed from a field's name, so "issue date" comes back as an ISO date and "total
    with currency" as a decimal with its currency."""
    if _IDENTIFIER_NAME.search(name):
        return "string"
    if _DATE_NAME.search(name):
        return "date"
    if _AMOUNT_NAME.search(name):
        return "number"
    return "string"


def fields_from_prompt(prompt: str) -> list[FieldSpec]:
    """Infer a field list from a plain-language prompt: "invoice number, date and total"."""
    text = _LEAD.sub("", prompt.strip().rstrip("."))
    fields: list[FieldSpec] = []
    seen: set[str] = set()
    for part in _SPLIT.split(text):
        name = re.sub(r"^(the|a|an)\s+", "", " ".join(part.split()), flags=re.IGNORECASE)
        if not name or len(name) > MAX_NAME_LENGTH or name.casefold() in seen:
            continue
        seen.add(name.casefold())
        fields.append(FieldSpec(name=name, type=_type_from_name(name), description=""))
    return fields[:MAX_FIELDS]
