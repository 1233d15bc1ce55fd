from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.filter
def get_item(mapping: Any, key: str) -> Any:
    """A result field by name (names may contain spaces, which template lookups cannot)."""
    if not isinstance(mapping, dict):
        return None
    return mapping.get(key) or {}


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
