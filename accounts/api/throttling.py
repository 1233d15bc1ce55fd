"""Per-plan request rates for the REST API (`Plan.api_requests_per_minute`)."""

from __future__ import annotations

import time
from typing import Any

from django.core.cache import cache
from rest_framework.exceptions import Throttled
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from accounts.models import User
from accounts.selectors import user_effective_plan

WINDOW_SECONDS = 60


class PlanRateThrottle(BaseThrottle):
    """Counts each user's API requests per clock minute in the cache (database or Redis).

    A fixed window counted with ``incr``, which Redis does atomically, so web processes sharing it
    never let more than the plan's number through in a minute. (The database cache's ``incr`` is
    a read then a write: under concurrency a few extra requests can pass, as with DRF's own
    throttles.) Anonymous requests are not counted: authentication runs first and answers 401.
    """

    def allow_request(self, request: Request, view: Any) -> bool:
        user = request.user
        if not isinstance(user, User):
            return True
        plan = user_effective_plan(user).plan
        now = time.time()
        window_start = int(now // WINDOW_SECONDS) * WINDOW_SECONDS
        key = f"sheaf:api-throttle:{user.pk}:{window_start}"
        count = self._count(key)
        if count <= plan.api_requests_per_minute:
            return True
        raise Throttled(
            wait=window_start + WINDOW_SECONDS - now,
            detail=f"Over the {plan.name} plan's {plan.api_requests_per_minute} API requests "
            "a minute.",
        )

    @staticmethod
    def _count(key: str) -> int:
        """This request's number in its window. Increment first: on the database cache every
        call is a write, and a window's first request is the only one that needs the `add`."""
        timeout = WINDOW_SECONDS * 2
        for _ in range(2):
            try:
                return cache.incr(key)
            except ValueError:  # a new window
                if cache.add(key, 1, timeout=timeout):
                    return 1
        cache.set(key, 1, timeout=timeout)  # it expired between our add and incr
        return 1
