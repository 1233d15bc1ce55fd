"""What Claude is asked to answer (the tool's input schema) and how its answer is checked: each
value in Sheaf's canonical form for its field's type, or a ValueError that says what is wrong."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from extraction.fields import FieldSpec
from extraction.normalise import parse_amount, parse_date

_VALUE_SCHEMA: dict[str, dict[str, Any]] = {
    "string": {"type": ["string", "null"]},
    "number": {"type": ["string", "null"], "description": "a decimal such as 1234.50"},
    "date": {"type": ["string", "null"], "description": "YYYY-MM-DD"},
    "boolean": {"type": ["boolean", "null"]},
    "list": {"type": ["array", "null"], "items": {"type": "string"}},
}


def output_schema(fields: list[FieldSpec]) -> dict[str, Any]:
    """The tool's input schema: one object per field with value, quote and page."""
    properties = {}
    for spec in fields:
        cell: dict[str, Any] = {
            "type": "object",
            "properties": {
                "value": dict(_VALUE_SCHEMA[spec["type"]]),
                "quote": {"type": ["string", "null"]},
                "page": {"type": ["integer", "null"]},
            },
            "required": ["value", "quote", "page"],
        }
        if spec["description"]:
            cell["description"] = spec["description"]
        if spec["type"] == "number":
            cell["properties"]["currency"] = {"type": ["string", "null"]}
        properties[spec["name"]] = cell
    return {
        "type": "object",
        "properties": {
            "fields": {
                "type": "object",
                "properties": properties,
                "required": [spec["name"] for spec in fields],
            }
        },
        "required": ["fields"],
    }


class _Cell(BaseModel):
    value: Any = None
    quote: str | None = None
    page: int | None = None
    currency: str | None = None


class _Answer(BaseModel):
    fields: dict[str, _Cell]


def _typed(spec: FieldSpec, cell: _Cell) -> dict[str, Any]:
    """The answer's value in Sheaf's canonical form for the field's type; raises ValueError."""
    value = cell.value
    out: dict[str, Any] = {"value": None, "quote": cell.quote, "page": cell.page}
    if value is None or value == "" or value == []:
        out["quote"] = None
        return out
    kind = spec["type"]
    if kind == "number":
        amount = parse_amount(str(value), context=cell.currency or "")
        if amount is None:
            raise ValueError(f"{spec['name']}: {value!r} is not a number")
        out["value"] = amount.value
        currency = (cell.currency or amount.currency or "").upper() or None
        if currency:
            out["currency"] = currency
    elif kind == "date":
        iso = parse_date(str(value))
        if iso is None:
            raise ValueError(f"{spec['name']}: {value!r} is not a date (YYYY-MM-DD)")
        out["value"] = iso
    elif kind == "boolean":
        if not isinstance(value, bool):
            raise ValueError(f"{spec['name']}: {value!r} is not true or false")
        out["value"] = value
    elif kind == "list":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"{spec['name']}: expected a list of strings")
        out["value"] = value
    else:
        out["value"] = str(value)
    return out


def parse_answer(tool_input: Any, fields: list[FieldSpec]) -> dict[str, dict[str, Any]]:
    """Validate the model's tool input against the fields; raises ValueError with the reason."""
    try:
        answer = _Answer.model_validate(tool_input)
    except ValidationError as exc:
        raise ValueError(f"the answer does not match the schema: {exc.errors()[:3]}") from None
    missing = [spec["name"] for spec in fields if spec["name"] not in answer.fields]
    if missing:
        raise ValueError(f"fields missing from the answer: {', '.join(missing)}")
    return {spec["name"]: _typed(spec, answer.fields[spec["name"]]) for spec in fields}
