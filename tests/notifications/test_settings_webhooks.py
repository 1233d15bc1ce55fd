"""Webhooks on the settings page: add (secret shown once), refuse unsafe URLs, delete, Free."""

from __future__ import annotations

import re

import pytest

from notifications.models import WebhookEndpoint

pytestmark = pytest.mark.django_db


def _secret(response) -> str:
    match = re.search(r"<code data-new-webhook-secret>([^<]+)</code>", response.content.decode())
    assert match, "the new secret is shown on the page"
    return match.group(1)


def test_an_endpoint_added_on_the_settings_page_shows_its_secret_once(
    alice, alice_client, settings
):
    settings.SHEAF_WEBHOOK_ALLOW_PRIVATE = True

    response = alice_client.post(
        "/settings/webhooks/", {"url": "http://127.0.0.1:9/in", "events": ["document.failed"]}
    )

    assert response.status_code == 200
    endpoint = WebhookEndpoint.objects.get(user=alice)
    assert _secret(response) == endpoint.secret
    assert endpoint.events == ["document.failed"]
    again = alice_client.get("/settings/").content.decode()
    assert endpoint.secret not in again
    assert "http://127.0.0.1:9/in" in again


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "http://127.0.0.1:9/in",
            "127.0.0.1 is a loopback address; webhooks may only reach public addresses.",
        ),
        (
            "http://[fd00::1]/in",
            "fd00::1 is a private address; webhooks may only reach public addresses.",
        ),
        ("ftp://example.com/in", "Webhook URLs must start with http:// or https://."),
    ],
)
def test_an_unsafe_url_is_refused_on_the_settings_page_with_the_reason(alice_client, url, message):
    response = alice_client.post("/settings/webhooks/", {"url": url, "events": ["batch.failed"]})

    assert response.status_code == 400
    page = response.content.decode()
    assert f'<div class="alert alert-error" role="alert" data-webhook-error>{message}' in page
    assert f'value="{url}"' in page
    assert not WebhookEndpoint.objects.exists()


def test_no_event_chosen_is_refused(alice_client, settings):
    settings.SHEAF_WEBHOOK_ALLOW_PRIVATE = True

    response = alice_client.post("/settings/webhooks/", {"url": "http://127.0.0.1:9/"})

    assert response.status_code == 400
    assert "Choose at least one event to send." in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_a_free_user_sees_why_and_cannot_add_one(frank, frank_client, settings):
    settings.SHEAF_WEBHOOK_ALLOW_PRIVATE = True
    page = frank_client.get("/settings/").content.decode()
    assert "Outgoing webhooks are part of the Plus and Growth plans; your plan is Free." in page
    assert 'action="/settings/webhooks/"' not in page

    response = frank_client.post(
        "/settings/webhooks/", {"url": "http://127.0.0.1:9/", "events": ["batch.failed"]}
    )

    assert response.status_code == 403
    assert "your plan is Free" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_deleting_an_endpoint_on_the_settings_page(alice, alice_client, settings):
    settings.SHEAF_WEBHOOK_ALLOW_PRIVATE = True
    alice_client.post(
        "/settings/webhooks/", {"url": "http://127.0.0.1:9/", "events": ["batch.failed"]}
    )
    endpoint = WebhookEndpoint.objects.get(user=alice)

    response = alice_client.post(f"/settings/webhooks/{endpoint.pk}/delete/", follow=True)

    assert not WebhookEndpoint.objects.exists()
    assert "Webhook endpoint http://127.0.0.1:9/ deleted." in response.content.decode()


def test_another_user_cannot_delete_my_endpoint(alice, alice_client, bob_client, settings):
    settings.SHEAF_WEBHOOK_ALLOW_PRIVATE = True
    alice_client.post(
        "/settings/webhooks/", {"url": "http://127.0.0.1:9/", "events": ["batch.failed"]}
    )
    endpoint = WebhookEndpoint.objects.get(user=alice)

    response = bob_client.post(f"/settings/webhooks/{endpoint.pk}/delete/")

    assert response.status_code == 404
    assert WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()
    assert "http://127.0.0.1:9/" not in bob_client.get("/settings/").content.decode()


def test_the_webhook_forms_need_a_login_and_a_post(client, alice_client):
    anonymous = client.post("/settings/webhooks/", {"url": "https://example.com/"})
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/accounts/login/")
    assert alice_client.get("/settings/webhooks/").status_code == 405
    assert alice_client.get("/settings/webhooks/1/delete/").status_code == 405
    assert not WebhookEndpoint.objects.exists()
