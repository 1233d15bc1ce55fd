"""JSON that clients send (API bodies, the `fields` value, Stripe's events), parsed with a bound
on nesting.

Python's parser recurses once per level: a body nested 100,000 deep raises RecursionError,
which no caller expects, and one nested just under the interpreter's limit parses but breaks
whatever walks it next (a serializer's error message, a `repr`). No input Sheaf takes needs more
than a few levels, so anything deeper than `MAX_JSON_DEPTH` is refused as malformed.
"""

from __future__ import annotations

import json
from typing import Any

MAX_JSON_DEPTH = 32


class InvalidJson(ValueError):
    """The text is not JSON Sheaf accepts. The message says why as a fragment for the caller to
    place ("The request body is not valid JSON: {message}.")."""


def _refuse_constant(name: str) -> Any:
    raise InvalidJson(f"{name} is not a JSON value")


def _deeper_than(value: Any, limit: int) -> bool:
    # Iterative, so that checking the depth cannot itself run out of stack.
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def json_loads(text: str | bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The value `text` holds, or InvalidJson: not UTF-8, not JSON, ``NaN``/``Infinity``
    (not JSON either), or arrays and objects nested deeper than `max_depth`."""
    too_deep = InvalidJson(f"it is nested more than {max_depth} levels deep, the most accepted")
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise too_deep from None
    except UnicodeDecodeError:
        raise InvalidJson("it is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise InvalidJson(f"{exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    if isinstance(value, dict | list) and _deeper_than(value, max_depth):
        raise too_deep
    return value
