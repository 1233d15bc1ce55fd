"""The settings page's webhook form (its rules are `webhook_endpoint_create`'s, which checks the
plan before the URL and the events, as for the API)."""

from __future__ import annotations

from django import forms

from batchsite.forms import InputForm
from notifications.models import EventKind


class WebhookEndpointForm(InputForm):
    # Unbound, the form offers every event; bound, the page shows back what was sent.
    url = forms.CharField(required=False, initial="")
    events = forms.Field(
        required=False, initial=EventKind.values, widget=forms.CheckboxSelectMultiple
    )
