"""JSON becomes readable, escaped HTML tables for staff (batchsite.json_tables)."""

from __future__ import annotations

from batchsite.json_tables import MAX_COLUMNS, json_table


def test_a_table_fields_rows_become_a_table_inside_its_cell():
    result = {
        "invoice number": {"value": "INV-9", "status": "found"},
        "line items": {
            "value": [
                {"description": "Widgets", "amount": 1000},
                {"description": "Delivery", "amount": 23.5},
            ],
            "status": "found",
        },
    }

    html = json_table(result)

    assert '<th scope="col"></th><th scope="col">value</th><th scope="col">status</th>' in html
    assert '<th scope="row">invoice number</th><td>INV-9</td><td>found</td>' in html
    assert "<tr><td>Delivery</td><td>23.5</td></tr>" in html


def test_keys_and_values_are_escaped():
    html = json_table({"<img src=x onerror=alert(1)>": ['"><script>1</script>']})

    assert "<img" not in html and "<script>" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<li>&quot;&gt;&lt;script&gt;1&lt;/script&gt;</li>" in html


def test_wide_objects_are_shown_one_at_a_time_as_keys_and_values():
    wide = {f"key{i}": i for i in range(MAX_COLUMNS + 1)}

    html = json_table([wide, wide])

    assert '<th scope="col">' not in html
    assert html.count('<th scope="row">key0</th><td>0</td>') == 2


def test_empty_and_plain_values_read_as_text():
    assert json_table(None) == '<span class="sheaf-json-empty">-</span>'
    assert json_table([]) == '<span class="sheaf-json-empty">-</span>'
    assert json_table(True) == "yes"
    assert json_table({"ok": False}) == (
        '<table class="sheaf-json"><tbody><tr><th scope="row">ok</th><td>no</td></tr></tbody>'
        "</table>"
    )
