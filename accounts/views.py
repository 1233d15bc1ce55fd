from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts.billing.services import billing_enabled
from accounts.forms import AccountDeleteForm, ApiKeyForm, NotificationsForm
from accounts.http import AuthenticatedHttpRequest
from accounts.plans import all_plans
from accounts.selectors import api_key_list_for_user, user_effective_plan, user_usage
from accounts.services import (
    api_key_create,
    api_key_revoke,
    user_delete,
    user_set_notify_batch_email,
)
from batchsite.errors import Rejected
from notifications.forms import WebhookEndpointForm
from notifications.models import SUBSCRIBABLE_EVENTS
from notifications.selectors import webhook_delivery_list_for_user, webhook_endpoint_list_for_user


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("dashboard")
    return render(request, "home.html", {"plans": all_plans()})


@require_GET
def pricing(request: HttpRequest) -> HttpResponse:
    current = user_effective_plan(request.user).plan if request.user.is_authenticated else None
    context = {"plans": all_plans(), "current": current, "billing_enabled": billing_enabled()}
    return render(request, "accounts/pricing.html", context)


def settings_page(
    request: AuthenticatedHttpRequest, *, status: int = 200, **shown: object
) -> HttpResponse:
    """The settings page, with the sections other apps keep there (webhooks); a section's POST
    view answers with it when it has something to show once (a new secret, an error next to its
    form, a form to fill again), passed as `shown`."""
    context = {
        "effective": user_effective_plan(request.user),
        "usage": user_usage(request.user),
        "api_keys": api_key_list_for_user(user=request.user),
        "new_key": "",
        "key_error": "",
        "delete_error": "",
        "webhook_endpoints": webhook_endpoint_list_for_user(user=request.user),
        "webhook_deliveries": webhook_delivery_list_for_user(user=request.user),
        "webhook_events": SUBSCRIBABLE_EVENTS,
        "webhook_form": WebhookEndpointForm(),
        **shown,
    }
    return render(request, "accounts/settings.html", context, status=status)


@login_required
@require_GET
def account_settings(request: AuthenticatedHttpRequest) -> HttpResponse:
    return settings_page(request)


@login_required
@require_POST
def api_key_new(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Create a key and show its secret on this one response only (never stored, never sent
    again, so it does not go through messages or a redirect)."""
    sent = ApiKeyForm(request.POST).sent()
    try:
        _, secret = api_key_create(user=request.user, name=sent["name"])
    except Rejected as rejection:
        return settings_page(request, key_error=rejection.problems[0].message, status=400)
    return settings_page(request, new_key=secret)


@login_required
@require_POST
def api_key_delete(request: AuthenticatedHttpRequest, key_id: int) -> HttpResponse:
    key = api_key_revoke(user=request.user, key_id=key_id)
    messages.success(request, f"API key “{key.name}” revoked.")
    return redirect("settings")


@login_required
@require_POST
def account_delete(request: AuthenticatedHttpRequest) -> HttpResponse:
    sent = AccountDeleteForm(request.POST).sent()
    try:
        user_delete(user=request.user, confirm_email=sent["email"])
    except Rejected as rejection:
        problem = rejection.problems[0]
        return settings_page(request, delete_error=problem.message, status=problem.http_status)
    logout(request)
    messages.success(request, "Your account, its batches and its files were deleted.")
    return redirect("home")


@login_required
@require_POST
def notifications_update(request: AuthenticatedHttpRequest) -> HttpResponse:
    enabled = NotificationsForm(request.POST).sent()["notify_batch_email"]
    user_set_notify_batch_email(user=request.user, enabled=enabled)
    messages.success(
        request,
        "You will get an email when a batch finishes."
        if enabled
        else "No more emails when batches finish.",
    )
    return redirect("settings")
