"""The forms of the settings page's account sections (their rules are the services')."""

from __future__ import annotations

from django import forms

from batchsite.forms import InputForm


class ApiKeyForm(InputForm):
    name = forms.CharField(required=False)


class AccountDeleteForm(InputForm):
    email = forms.CharField(required=False)


class NotificationsForm(InputForm):
    notify_batch_email = forms.BooleanField(required=False)
