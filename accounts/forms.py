"""The forms of the settings page's account sections (their rules are the services'), and the
sign-in form in Sheaf's words."""

from __future__ import annotations

from typing import Any

from allauth.account.forms import LoginForm
from django import forms

from batchsite.forms import InputForm


class SignInForm(LoginForm):  # type: ignore[misc]  # allauth is untyped
    """allauth's sign-in form, its checkbox in sentence case as the rest of Sheaf."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "remember" in self.fields:
            self.fields["remember"].label = "Remember me"


class ApiKeyForm(InputForm):
    name = forms.CharField(required=False)


class AccountDeleteForm(InputForm):
    email = forms.CharField(required=False)


class NotificationsForm(InputForm):
    notify_batch_email = forms.BooleanField(required=False)
