"""GET|POST /api/v1/webhooks/ and DELETE /api/v1/webhooks/<id>/."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.services import api_key_create
from notifications.models import WebhookEndpoint
from notifications.services import webhook_endpoint_create

pytestmark = pytest.mark.django_db


def bearer(user) -> Client:
    _, secret = api_key_create(user=user, name="ci")
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}")


@pytest.fixture
def alices_endpoint(alice, settings) -> WebhookEndpoint:
    settings.SHEAF_WEBHOOK_ALLOW_PRIVATE = True
    return webhook_endpoint_create(
        user=alice, url="http://127.0.0.1:9/hook", events=["batch.completed"]
    )


def test_creating_an_endpoint_returns_its_secret_once(alice, settings):
    settings.SHEAF_WEBHOOK_ALLOW_PRIVATE = True
    api = bearer(alice)

    response = api.post(
        "/api/v1/webhooks/",
        {"url": "http://127.0.0.1:9/hook", "events": ["batch.failed", "batch.completed"]},
        content_type="application/json",
    )

    assert response.status_code == 201
    body = response.json()
    endpoint = WebhookEndpoint.objects.get(user=alice)
    assert body == {
        "id": endpoint.pk,
        "url": "http://127.0.0.1:9/hook",
        "events": ["batch.completed", "batch.failed"],
        "created_at": body["created_at"],
        "secret": endpoint.secret,
    }
    assert body["secret"].startswith("whsec_")
    listed = api.get("/api/v1/webhooks/").json()
    assert listed["count"] == 1
    assert listed["results"] == [
        {
            "id": endpoint.pk,
            "url": "http://127.0.0.1:9/hook",
            "events": ["batch.completed", "batch.failed"],
            "created_at": body["created_at"],
        }
    ]


def test_events_left_out_subscribe_to_all_of_them(alice, settings):
    settings.SHEAF_WEBHOOK_ALLOW_PRIVATE = True

    response = bearer(alice).post("/api/v1/webhooks/", {"url": "http://127.0.0.1:9/"})

    assert response.status_code == 201
    assert response.json()["events"] == [
        "batch.completed",
        "batch.failed",
        "batch.paused",
        "document.failed",
    ]


def test_an_unknown_event_is_refused(alice, settings):
    settings.SHEAF_WEBHOOK_ALLOW_PRIVATE = True

    response = bearer(alice).post(
        "/api/v1/webhooks/",
        {"url": "http://127.0.0.1:9/", "events": ["batch.exploded"]},
        content_type="application/json",
    )

    assert response.status_code == 400
    assert response.json() == {
        "code": "invalid",
        "detail": "Unknown event 'batch.exploded'; choose from batch.started, batch.progress, "
        "document.completed, document.failed, batch.paused, batch.resumed, batch.completed, "
        "batch.failed, batch.canceled.",
    }
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize(
    ("url", "detail"),
    [
        (
            "http://169.254.169.254/latest/meta-data/",
            "169.254.169.254 is a link-local address; webhooks may only reach public addresses.",
        ),
        (
            "http://10.0.0.1/",
            "10.0.0.1 is a private address; webhooks may only reach public addresses.",
        ),
        ("gopher://example.com/", "Webhook URLs must start with http:// or https://."),
    ],
)
def test_a_private_or_non_http_url_is_refused_with_a_reason(alice, url, detail):
    response = bearer(alice).post("/api/v1/webhooks/", {"url": url})

    assert response.status_code == 400
    assert response.json() == {"code": "invalid_url", "detail": detail}
    assert not WebhookEndpoint.objects.exists()


def test_the_free_plan_may_not_create_webhooks(frank, settings):
    settings.SHEAF_WEBHOOK_ALLOW_PRIVATE = True

    response = bearer(frank).post("/api/v1/webhooks/", {"url": "http://127.0.0.1:9/"})

    assert response.status_code == 403
    assert response.json() == {
        "code": "plan_limit",
        "detail": "Outgoing webhooks are part of the Plus and Growth plans; your plan is Free.",
    }
    assert not WebhookEndpoint.objects.exists()


def test_deleting_an_endpoint(alice, alices_endpoint):
    api = bearer(alice)

    response = api.delete(f"/api/v1/webhooks/{alices_endpoint.pk}/")

    assert response.status_code == 204
    assert not WebhookEndpoint.objects.exists()
    assert api.get("/api/v1/webhooks/").json()["count"] == 0


def test_another_users_endpoint_is_not_found_and_not_listed(bob, alices_endpoint):
    api = bearer(bob)

    response = api.delete(f"/api/v1/webhooks/{alices_endpoint.pk}/")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert WebhookEndpoint.objects.filter(pk=alices_endpoint.pk).exists()
    assert api.get("/api/v1/webhooks/").json() == {
        "count": 0,
        "next": None,
        "previous": None,
        "results": [],
    }


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/webhooks/"),
        ("post", "/api/v1/webhooks/"),
        ("delete", "/api/v1/webhooks/1/"),
    ],
)
def test_anonymous_calls_are_401(db, client, method, path):
    response = getattr(client, method)(path)

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert response["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("put", "/api/v1/webhooks/"),
        ("delete", "/api/v1/webhooks/"),
        ("get", "/api/v1/webhooks/{id}/"),
    ],
)
def test_other_methods_are_405(alice, alices_endpoint, method, path):
    response = getattr(bearer(alice), method)(path.format(id=alices_endpoint.pk))

    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
    assert WebhookEndpoint.objects.filter(pk=alices_endpoint.pk).exists()
