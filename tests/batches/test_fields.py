from __future__ import annotations

import pytest

from extraction.fields import (
    MAX_COLUMNS,
    MAX_FIELDS,
    InvalidFields,
    fields_from_json,
    fields_from_prompt,
    fields_to_text,
    parse_fields,
)


def spec(name: str, type_: str = "string", description: str = "") -> dict[str, str]:
    return {"name": name, "type": type_, "description": description}


def rejection_message(text: str) -> str:
    with pytest.raises(InvalidFields) as caught:
        parse_fields(text)
    return str(caught.value)


def test_an_empty_text_means_no_fields_so_they_come_from_the_prompt():
    assert parse_fields("") == []
    assert parse_fields("  \n \n") == []


def test_one_field_per_line_is_read_in_order_with_its_type_and_description():
    text = (
        "invoice number\nissue date:date\ntotal:number -- with currency\npaid:boolean\nitems:list"
    )

    assert parse_fields(text) == [
        spec("invoice number"),
        spec("issue date", "date"),
        spec("total", "number", "with currency"),
        spec("paid", "boolean"),
        spec("items", "list"),
    ]


def test_a_line_list_keeps_commas_inside_a_line():
    text = "supplier name, as printed\ntotal:number -- net, before VAT"

    assert parse_fields(text) == [
        spec("supplier name, as printed"),
        spec("total", "number", "net, before VAT"),
    ]


def test_without_a_newline_the_text_is_a_comma_list():
    assert parse_fields("invoice number, date:date, total:number -- gross") == [
        spec("invoice number"),
        spec("date", "date"),
        spec("total", "number", "gross"),
    ]


def test_blank_lines_and_empty_comma_items_are_skipped():
    assert parse_fields("\ninvoice number\n\n  \ntotal:number\n") == [
        spec("invoice number"),
        spec("total", "number"),
    ]
    assert parse_fields("a,, b ,") == [spec("a"), spec("b")]


def test_types_are_case_insensitive_and_whitespace_is_normalised():
    assert parse_fields("  Issue   Date : DATE  --   the   day it was issued ") == [
        spec("Issue Date", "date", "the day it was issued"),
    ]


def test_a_name_with_an_empty_type_is_a_string():
    assert parse_fields("reference:") == [spec("reference")]


def test_an_unknown_type_is_refused_naming_the_field_the_type_and_the_choices():
    message = rejection_message("invoice number\ntotal:money")

    assert message == (
        "Field 'total': unknown type 'money'; use one of string, number, date, boolean, list, "
        "table."
    )


def test_a_field_without_a_name_is_refused_with_its_position():
    assert rejection_message("invoice number\n:number") == "Field 2: a field needs a name."


def test_a_name_listed_twice_is_refused_whatever_its_case():
    assert rejection_message("Total:number\ninvoice number\ntotal") == (
        "Field 'total' is listed twice."
    )


def test_more_fields_than_allowed_are_refused():
    text = "\n".join(f"field {n}" for n in range(MAX_FIELDS + 1))

    assert rejection_message(text) == (
        f"At most {MAX_FIELDS} fields per batch; this has {MAX_FIELDS + 1}."
    )


def test_a_too_long_name_or_description_is_refused():
    assert "longer than 100 characters" in rejection_message("x" * 101)
    assert "longer than 500 characters" in rejection_message("total -- " + "y" * 501)


def test_a_json_list_of_objects_gives_the_same_specs_as_the_text_syntax():
    value = [
        {"name": "invoice number"},
        {"name": "issue date", "type": "date"},
        {"name": "total", "type": "number", "description": "with currency"},
        "supplier",
    ]

    assert fields_from_json(value) == parse_fields(
        "invoice number\nissue date:date\ntotal:number -- with currency\nsupplier"
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"name": "total"}, "Fields must be a list of {"),
        ("total, date", "Fields must be a list of {"),
        ([{"name": "total"}, 7], "Field 2: expected an object with a name."),
        ([{"type": "number"}], "Field 1: a field needs a name."),
        ([{"name": "total", "type": "money"}], "Field 'total': unknown type 'money'"),
        ([{"name": "total", "description": 3}], "Field 'total': the description must be text."),
        ([{"name": "total"}, {"name": "TOTAL"}], "Field 'TOTAL' is listed twice."),
    ],
)
def test_a_malformed_json_field_list_is_refused_with_a_specific_message(value, message):
    with pytest.raises(InvalidFields) as caught:
        fields_from_json(value)

    assert str(caught.value).startswith(message)


def test_fields_are_inferred_from_a_plain_language_prompt():
    names = [f["name"] for f in fields_from_prompt("invoice number, date and total")]

    assert names == ["invoice number", "date", "total"]


def test_prompt_inference_drops_the_leading_verb_articles_and_repeats():
    fields = fields_from_prompt("Please extract the invoice number; the date, a total and Date.")

    assert fields == [spec("invoice number"), spec("date", "date"), spec("total", "number")]


def test_inferred_fields_get_a_type_from_their_name():
    fields = fields_from_prompt(
        "invoice number, issue date, total with currency, supplier VAT id, due date, notes"
    )

    assert [(f["name"], f["type"]) for f in fields] == [
        ("invoice number", "string"),
        ("issue date", "date"),
        ("total with currency", "number"),
        ("supplier VAT id", "string"),
        ("due date", "date"),
        ("notes", "string"),
    ]


LINE_ITEMS = {
    "name": "line items",
    "type": "table",
    "description": "one row per invoice line",
    "columns": [
        {"name": "description", "type": "string", "description": ""},
        {"name": "quantity", "type": "number", "description": ""},
        {"name": "unit price", "type": "number", "description": ""},
        {"name": "amount", "type": "number", "description": ""},
    ],
}


