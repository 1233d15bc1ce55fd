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


# A table's rows in one answer: enough for a long statement's window, few enough that the answer
# (about 60 output tokens a row) stays within the call's output limit.
MAX_ROWS = 200
# A table's rows in a document asked in page windows, all windows together.
MAX_DOCUMENT_ROWS = 2000


def _row_schema(spec: FieldSpec) -> dict[str, Any]:
    columns = spec.get("columns", [])
    properties: dict[str, Any] = {}
    for column in columns:
        properties[column["name"]] = dict(_VALUE_SCHEMA[column["type"]])
        if column["description"]:
            properties[column["name"]]["description"] = column["description"]
    properties["quote"] = {
        "type": "string",
        "description": "the row's text exactly as it stands in the document",
    }
    properties["page"] = {"type": ["integer", "null"]}
    return {
        "type": "object",
        "properties": properties,
        "required": [*(column["name"] for column in columns), "quote", "page"],
    }


def _cell_schema(spec: FieldSpec) -> dict[str, Any]:
    if spec["type"] == "table":
        value: dict[str, Any] = {
            "type": ["array", "null"],
            "items": _row_schema(spec),
            "maxItems": MAX_ROWS,
            "description": "every row, in document order; a row over a page break is one row",
        }
        cell: dict[str, Any] = {
            "type": "object",
            "properties": {"value": value},
            "required": ["value"],
        }
    else:
        cell = {
            "type": "object",
            "properties": {
                "value": dict(_VALUE_SCHEMA[spec["type"]]),
                "quote": {"type": ["string", "null"]},
                "page": {"type": ["integer", "null"]},
            },
            "required": ["value", "quote", "page"],
        }
        if spec["type"] == "number":
            cell["properties"]["currency"] = {"type": ["string", "null"]}
    description = spec["description"]
    if spec.get("required", False):
        description = f"{description} (required: look for it carefully)".strip()
    if description:
        cell["description"] = description
    return cell


def output_schema(fields: list[FieldSpec]) -> dict[str, Any]:
    """The tool's input schema: one object per field with value, quote and page; a table's
    value is its rows, each with its typed columns, quote and page."""
    return {
        "type": "object",
        "properties": {
            "fields": {
                "type": "object",
                "properties": {spec["name"]: _cell_schema(spec) for spec in fields},
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
    fields: dict[str, Any]


def _typed_value(kind: str, name: str, value: Any, currency: str | None) -> tuple[Any, str | None]:
    """A value in Sheaf's canonical form for its type, and the number's currency; raises
    ValueError that says what is wrong."""
    if value is None or value == "" or value == []:
        return None, None
    if kind == "number":
        amount = parse_amount(str(value), context=currency or "")
        if amount is None:
            raise ValueError(f"{name}: {value!r} is not a number")
        return amount.value, (currency or amount.currency or "").upper() or None
    if kind == "date":
        iso = parse_date(str(value))
        if iso is None:
            raise ValueError(f"{name}: {value!r} is not a date (YYYY-MM-DD)")
        return iso, None
    if kind == "boolean":
        if not isinstance(value, bool):
            raise ValueError(f"{name}: {value!r} is not true or false")
        return value, None
    if kind == "list":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"{name}: expected a list of strings")
        return value, None
    return str(value), None


def _scalar(spec: FieldSpec, raw: Any) -> dict[str, Any]:
    cell = _Cell.model_validate(raw)
    value, currency = _typed_value(spec["type"], spec["name"], cell.value, cell.currency)
    out: dict[str, Any] = {
        "value": value,
        "quote": cell.quote if value is not None else None,
        "page": cell.page,
    }
    if currency:
        out["currency"] = currency
    return out


def _table(spec: FieldSpec, raw: Any) -> dict[str, Any]:
    rows = raw.get("value") if isinstance(raw, dict) else None
    if rows is None:
        rows = []
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise ValueError(f"{spec['name']}: expected a list of rows")
    values, proofs = [], []
    for number, row in enumerate(rows[:MAX_ROWS], start=1):
        typed = {}
        for column in spec.get("columns", []):
            label = f"{spec['name']} row {number} {column['name']}"
            typed[column["name"]], _ = _typed_value(
                column["type"], label, row.get(column["name"]), None
            )
        page = row.get("page") if isinstance(row.get("page"), int) else None
        quote = row.get("quote") if isinstance(row.get("quote"), str) else None
        values.append(typed)
        proofs.append({"quote": quote, "page": page, "pages": [page] if page else []})
    return {
        "value": values,
        "rows": proofs,
        "quote": None,
        "page": proofs[0]["page"] if proofs else None,
    }


def invalid_cell(raw: Any, reason: str) -> dict[str, Any]:
    """A field whose answer did not validate: no value, what the model said and why."""
    return {
        "value": None,
        "quote": None,
        "page": None,
        "status": "invalid",
        "raw": raw,
        "reason": reason,
    }


def is_invalid(cell: dict[str, Any]) -> bool:
    return cell.get("status") == "invalid"


def parse_answer(tool_input: Any, fields: list[FieldSpec]) -> dict[str, dict[str, Any]]:
    """The model's tool input checked field by field: each valid field in Sheaf's form, each
    one that does not validate as an `invalid_cell`. Raises ValueError with the reason only
    when the answer as a whole does not follow the schema (nothing in it is usable)."""
    try:
        answer = _Answer.model_validate(tool_input)
    except ValidationError as exc:
        raise ValueError(f"the answer does not match the schema: {exc.errors()[:3]}") from None
    cells: dict[str, dict[str, Any]] = {}
    for spec in fields:
        name = spec["name"]
        if name not in answer.fields:
            cells[name] = invalid_cell(None, f"{name}: missing from the answer")
            continue
        raw = answer.fields[name]
        said = raw.get("value") if isinstance(raw, dict) else raw
        try:
            cells[name] = _table(spec, raw) if spec["type"] == "table" else _scalar(spec, raw)
        except ValidationError as exc:
            reason = f"{name}: does not match the schema ({exc.errors()[0]['msg']})"
            cells[name] = invalid_cell(said, reason)
        except ValueError as problem:
            cells[name] = invalid_cell(said, str(problem))
    if cells and all(is_invalid(cell) for cell in cells.values()):
        reasons = "; ".join(cell["reason"] for cell in cells.values())
        raise ValueError(f"no field of the answer is usable: {reasons}")
    return cells
