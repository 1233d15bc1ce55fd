"""The base of forms that only read what was sent, for actions whose every rule is a service's."""

from __future__ import annotations

from typing import Any

from django import forms


class InputForm(forms.Form):
    """A form with no rules of its own: the service it feeds checks everything, for the API and
    the CLI too, so a rule is enforced once and a refusal reads the same everywhere. Its fields
    are all optional and unbounded, so what was sent is always valid input."""

    def sent(self) -> dict[str, Any]:
        """What was sent, as the fields read it (stripped text, a checkbox as a bool)."""
        self.full_clean()
        return self.cleaned_data
