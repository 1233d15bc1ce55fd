"""The per-plan API rate holds when one user's requests arrive together, on every counting backend.

A live server answers on real threads, as the threaded development server does (and, like
several gunicorn workers, each thread has its own database connection), so the counts race the
way they do in production.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest
from django.core.cache import cache
from django.core.management import call_command

from accounts.api import throttling
from accounts.api.throttling import WINDOW_SECONDS
from accounts.models import ApiRequestMinute, User
from accounts.services import api_key_create

CLIENTS = 20
REQUESTS = 600

COUNTERS = {
    "database": {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "sheaf_cache",
        }
    },
    "redis": {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ.get("REDIS_URL", ""),
        }
    },
}


@pytest.fixture(params=sorted(COUNTERS))
def counter(request: pytest.FixtureRequest, settings, transactional_db) -> Iterator[str]:
    """The cache that decides where requests are counted: the database, or Redis when set."""
    if request.param == "redis" and not os.environ.get("REDIS_URL"):
        pytest.skip("REDIS_URL is not set")
    settings.CACHES = COUNTERS[request.param]
    if request.param == "database":
        call_command("createcachetable", verbosity=0)  # absent when the run's cache is Redis
    cache.clear()
    yield request.param
    cache.clear()


def _fire(url: str, secret: str) -> list[tuple[int, dict[str, str], dict[str, str]]]:
    """REQUESTS requests from CLIENTS threads at once; (status, body, headers) of each."""

    def one(_: int) -> tuple[int, dict[str, str], dict[str, str]]:
        headers = {"Authorization": f"Bearer {secret}"}
        request = urllib.request.Request(url, headers=headers)  # noqa: S310 (the live server)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
                return response.status, json.load(response), dict(response.headers)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error), dict(error.headers)

    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        return list(pool.map(one, range(REQUESTS)))


def test_600_requests_from_20_clients_get_at_most_the_plans_300(
    counter: str, live_server, alice: User, settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.SHEAF_PLAN_LIMITS = {}  # the Plus plan's own 300 a minute
    url = live_server.url + "/api/v1/me/"
    # Counts are per clock minute, and a burst that straddles two minutes may rightly pass twice
    # over; on a busy machine the burst can take longer than a minute. The live server runs in
    # this process, so its clock is held in the middle of one minute for the whole burst.
    held = (time.time() // WINDOW_SECONDS) * WINDOW_SECONDS + WINDOW_SECONDS / 2
    monkeypatch.setattr(throttling, "time", SimpleNamespace(time=lambda: held))
    _, secret = api_key_create(user=alice, name="burst")

    responses = _fire(url, secret)

    statuses = Counter(status for status, _, _ in responses)
    assert statuses == {200: 300, 429: 300}, f"counting on the {counter}"
    refused = [(body, headers) for status, body, headers in responses if status == 429]
    assert {body["code"] for body, _ in refused} == {"rate_limited"}
    assert all(1 <= int(headers["Retry-After"]) <= 60 for _, headers in refused)


def test_the_database_keeps_only_each_users_current_minute(alice: User, bob: User) -> None:
    """Without Redis every request writes a counter row; the table must not grow with time."""
    for minute in (1000, 1000, 1001):
        ApiRequestMinute.objects.count_request(user_id=alice.pk, minute=minute)
    ApiRequestMinute.objects.count_request(user_id=bob.pk, minute=999)

    rows = ApiRequestMinute.objects.values_list("user__email", "minute", "requests")
    assert sorted(rows) == [("alice@example.com", 1001, 1), ("bob@example.com", 999, 1)]
