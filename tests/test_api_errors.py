"""Every answer under /api/v1/ is JSON, even the ones no DRF view gives (batchsite/api.py)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import path

import batchsite.urls
from accounts.services import api_key_create


def bearer(user) -> Client:
    _, secret = api_key_create(user=user, name="errors")
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}", raise_request_exception=False)


def broken(request):
    raise RuntimeError("a bug")


# The real URLs plus two that fail, with the real error handlers (see `test_a_crash_*`).
urlpatterns = [
    path("api/v1/broken/", broken),
    path("dashboard/broken/", broken),
    *batchsite.urls.urlpatterns,
]
handler404 = batchsite.urls.handler404
handler500 = batchsite.urls.handler500


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/batches/not-a-uuid/",
        "/api/v1/batches/not-a-uuid/results/?format=csv",
        "/api/v1/documents/42/",
        "/api/v1/keys/not-a-number/",
        "/api/v1/nowhere/",
    ],
)
def test_an_unknown_api_url_is_a_json_404(alice, url):
    response = bearer(alice).get(url)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    path_only = url.split("?")[0]
    assert response.json() == {
        "code": "not_found",
        "detail": f"Nothing at {path_only}; see /api/v1/docs/.",
    }


def test_an_unknown_api_url_is_json_for_an_anonymous_caller_too(db):
    response = Client().get("/api/v1/batches/not-a-uuid/")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_an_unknown_page_outside_the_api_stays_html(alice_client):
    response = alice_client.get("/dashboard/batches/not-a-uuid/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
    assert b"<html" in response.content.lower()


@pytest.mark.parametrize(
    ("method", "url"),
    [("post", "/api/v1/schema/"), ("put", "/api/v1/keys/"), ("patch", "/api/v1/me/")],
)
def test_a_wrong_method_is_a_json_405(alice, method, url):
    response = getattr(bearer(alice), method)(url)

    assert response.status_code == 405
    assert response.json() == {
        "code": "method_not_allowed",
        "detail": f'Method "{method.upper()}" not allowed.',
    }


def test_an_error_is_json_even_when_a_browser_asks_for_html(alice):
    response = bearer(alice).get(
        "/api/v1/batches/00000000-0000-0000-0000-000000000000/", HTTP_ACCEPT="text/html"
    )

    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "detail": "No such batch."}


def test_a_bad_list_item_is_named_in_plain_words(alice, settings):
    settings.SHEAF_WEBHOOK_ALLOW_PRIVATE = True

    response = bearer(alice).post(
        "/api/v1/webhooks/", {"url": "http://127.0.0.1:9/hook", "events": ["batch.failed", ""]}
    )

    assert response.status_code == 400
    assert response.json() == {
        "code": "invalid",
        "detail": "events: item 1: This field may not be blank.",
        "errors": {"events": ["item 1: This field may not be blank."]},
    }
    assert not alice.webhook_endpoints.exists()


@pytest.mark.urls(__name__)
def test_a_crash_under_the_api_is_a_json_500(alice):
    response = bearer(alice).get("/api/v1/broken/")

    assert response.status_code == 500
    assert response.json() == {
        "code": "server_error",
        "detail": "Sheaf failed to answer; the error was logged.",
    }


@pytest.mark.urls(__name__)
def test_a_crash_outside_the_api_stays_html(alice_client):
    client = Client(raise_request_exception=False)
    client.cookies = alice_client.cookies

    response = client.get("/dashboard/broken/")

    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")


# --- Under DEBUG (`make run`), where Django would answer with its debug pages ---------------------


@pytest.mark.urls(__name__)
@pytest.mark.parametrize(
    ("method", "url", "status", "body"),
    [
        (
            "get",
            "/api/v1/nowhere/",
            404,
            {"code": "not_found", "detail": "Nothing at /api/v1/nowhere/; see /api/v1/docs/."},
        ),
        (
            "get",
            "/api/v1/batches/not-a-uuid/",
            404,
            {
                "code": "not_found",
                "detail": "Nothing at /api/v1/batches/not-a-uuid/; see /api/v1/docs/.",
            },
        ),
        (
            "put",
            "/api/v1/keys/",
            405,
            {"code": "method_not_allowed", "detail": 'Method "PUT" not allowed.'},
        ),
        (
            "get",
            "/api/v1/broken/",
            500,
            {"code": "server_error", "detail": "Sheaf failed to answer; the error was logged."},
        ),
    ],
)
def test_under_debug_api_errors_are_still_json(alice, settings, method, url, status, body):
    settings.DEBUG = True

    response = getattr(bearer(alice), method)(url, HTTP_ACCEPT="text/html")

    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert response.json() == body


@pytest.mark.urls(__name__)
def test_under_debug_a_crash_is_still_logged_with_its_traceback(alice, settings, caplog):
    settings.DEBUG = True

    bearer(alice).get("/api/v1/broken/")

    logged = [r for r in caplog.records if r.name == "django.request"]
    assert [r.getMessage() for r in logged] == ["Internal Server Error: /api/v1/broken/"]
    assert "RuntimeError: a bug" in caplog.text


def test_under_debug_an_unknown_page_outside_the_api_is_djangos_debug_page(alice_client, settings):
    settings.DEBUG = True

    response = alice_client.get("/dashboard/nowhere/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
    assert b"Page not found" in response.content
