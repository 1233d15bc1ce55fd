from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from accounts.plans import all_plans
from accounts.selectors import user_effective_plan, user_usage


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("dashboard")
    return render(request, "home.html", {"plans": all_plans()})


@require_GET
def pricing(request: HttpRequest) -> HttpResponse:
    current = user_effective_plan(request.user).plan if request.user.is_authenticated else None
    return render(request, "accounts/pricing.html", {"plans": all_plans(), "current": current})


@login_required
@require_GET
def account_settings(request: HttpRequest) -> HttpResponse:
    effective = user_effective_plan(request.user)
    return render(
        request,
        "accounts/settings.html",
        {"effective": effective, "usage": user_usage(request.user)},
    )
