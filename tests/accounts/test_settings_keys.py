"""API keys on the settings page: created and shown once, listed, revoked; owner only."""

from __future__ import annotations

import re

from accounts.models import ApiKey


def _new_key(response) -> str:
    match = re.search(r"<code data-new-key>([^<]+)</code>", response.content.decode())
    assert match, "the new key is shown on the page"
    return match.group(1)


def test_a_key_created_on_the_settings_page_is_shown_once_and_works_on_the_api(
    alice, alice_client, client
):
    response = alice_client.post("/settings/keys/", {"name": "nightly import"})

    assert response.status_code == 200
    secret = _new_key(response)
    assert ApiKey.objects.get(user=alice).name == "nightly import"
    me = client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert me.status_code == 200
    assert me.json()["email"] == "alice@example.com"
    again = alice_client.get("/settings/")
    assert secret not in again.content.decode()
    assert "nightly import" in again.content.decode()


def test_a_key_without_a_name_is_refused_with_a_message(alice, alice_client):
    response = alice_client.post("/settings/keys/", {"name": "  "})

    assert response.status_code == 400
    assert "Give the key a name" in response.content.decode()
    assert not ApiKey.objects.filter(user=alice).exists()


def test_revoking_a_key_on_the_settings_page_stops_it_working(alice_client, client):
    secret = _new_key(alice_client.post("/settings/keys/", {"name": "ci"}))
    key = ApiKey.objects.get(name="ci")

    response = alice_client.post(f"/settings/keys/{key.pk}/revoke/")

    assert response.status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None
    me = client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert me.status_code == 401


def test_another_user_cannot_revoke_my_key(alice_client, bob_client):
    _new_key(alice_client.post("/settings/keys/", {"name": "ci"}))
    key = ApiKey.objects.get(name="ci")

    response = bob_client.post(f"/settings/keys/{key.pk}/revoke/")

    assert response.status_code == 404
    key.refresh_from_db()
    assert key.revoked_at is None


def test_key_views_need_a_signed_in_user_and_post(client, alice_client):
    assert client.post("/settings/keys/", {"name": "x"}).status_code == 302
    assert alice_client.get("/settings/keys/").status_code == 405
