"""The settings page's webhook form (its rules are `webhook_endpoint_create`'s, which checks the
plan before the URL and the events, as for the API)."""

from __future__ import annotations

from django import forms

from batchsite.forms import InputForm
from notifications.models import DEFAULT_WEBHOOK_EVENTS


class WebhookEndpointForm(InputForm):
    # Unbound, the form checks the default events (every one is offered); bound, the page shows
    # back what was sent.
    url = forms.CharField(required=False, initial="")
    events = forms.Field(
        required=False, initial=list(DEFAULT_WEBHOOK_EVENTS), widget=forms.CheckboxSelectMultiple
    )
