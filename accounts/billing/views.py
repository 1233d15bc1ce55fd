from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from accounts.billing import services
from accounts.billing.stripe_client import BillingError, InvalidSignature, MalformedEvent
from accounts.http import AuthenticatedHttpRequest
from accounts.models import Subscription
from accounts.plans import all_plans
from accounts.selectors import user_effective_plan, user_usage


@login_required
@require_GET
def billing(request: AuthenticatedHttpRequest) -> HttpResponse:
    effective = user_effective_plan(request.user)
    subscription = Subscription.objects.filter(user=request.user).first()
    checkout = request.GET.get("checkout")
    if checkout == "success":
        messages.success(request, "Thank you! Your plan changes as soon as Stripe confirms it.")
    elif checkout == "canceled":
        messages.info(request, "Checkout was canceled; nothing changed.")
    return render(
        request,
        "accounts/billing.html",
        {
            "effective": effective,
            "usage": user_usage(request.user),
            "subscription": subscription,
            "plans": all_plans(),
            "billing_enabled": services.billing_enabled(),
        },
    )


def _to_stripe(request: HttpRequest, start: Callable[[], str], failure: str) -> HttpResponse:
    """Redirect to a Stripe page made by `start`, or back to /billing/ with a message."""
    if not services.billing_enabled():
        messages.error(request, "Plans cannot be bought here yet; nothing changed.")
        return redirect("billing")
    try:
        return HttpResponseRedirect(start())
    except BillingError as exc:
        messages.error(request, f"{failure}: {exc}")
        return redirect("billing")


@login_required
@require_POST
def billing_checkout(request: AuthenticatedHttpRequest) -> HttpResponse:
    plan_key = request.POST.get("plan", "")
    return _to_stripe(
        request,
        lambda: services.checkout_start(user=request.user, plan_key=plan_key),
        "Could not start Checkout",
    )


@login_required
@require_POST
def billing_portal(request: AuthenticatedHttpRequest) -> HttpResponse:
    return _to_stripe(
        request,
        lambda: services.portal_start(user=request.user),
        "Could not open the billing portal",
    )


@csrf_exempt
@require_POST
def billing_webhook(request: HttpRequest) -> HttpResponse:
    """Stripe's webhook: the signature is checked on the raw bytes; duplicates and event types
    Sheaf ignores still answer 200 so Stripe stops sending them."""
    if not services.billing_enabled():
        return JsonResponse({"detail": "billing is off"}, status=404)
    try:
        event = services.webhook_receive(
            payload=request.body, signature=request.headers.get("Stripe-Signature", "")
        )
    except InvalidSignature:
        return JsonResponse({"detail": "invalid signature"}, status=400)
    except MalformedEvent as exc:
        return JsonResponse({"detail": str(exc)}, status=400)
    if event is None:
        return JsonResponse({"received": True, "duplicate": True})
    return JsonResponse({"received": True, "status": event.status})
