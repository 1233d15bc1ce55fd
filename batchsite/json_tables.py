"""JSON shown to staff as HTML tables instead of raw text: a batch's fields and checks, a
document's result and reviews, event payloads.

Every key and value is escaped: a result holds text read from an uploaded document, which is
hostile input.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

# A list of objects (or an object of several objects, like a result's fields) is one table with a
# column per key, as long as it stays narrow enough to read; wider ones (a Stripe object) are
# shown one object at a time.
MAX_COLUMNS = 10
# Deeper than this, the rest is shown as JSON text (still escaped).
MAX_DEPTH = 6
EMPTY = "-"  # as Django shows an empty field


def json_table(value: object) -> SafeString:
    """`value` (anything JSON holds) as HTML: objects as tables of their keys, lists of objects
    as tables with a row per item, other lists as lists, scalars as text."""
    return _render(value, depth=0)


def _render(value: object, *, depth: int) -> SafeString:
    if value is None or value == {} or value == [] or value == "":
        return format_html('<span class="sheaf-json-empty">{}</span>', EMPTY)
    if isinstance(value, bool):
        return format_html("{}", "yes" if value else "no")
    if isinstance(value, str | int | float):
        return format_html("{}", value)
    if depth >= MAX_DEPTH or not isinstance(value, Mapping | list):
        return format_html("<code>{}</code>", json.dumps(value, default=str))
    if isinstance(value, list):
        return _list(value, depth=depth)
    if len(value) > 1 and all(isinstance(item, Mapping) for item in value.values()):
        columns = _columns(value.values())
        if len(columns) <= MAX_COLUMNS:
            return _rows_table(list(value.items()), columns, depth=depth)
    return _object_table(value, depth=depth)


def _list(items: list[object], *, depth: int) -> SafeString:
    if all(isinstance(item, Mapping) for item in items):
        mappings = [item for item in items if isinstance(item, Mapping)]
        columns = _columns(mappings)
        if len(columns) <= MAX_COLUMNS:
            return _rows_table([(None, item) for item in mappings], columns, depth=depth)
    return format_html(
        '<ul class="sheaf-json-list">{}</ul>',
        format_html_join("", "<li>{}</li>", ((_render(item, depth=depth + 1),) for item in items)),
    )


# Columns Sheaf's own objects have, in the order a person reads them; PostgreSQL's jsonb keeps
# keys in its own order (shortest first), so the order they appear in is not the one written.
FIRST_COLUMNS = ("name", "type", "value", "status", "quote", "page", "by", "at")


def _columns(mappings: Iterable[Mapping[object, object]]) -> list[str]:
    """Every key of the objects: FIRST_COLUMNS' first, the rest in the order they appear."""
    columns: dict[str, None] = {}
    for mapping in mappings:
        columns.update((str(key), None) for key in mapping)
    rank = {name: place for place, name in enumerate(FIRST_COLUMNS)}
    return sorted(columns, key=lambda name: rank.get(name, len(FIRST_COLUMNS)))


def _object_table(value: Mapping[object, object], *, depth: int) -> SafeString:
    rows = format_html_join(
        "",
        '<tr><th scope="row">{}</th><td>{}</td></tr>',
        ((str(key), _render(item, depth=depth + 1)) for key, item in value.items()),
    )
    return format_html('<table class="sheaf-json"><tbody>{}</tbody></table>', rows)


def _rows_table(rows: list[tuple[object, object]], columns: list[str], *, depth: int) -> SafeString:
    """A row per item; a first column with the item's key when the items are an object's."""
    keyed = any(key is not None for key, _ in rows)
    head = format_html_join("", '<th scope="col">{}</th>', ((column,) for column in columns))
    if keyed:
        head = format_html('<th scope="col"></th>{}', head)
    body = format_html_join(
        "",
        "<tr>{}{}</tr>",
        (
            (
                format_html('<th scope="row">{}</th>', key) if keyed else "",
                format_html_join(
                    "",
                    "<td>{}</td>",
                    ((_render(_cell(item, column), depth=depth + 1),) for column in columns),
                ),
            )
            for key, item in rows
        ),
    )
    return format_html(
        '<table class="sheaf-json"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>', head, body
    )


def _cell(item: object, column: str) -> object:
    if not isinstance(item, Mapping):
        return None
    return item.get(column)
