"""The field syntax shared by the form, the API and the CLI.

One field per line, or comma-separated when there is no newline; each item is
``name[:type][ -- description]`` with type one of string (default), number, date, boolean, list,
or ``table(column; column:type; ...)`` (one-field-per-line form only; columns are
``name[:type][ -- description]`` of the scalar types). ``name!`` marks a required field.
The API may also send a JSON list of ``{"name", "type", "description", "required", "columns"}``.
"""

from __future__ import annotations

import re
from typing import Any, NotRequired, TypedDict

# The types a value may have; a table's columns take the scalar ones only.
SCALAR_TYPES = ("string", "number", "date", "boolean")
FIELD_TYPES = (*SCALAR_TYPES, "list", "table")
MAX_FIELDS = 50
MAX_NAME_LENGTH = 100
MAX_DESCRIPTION_LENGTH = 500
MAX_COLUMNS = 30


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
    """A field list that does not parse; the message names every field that is wrong and why, in
    order. Surfaces turn it into their own refusal (code `invalid_fields`)."""

    def __init__(self, problems: str | list[str]) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        if len(self.problems) == 1:
            message = self.problems[0]
        else:
            message = f"{len(self.problems)} problems in the fields: " + " ".join(self.problems)
        super().__init__(message)


class _Problems:
    """Every problem of one field list, so a user fixes them all in one go."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def add(self, message: str) -> None:
        self.messages.append(message)

    def raise_any(self) -> None:
        if self.messages:
            raise InvalidFields(self.messages)


def _clean_name(name: Any, where: str, problems: _Problems) -> str | None:
    if not isinstance(name, str) or not name.strip():
        problems.add(f"{where}: a {'column' if 'column' in where else 'field'} needs a name.")
        return None
    cleaned = " ".join(name.split())
    if len(cleaned) > MAX_NAME_LENGTH:
        problems.add(f"{where}: the name is longer than {MAX_NAME_LENGTH} characters.")
        return None
    return cleaned


def _clean_description(description: Any, where: str, problems: _Problems) -> str:
    description = description or ""
    if not isinstance(description, str):
        problems.add(f"{where}: the description must be text.")
        return ""
    cleaned = " ".join(description.split())
    if len(cleaned) > MAX_DESCRIPTION_LENGTH:
        problems.add(
            f"{where}: the description is longer than {MAX_DESCRIPTION_LENGTH} characters."
        )
    return cleaned


def _clean_type(
    type_: Any, where: str, allowed: tuple[str, ...], problems: _Problems
) -> str | None:
    if type_ is None or type_ == "":
        return "string"
    if isinstance(type_, str):
        type_ = type_.strip().lower()
    if type_ not in allowed:
        problems.add(f"{where}: unknown type {type_!r}; use one of {', '.join(allowed)}.")
        return None
    return str(type_)


def _columns(field: str, columns: Any, problems: _Problems) -> list[ColumnSpec]:
    """A table's columns from JSON-like items ``{"name", "type", "description"}``."""
    if not isinstance(columns, list) or not columns:
        problems.add(f"Field {field!r}: a table needs at least one column.")
        return []
    if len(columns) > MAX_COLUMNS:
        problems.add(
            f"Field {field!r}: at most {MAX_COLUMNS} columns per table; this has {len(columns)}."
        )
    specs: list[ColumnSpec] = []
    seen: set[str] = set()
    for number, item in enumerate(columns, start=1):
        if isinstance(item, str):
            item = {"name": item}
        where = f"Field {field!r}, column {number}"
        if not isinstance(item, dict):
            problems.add(f"{where}: expected an object with a name.")
            continue
        name = _clean_name(item.get("name"), where, problems)
        if name is None:
            continue
        where = f"Field {field!r}, column {name!r}"
        type_ = _clean_type(item.get("type"), where, SCALAR_TYPES, problems)
        description = _clean_description(item.get("description"), where, problems)
        if name.casefold() in seen:
            problems.add(f"{where} is listed twice.")
            continue
        seen.add(name.casefold())
        if type_ is not None:
            specs.append(ColumnSpec(name=name, type=type_, description=description))
    return specs