def test_a_table_field_is_read_with_its_typed_columns_in_order():
    text = (
        "invoice number\n"
        "line items: table(description; quantity:number; unit price:number; amount:number)"
        " -- one row per invoice line"
    )

    assert parse_fields(text) == [spec("invoice number"), LINE_ITEMS]


def test_a_column_may_carry_its_own_description():
    [field] = parse_fields("items: table(sku -- the article code; qty:Number) -- per line")

    assert field["description"] == "per line"
    assert field["columns"] == [
        {"name": "sku", "type": "string", "description": "the article code"},
        {"name": "qty", "type": "number", "description": ""},
    ]


def test_a_bang_marks_a_field_required_and_plain_fields_keep_their_old_shape():
    fields = parse_fields("invoice number!\ntotal!:number -- gross\nnotes")

    assert fields == [
        {**spec("invoice number"), "required": True},
        {**spec("total", "number", "gross"), "required": True},
        spec("notes"),
    ]
    assert "required" not in fields[2] and "columns" not in fields[2]


def test_a_table_in_the_comma_form_is_refused_saying_it_needs_one_field_per_line():
    message = rejection_message("invoice number, line items: table(description; amount:number)")

    assert "needs the one-field-per-line form" in message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("items: table()", "Field 'items': a table needs at least one column."),
        ("items: table(a; A)", "Field 'items', column 'A' is listed twice."),
        (
            "items: table(a; b:list)",
            "Field 'items', column 'b': unknown type 'list'; use one of string, number, date, "
            "boolean.",
        ),
        ("items: table(a; b", "Field 'items': write a table's columns in parentheses"),
        (
            "items: table(" + "; ".join(f"c{n}" for n in range(MAX_COLUMNS + 1)) + ")",
            f"Field 'items': at most {MAX_COLUMNS} columns per table; this has {MAX_COLUMNS + 1}.",
        ),
    ],
)
def test_a_bad_table_is_refused_naming_the_field_and_the_column(text, message):
    assert rejection_message(text).startswith(message)


def test_every_problem_of_a_field_list_is_reported_in_order():
    message = rejection_message(
        "total:money\n:number\nitems: table(a; a)\ndate:date\nDATE\nlines: table()"
    )

    assert message == (
        "5 problems in the fields: "
        "Field 'total': unknown type 'money'; use one of string, number, date, boolean, list, "
        "table. "
        "Field 2: a field needs a name. "
        "Field 'items', column 'a' is listed twice. "
        "Field 'lines': a table needs at least one column. "
        "Field 'DATE' is listed twice."
    )


def test_every_problem_is_kept_apart_on_the_exception():
    with pytest.raises(InvalidFields) as caught:
        fields_from_json([{"name": "a", "type": "x"}, 3, {"name": "t", "type": "table"}])

    assert caught.value.problems == [
        "Field 'a': unknown type 'x'; use one of string, number, date, boolean, list, table.",
        "Field 2: expected an object with a name.",
        "Field 't': a table needs at least one column.",
    ]


def test_a_json_table_and_required_field_give_the_same_specs_as_the_text():
    value = [
        {"name": "invoice number", "required": True},
        {**LINE_ITEMS, "columns": [{"name": "description"}, *LINE_ITEMS["columns"][1:]]},
    ]

    assert fields_from_json(value) == parse_fields(
        "invoice number!\n"
        "line items: table(description; quantity:number; unit price:number; amount:number)"
        " -- one row per invoice line"
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([{"name": "total", "columns": ["a"]}], "Field 'total': only a table field has columns."),
        ([{"name": "total", "required": "yes"}], "Field 'total': required must be true or false."),
        ([{"name": "total!"}], 'Field 1: in JSON, mark a required field with "required": true.'),
        (
            [{"name": "t", "type": "table", "columns": [{"name": "a", "description": 1}]}],
            "Field 't', column 'a': the description must be text.",
        ),
    ],
)
def test_json_only_fields_are_refused_with_a_specific_message(value, message):
    with pytest.raises(InvalidFields) as caught:
        fields_from_json(value)

    assert str(caught.value) == message


def test_fields_to_text_reads_back_into_the_same_fields():
    fields = [
        {**spec("invoice number"), "required": True},
        {**spec("issue date", "date", "the day it was issued")},
        {**LINE_ITEMS, "required": True, "columns": [
            {"name": "sku", "type": "string", "description": "article code"},
            *LINE_ITEMS["columns"][1:],
        ]},
        spec("tags", "list"),
    ]  # fmt: skip

    text = fields_to_text(fields)

    assert text.splitlines()[0] == "invoice number!"
    assert text.splitlines()[2] == (
        "line items!: table(sku -- article code; quantity:number; unit price:number; "
        "amount:number) -- one row per invoice line"
    )
    assert parse_fields(text) == fields


def test_a_prompt_asking_for_line_items_infers_a_table():
    fields = fields_from_prompt("invoice number, total and the line items")

    assert fields == [spec("invoice number"), spec("total", "number"), LINE_ITEMS]


@pytest.mark.parametrize("wording", ["positions", "a table of items", "the items"])
def test_other_words_for_line_items_infer_the_same_table(wording):
    assert fields_from_prompt(f"invoice number and {wording}")[-1] == LINE_ITEMS


def test_parentheses_in_descriptions_do_not_end_a_table_early():
    fields = parse_fields("items: table(sku -- code (EAN); qty:number) -- rows (all)\nnotes (a)")

    assert fields[0]["description"] == "rows (all)"
    assert fields[0]["columns"][0] == {"name": "sku", "type": "string", "description": "code (EAN)"}
    assert fields[1] == spec("notes (a)")


def test_a_lone_table_field_needs_no_newline():
    assert parse_fields("items: table(a; b:number)")[0]["columns"][1]["type"] == "number"
