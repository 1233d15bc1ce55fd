"""The webhook section of the settings page (the page itself is accounts')."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from accounts.http import AuthenticatedHttpRequest
from accounts.views import settings_page
from batchsite.errors import Rejected
from notifications.forms import WebhookEndpointForm
from notifications.services import webhook_endpoint_create, webhook_endpoint_delete


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
