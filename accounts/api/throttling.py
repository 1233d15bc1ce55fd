"""Per-plan request rates for the REST API (`Plan.api_requests_per_minute`)."""

from __future__ import annotations

import time
from typing import Any

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.exceptions import Throttled
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from accounts.models import ApiRequestMinute, User
from accounts.selectors import user_effective_plan

WINDOW_SECONDS = 60


class PlanRateThrottle(BaseThrottle):
    """Counts each user's API requests per clock minute, atomically, so that concurrent
    requests (threads, gunicorn workers, web nodes) never let more than the plan's number
    through in a minute.

    Where they are counted follows the cache: Redis (`REDIS_URL`) counts with INCR, and spares
    the database a write per request; otherwise a counter row per user and minute in the
    database (`ApiRequestMinute`), because the database cache's `incr` is a read then a write
    and lets concurrent requests through together. Anonymous requests are not counted:
    authentication runs first and answers 401.
    """

    def allow_request(self, request: Request, view: Any) -> bool:
        user = request.user
        if not isinstance(user, User):
            return True
        plan = user_effective_plan(user).plan
        now = time.time()
        minute = int(now // WINDOW_SECONDS)
        count = _count(user_id=user.pk, minute=minute)
        if count <= plan.api_requests_per_minute:
            return True
        raise Throttled(
            wait=(minute + 1) * WINDOW_SECONDS - now,
            detail=f"Over the {plan.name} plan's {plan.api_requests_per_minute} API requests "
            "a minute.",
        )


def _count(*, user_id: int, minute: int) -> int:
    """This request's number in the user's minute."""
    cache = caches["default"]
    if not isinstance(cache, RedisCache):
        return ApiRequestMinute.objects.count_request(user_id=user_id, minute=minute)
    key = f"sheaf:api-throttle:{user_id}:{minute * WINDOW_SECONDS}"
    timeout = WINDOW_SECONDS * 2
    # Redis's INCR and SET NX are atomic. Increment first: a minute's first request is the only
    # one that needs the `add`.
    for _ in range(2):
        try:
            return cache.incr(key)
        except ValueError:  # a new minute
            if cache.add(key, 1, timeout=timeout):
                return 1
    cache.set(key, 1, timeout=timeout)  # it expired between our add and incr
    return 1
