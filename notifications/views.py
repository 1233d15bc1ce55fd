"""The webhook section of the settings page (the page itself is accounts')."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts.http import AuthenticatedHttpRequest
from accounts.views import settings_page
from batchsite.errors import Rejected
from notifications.forms import WebhookEndpointForm
from notifications.services import (
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_ping,
    webhook_redeliver,
)

T = TypeVar("T")


@login_required
@require_POST
def webhook_new(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Register an endpoint and show its signing secret on this one response only."""
    form = WebhookEndpointForm(request.POST)
    sent = form.sent()
    try:
        endpoint = webhook_endpoint_create(
            user=request.user, url=sent["url"], events=sent["events"]
        )
    except Rejected as rejection:
        return settings_page(
            request,
            status=rejection.http_status,
            webhook_error=rejection.problems[0].message,
            webhook_form=form,
        )
    return settings_page(request, new_webhook_secret=endpoint.secret, new_webhook_url=endpoint.url)


@login_required
@require_POST
def webhook_delete(request: AuthenticatedHttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = webhook_endpoint_delete(user=request.user, endpoint_id=endpoint_id)
    messages.success(request, f"Webhook endpoint {endpoint.url} deleted.")
    return redirect("settings")


def _on_webhooks(
    request: AuthenticatedHttpRequest, act: Callable[[], T], said: Callable[[T], str]
) -> HttpResponse:
    """Do `act` and say what it did (or why it was refused) on the settings page's webhooks."""
    try:
        done = act()
    except Rejected as rejection:
        messages.error(request, rejection.problems[0].message)
    else:
        messages.success(request, said(done))
    return redirect(reverse("settings") + "#webhooks")


@login_required
@require_POST
def webhook_ping_send(request: AuthenticatedHttpRequest, endpoint_id: int) -> HttpResponse:
    """ "Send a test event": a `ping` to this endpoint, its delivery in the log below."""
    return _on_webhooks(
        request,
        lambda: webhook_ping(user=request.user, endpoint_id=endpoint_id),
        lambda delivery: (
            f"A test event (ping) is on its way to {delivery.endpoint.url}: see the delivery log."
        ),
    )


@login_required
@require_POST
def webhook_delivery_redeliver(request: AuthenticatedHttpRequest, delivery_id: int) -> HttpResponse:
    return _on_webhooks(
        request,
        lambda: webhook_redeliver(user=request.user, delivery_id=delivery_id),
        lambda delivery: (
            f"The {delivery.event.kind} delivery to {delivery.endpoint.url} is sent again."
        ),
    )
