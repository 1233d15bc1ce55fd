from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from accounts.models import Subscription
from accounts.selectors import user_effective_plan


def plan(request: HttpRequest) -> dict[str, Any]:
    """The signed-in user's effective plan, for the navigation bar (evaluated only when used)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "current_plan": lambda: user_effective_plan(user).plan,
        # Only while the grace period keeps the plan; after it the user is simply on Free.
        "billing_past_due": lambda: (
            user_effective_plan(user).source == "subscription"
            and Subscription.objects.filter(user=user, status=Subscription.Status.PAST_DUE).exists()
        ),
    }
