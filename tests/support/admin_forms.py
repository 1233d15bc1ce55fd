"""What a staff member's browser would send back from an admin change form."""

from __future__ import annotations


def admin_form_data(response) -> dict[str, object]:
    """The POST data the admin change form would send as rendered (every initial value)."""
    data: dict[str, object] = {}
    forms = [response.context["adminform"].form]
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        forms += [formset.management_form, *formset.forms]
    for form in forms:
        for name, field in form.fields.items():
            if field.disabled:
                continue
            value = form[name].value()
            if value is None or value is False:
                continue
            data[form.add_prefix(name)] = value
    return data
