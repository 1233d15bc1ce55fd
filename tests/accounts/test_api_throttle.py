from __future__ import annotations

import pytest
from django.core.cache import cache
from django.test import Client

from accounts.services import api_key_create


def bearer(user) -> Client:
    _, secret = api_key_create(user=user, name="throttle")
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}")


@pytest.fixture(autouse=True)
def low_rates(db, settings):
    """Counts live in the cache, which a Redis test run keeps between tests: start from none."""
    cache.clear()
    settings.SHEAF_PLAN_LIMITS = {
        "free": {"api_requests_per_minute": 3},
        "plus": {"api_requests_per_minute": 10},
    }
    yield
    cache.clear()


def test_a_free_user_over_their_rate_gets_429_with_retry_after(frank):
    client = bearer(frank)

    answered = [client.get("/api/v1/me/") for _ in range(3)]
    throttled = client.get("/api/v1/batches/")

    assert [r.status_code for r in answered] == [200, 200, 200]
    assert throttled.status_code == 429
    body = throttled.json()
    assert body["code"] == "rate_limited"
    assert body["detail"].startswith("Over the Free plan's 3 API requests a minute.")
    assert 1 <= int(throttled["Retry-After"]) <= 60


def test_a_plus_user_with_the_same_count_is_not_throttled(alice):
    client = bearer(alice)

    responses = [client.get("/api/v1/me/") for _ in range(4)]

    assert [r.status_code for r in responses] == [200, 200, 200, 200]
    assert responses[-1].json()["email"] == "alice@example.com"


def test_each_user_has_their_own_count(frank, alice):
    frank_client = bearer(frank)
    for _ in range(3):
        frank_client.get("/api/v1/me/")

    assert frank_client.get("/api/v1/me/").status_code == 429
    assert bearer(alice).get("/api/v1/me/").json()["plan"]["key"] == "plus"


def test_a_throttled_upload_stores_nothing(frank, media_files):
    client = bearer(frank)
    for _ in range(3):
        client.get("/api/v1/me/")

    response = client.post("/api/v1/batches/", {"prompt": "total", "files": []})

    assert response.json()["code"] == "rate_limited"
    assert frank.batches.count() == 0
    assert media_files() == []


def test_me_shows_the_plans_request_rate(alice, frank):
    assert bearer(alice).get("/api/v1/me/").json()["limits"]["api_requests_per_minute"] == 10
    assert bearer(frank).get("/api/v1/me/").json()["limits"]["api_requests_per_minute"] == 3


def test_the_default_rates_rise_with_the_plan(settings, frank, alice, grace):
    settings.SHEAF_PLAN_LIMITS = {}

    rates = [
        bearer(user).get("/api/v1/me/").json()["limits"]["api_requests_per_minute"]
        for user in (frank, alice, grace)
    ]

    assert rates == [60, 300, 1200]
