from __future__ import annotations

from typing import Any

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

from extraction.fields import FieldSpec, fields_to_text

register = template.Library()


@register.filter
def fields_text(fields: list[FieldSpec]) -> str:
    """A batch's fields in the syntax the form, the API and the CLI take, to copy into a new one."""
    return fields_to_text(fields)


@register.filter
def field_value(cell: dict[str, Any]) -> str:
    """A result value as a person reads it: lists joined, booleans as yes/no, currency after."""
    value = cell.get("value")
    if isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, list):
        text = "; ".join(str(item) for item in value)
    else:
        text = str(value)
    if cell.get("currency"):
        text = f"{text} {cell['currency']}"
    return text


@register.simple_tag
def result_cells(result: dict[str, Any] | None, field_names: list[str]) -> SafeString:
    """A results-table row's cells, one per field: "—" when there is no value, and values not
    found verbatim in the document marked. Built here rather than in the template: the template
    loop took a third of the batch page's render time."""
    fields = (result or {}).get("fields") or {}
    cells = []
    for name in field_names:
        cell = fields.get(name) or {}
        if cell.get("value") is None:
            cells.append(format_html('<td data-label="{}"><span class="muted">—</span></td>', name))
        elif cell.get("verified"):
            cells.append(format_html('<td data-label="{}">{}</td>', name, field_value(cell)))
        else:
            cells.append(
                format_html(
                    '<td data-label="{}" class="unverified" '
                    'title="Not found verbatim in the document">{}</td>',
                    name,
                    field_value(cell),
                )
            )
    return SafeString("".join(cells))


@register.filter
def duration(seconds: int) -> str:
    """An ETA in words: "45 s", "3 min", "1 h 20 min"."""
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"
