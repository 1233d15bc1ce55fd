from __future__ import annotations

import pytest

from extraction.fields import (
    MAX_FIELDS,
    InvalidFields,
    fields_from_json,
    fields_from_prompt,
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
        "Field 'total': unknown type 'money'; use one of string, number, date, boolean, list."
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
        ({"name": "total"}, 'Fields must be a list of {"name", "type", "description"} objects.'),
        ("total, date", 'Fields must be a list of {"name", "type", "description"} objects.'),
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
