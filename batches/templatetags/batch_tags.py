from __future__ import annotations

from typing import Any

from django import template
from django.template.defaultfilters import pluralize
from django.utils.html import format_html
from django.utils.safestring import SafeString

from batches.exports import cell_status, cell_value
from batches.results import Column, ResultsQuery
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
    elif isinstance(value, list) and cell.get("rows") is not None:
        text = f"{len(value)} row{'s' if len(value) != 1 else ''}"  # a table field
    elif isinstance(value, list):
        text = "; ".join(str(item) for item in value)
    else:
        text = str(value)
    if cell.get("currency"):
        text = f"{text} {cell['currency']}"
    return text


@register.filter
def plain_value(value: Any) -> str:
    """A value of a run's result as a person reads it (a run's diff shows values, not cells):
    a table as its row count, a list joined, a boolean as yes/no, nothing as "—"."""
    if value in (None, "", [], {}):
        return "—"
    if isinstance(value, list) and any(isinstance(item, dict) for item in value):
        return f"{len(value)} row{'s' if len(value) != 1 else ''}"
    return field_value({"value": value})


@register.filter
def percent(rate: float | None) -> str:
    """A rate (0 to 1) as a percentage: "93.3 %"; "—" when there is none."""
    return "—" if rate is None else f"{rate * 100:.1f} %"


@register.filter
def status_counts(statuses: dict[str, int]) -> str:
    """The values per status in words: "30 checked, 8 found on the page, 3 not found in the
    text, 0 invalid" (missing values are said before, with the fields that have a value)."""
    return (
        f"{statuses.get('checked', 0):,} checked, "
        f"{statuses.get('found', 0):,} found on the page, "
        f"{statuses.get('unverified', 0):,} not found in the text, "
        f"{statuses.get('invalid', 0):,} invalid"
    )


_CHECK_NAMES = {
    "row": "a row's quantity x price",
    "rows_total": "rows vs total",
    "net_tax_total": "net + tax vs total",
}


@register.simple_tag
def result_checks(result: dict[str, Any] | None) -> SafeString:
    """A results-table row's checks cell: "reconciled", the check that failed (and by how much),
    or "—" when the fields allow no check."""
    checks = (result or {}).get("checks") or {}
    if checks.get("status") == "reconciled":
        return SafeString('<td data-label="Checks" class="reconciled">reconciled</td>')
    failures = checks.get("failures") or []
    if checks.get("status") == "failed" and failures:
        first = failures[0]
        more = f" (+{len(failures) - 1} more)" if len(failures) > 1 else ""
        return format_html(
            '<td data-label="Checks" class="check-failed" title="{}">failed: {} off by {}{}</td>',
            "; ".join(str(failure.get("message", "")) for failure in failures),
            _CHECK_NAMES.get(first.get("check", ""), first.get("check", "")),
            first.get("difference", "?"),
            more,
        )
    return SafeString('<td data-label="Checks"><span class="muted">—</span></td>')


# Each value's status as a mark beside it: a glyph for the eye, words for a screen reader and
# for the pointer's tooltip.
_MARKS = {
    "checked": ("✓✓", "checked: found on its page and passed an arithmetic check"),
    "found": ("✓", "found on its page in the document"),
    "unverified": ("?", "not found on its page in the document"),
    "invalid": ("!", "the answer did not validate"),
    "reviewed": ("✎", "reviewed by a person"),
}


def _mark(status: str, title: str) -> SafeString:
    glyph, words = _MARKS[status]
    return format_html(
        ' <span class="mark mark-{}" title="{}" aria-hidden="true">{}</span>'
        '<span class="visually-hidden"> ({})</span>',
        status,
        title or words,
        glyph,
        words,
    )


@register.simple_tag
def result_cells(result: dict[str, Any] | None, columns: list[Column]) -> SafeString:
    """A results-table row's cells, one per field: the value (a person's reviewed value
    instead of the machine's) with its status as a mark, "—" when there is none. Built here
    rather than in the template: the template loop took a third of the page's render time."""
    fields = (result or {}).get("fields") or {}
    cells = []
    for column in columns:
        cell = fields.get(column.name) or {}
        status = cell_status(cell)
        value = cell_value(cell)
        classes = ["value", status] + (["num"] if column.numeric else [])
        title = ""
        if status == "reviewed":
            review = cell.get("review") or {}
            machine = field_value(cell) if cell.get("value") is not None else "no value"
            title = f"Reviewed by {review.get('by')}; extracted: {machine}"
        if value is None or value == "":
            shown = SafeString('<span class="muted">—</span>')
            mark = _mark(status, title) if status in ("unverified", "invalid", "reviewed") else ""
        else:
            shown = format_html("{}", field_value({**cell, "value": value}))
            mark = _mark(status, title) if status in _MARKS else ""
        cells.append(
            format_html(
                '<td data-label="{}" class="{}">{}{}</td>',
                column.name,
                " ".join(classes),
                shown,
                mark,
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


@register.filter
def missing_summary(missing: dict[str, Any]) -> str:
    """The heat map's summary: "date missing in 2 documents, total in 1", or "every value
    present", and how many documents failed (they have no values at all)."""
    counts = [(name, missing["counts"].get(name, 0)) for name in missing["fields"]]
    lacking = [(name, count) for name, count in counts if count]
    failed = sum(1 for row in missing["documents"] if "failed" in row["values"])
    if not lacking:
        summary = "every value present" + (" in the documents read" if failed else "")
    else:
        (name, count), *rest = lacking
        first = f"{name} missing in {count} document{pluralize(count)}"
        summary = ", ".join([first, *(f"{name} in {count}" for name, count in rest)])
    return summary + (f"; {failed} document{pluralize(failed)} failed" if failed else "")


@register.filter
def get_item(mapping: dict[str, Any], key: str) -> Any:
    return mapping.get(key)


@register.filter
def sort_link(query: ResultsQuery, column: str) -> str:
    return query.sort_link(column)


@register.filter
def sorted_by(query: ResultsQuery, column: str) -> str:
    return query.sorted_by(column)


@register.filter
def at_page(query: ResultsQuery, page: int) -> str:
    return query.at_page(page)