def _field(item: dict[str, Any], *, where: str, problems: _Problems) -> FieldSpec | None:
    """One field from its parts (``name``, ``type``, ``description``, ``required``, ``columns``);
    every problem goes to ``problems``, and None comes back when the field is unusable."""
    name = item.get("name")
    required = item.get("required", False)
    if isinstance(name, str) and name.strip().endswith("!"):
        name, required = name.strip()[:-1], True
    name = _clean_name(name, where, problems)
    if name is None:
        return None
    where = f"Field {name!r}"
    type_ = _clean_type(item.get("type"), where, FIELD_TYPES, problems)
    description = _clean_description(item.get("description"), where, problems)
    if not isinstance(required, bool):
        problems.add(f"{where}: required must be true or false.")
    columns = item.get("columns")
    if item.get("malformed"):
        problems.add(f"{where}: write a table's columns in parentheses, table(a; b:number).")
        return None
    if type_ != "table" and columns is not None:
        problems.add(f"{where}: only a table field has columns.")
    # An unusable type was reported; the field still counts for the "listed twice" check.
    spec = FieldSpec(name=name, type=type_ or "string", description=description)
    # Absent unless set, so that stored batches and their results keep their exact shape.
    if required is True:
        spec["required"] = True
    if type_ == "table":
        spec["columns"] = _columns(name, columns, problems)
    return spec


def _check_all(fields: list[FieldSpec | None], problems: _Problems) -> list[FieldSpec]:
    if len(fields) > MAX_FIELDS:
        problems.add(f"At most {MAX_FIELDS} fields per batch; this has {len(fields)}.")
    seen: set[str] = set()
    kept: list[FieldSpec] = []
    for spec in fields:
        if spec is None:
            continue
        key = spec["name"].casefold()
        if key in seen:
            problems.add(f"Field {spec['name']!r} is listed twice.")
        seen.add(key)
        kept.append(spec)
    problems.raise_any()
    return kept


# ``line items: table(description; quantity:number) -- one row per line``
_TABLE_START = re.compile(r"^[^:(]*:\s*table\s*\(", re.IGNORECASE)
_TABLE = re.compile(r"^table\s*\((?P<columns>.*)\)$", re.IGNORECASE | re.DOTALL)


def _text_item(item: str) -> dict[str, Any]:
    """One item of the text syntax as the parts :func:`_field` takes."""
    head, _, description = item.partition(" -- ")
    table = _TABLE_START.search(item)
    if table:
        # Columns may carry their own " -- " descriptions and parentheses: the field's own
        # description is after the parenthesis that closes the table.
        close = _closing_parenthesis(item, table.end() - 1)
        if close is not None:
            head, description = item[: close + 1], item[close + 1 :].strip().removeprefix("--")
        else:
            head, description = item, ""
    name, _, type_ = head.partition(":")
    parts: dict[str, Any] = {
        "name": name,
        "type": type_.strip() or None,
        "description": description,
    }
    table = _TABLE.match(type_.strip())
    if table:
        parts["type"] = "table"
        parts["columns"] = [_text_column(column) for column in table["columns"].split(";")]
        parts["columns"] = [column for column in parts["columns"] if column]
    elif type_.strip().lower().startswith("table"):
        parts["type"] = "table"
        parts["columns"] = None
        parts["malformed"] = True
    return parts


def _closing_parenthesis(text: str, opening: int) -> int | None:
    depth = 0
    for at in range(opening, len(text)):
        depth += {"(": 1, ")": -1}.get(text[at], 0)
        if depth == 0:
            return at
    return None


def _text_column(text: str) -> dict[str, Any] | None:
    text = text.strip()
    if not text:
        return None
    head, _, description = text.partition(" -- ")
    if head.rstrip().endswith("--"):
        head, description = head.rstrip()[:-2], ""
    name, _, type_ = head.partition(":")
    return {"name": name, "type": type_.strip() or None, "description": description}


def parse_fields(text: str) -> list[FieldSpec]:
    """Parse the text syntax; an empty text gives an empty list (fields come from the prompt)."""
    text = (text or "").strip()
    if not text:
        return []
    one_per_line = "\n" in text
    problems = _Problems()
    if (
        not one_per_line
        and "," in text
        and any(_TABLE_START.search(item) for item in text.split(","))
    ):
        problems.add(
            "A table field needs the one-field-per-line form: put each field on its own line."
        )
        problems.raise_any()
    items = text.splitlines() if one_per_line or "," not in text else text.split(",")
    fields: list[FieldSpec | None] = []
    for number, item in enumerate(items, start=1):
        item = item.strip()
        if not item:
            continue
        fields.append(_field(_text_item(item), where=f"Field {number}", problems=problems))
    return _check_all(fields, problems)


def fields_from_json(value: Any) -> list[FieldSpec]:
    if not isinstance(value, list):
        raise InvalidFields(
            'Fields must be a list of {"name", "type", "description", "required", "columns"} '
            "objects."
        )
    problems = _Problems()
    fields: list[FieldSpec | None] = []
    for number, item in enumerate(value, start=1):
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, dict):
            problems.add(f"Field {number}: expected an object with a name.")
            continue
        if isinstance(item.get("name"), str) and item["name"].strip().endswith("!"):
            problems.add(f'Field {number}: in JSON, mark a required field with "required": true.')
            continue
        fields.append(_field(item, where=f"Field {number}", problems=problems))
    return _check_all(fields, problems)


def _column_text(column: ColumnSpec) -> str:
    text = column["name"]
    if column.get("type", "string") != "string":
        text += f":{column['type']}"
    if column.get("description"):
        text += f" -- {column['description']}"
    return text


def fields_to_text(fields: list[FieldSpec]) -> str:
    """The text syntax of a field list, one field per line: what :func:`parse_fields` reads back
    into the same list."""
    lines = []
    for spec in fields:
        line = spec["name"] + ("!" if spec.get("required", False) else "")
        if spec["type"] == "table":
            line += f": table({'; '.join(_column_text(c) for c in spec.get('columns', []))})"
        elif spec["type"] != "string":
            line += f":{spec['type']}"
        if spec.get("description"):
            line += f" -- {spec['description']}"
        lines.append(line)
    return "\n".join(lines)


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


_LINE_ITEMS = re.compile(
    r"^(all\s+(the\s+)?)?(line\s+items?|(line\s+)?positions|items"
    r"|(a\s+)?table\s+of\s+(the\s+)?(line\s+)?(items|lines|positions))$",
    re.IGNORECASE,
)


def line_items_field() -> FieldSpec:
    """The table a prompt asking for "the line items" (or positions, a table of items) gets."""
    return FieldSpec(
        name="line items",
        type="table",
        description="one row per invoice line",
        columns=[
            ColumnSpec(name="description", type="string", description=""),
            ColumnSpec(name="quantity", type="number", description=""),
            ColumnSpec(name="unit price", type="number", description=""),
            ColumnSpec(name="amount", type="number", description=""),
        ],
    )


def fields_from_prompt(prompt: str) -> list[FieldSpec]:
    """Infer a field list from a plain-language prompt: "invoice number, date and total"."""
    text = _LEAD.sub("", prompt.strip().rstrip("."))
    fields: list[FieldSpec] = []
    seen: set[str] = set()
    for part in _SPLIT.split(text):
        name = re.sub(r"^(the|a|an)\s+", "", " ".join(part.split()), flags=re.IGNORECASE)
        if not name or len(name) > MAX_NAME_LENGTH or name.casefold() in seen:
            continue
        if _LINE_ITEMS.search(name):
            if "line items" not in seen:
                seen.add("line items")
                fields.append(line_items_field())
            continue
        seen.add(name.casefold())
        fields.append(FieldSpec(name=name, type=_type_from_name(name), description=""))
    return fields[:MAX_FIELDS]
