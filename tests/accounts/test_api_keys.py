from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import ApiKey
from accounts.services import api_key_authenticate, api_key_create, api_key_revoke


def bearer(secret: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}")


@pytest.fixture
def alice_key(alice) -> tuple[ApiKey, str]:
    return api_key_create(user=alice, name="ci")


def test_a_key_is_stored_as_prefix_and_hash_never_in_clear(alice):
    key, secret = api_key_create(user=alice, name="  nightly   import ")

    assert secret.startswith("sk_sheaf_")
    assert len(secret) > 40
    key.refresh_from_db()
    assert key.name == "nightly import"
    assert key.prefix == secret[len("sk_sheaf_") :][:8]
    assert key.hashed_secret == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in {key.prefix, key.hashed_secret, key.name}


def test_a_bearer_key_authenticates_and_notes_last_use_at_most_once_a_minute(alice, alice_key):
    key, secret = alice_key

    response = bearer(secret).get("/api/v1/me/")

    assert response.status_code == 200
    assert response.json()["email"] == "alice@example.com"
    key.refresh_from_db()
    first_use = key.last_used_at
    assert first_use is not None
    bearer(secret).get("/api/v1/me/")
    key.refresh_from_db()
    assert key.last_used_at == first_use
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=first_use - timedelta(minutes=2))
    bearer(secret).get("/api/v1/me/")
    key.refresh_from_db()
    assert key.last_used_at > first_use - timedelta(minutes=2)


def test_a_key_used_within_the_minute_authenticates_without_writing(alice, alice_key):
    key, secret = alice_key
    api_key_authenticate(secret=secret)
    key.refresh_from_db()
    first_use = key.last_used_at

    with CaptureQueriesContext(connection) as queries:
        authenticated = api_key_authenticate(secret=secret)

    assert authenticated.pk == key.pk
    assert [q["sql"] for q in queries.captured_queries if not q["sql"].startswith("SELECT")] == []
    key.refresh_from_db()
    assert key.last_used_at == first_use


@pytest.mark.parametrize(
    ("header", "detail"),
    [
        ("Bearer sk_sheaf_notarealkeyatall0000000000000000000000000", "Unknown API key."),
        ("Bearer something-else", "This is not a Sheaf API key (they start with sk_sheaf_)."),
        ("Bearer", "Send the key as `Authorization: Bearer <api key>`."),
    ],
)
def test_a_wrong_key_is_401_not_authenticated(db, header, detail):
    response = Client(HTTP_AUTHORIZATION=header).get("/api/v1/me/")

    assert response.status_code == 401
    assert response.json() == {"code": "not_authenticated", "detail": detail}
    assert response["WWW-Authenticate"] == "Bearer"


def test_a_key_with_the_right_prefix_and_a_wrong_secret_is_refused(alice_key):
    _, secret = alice_key
    forged = secret[:-4] + ("AAAA" if not secret.endswith("AAAA") else "BBBB")

    response = bearer(forged).get("/api/v1/me/")

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_a_revoked_key_is_refused(alice, alice_key):
    key, secret = alice_key
    api_key_revoke(user=alice, key_id=key.pk)

    response = bearer(secret).get("/api/v1/me/")

    assert response.status_code == 401
    assert response.json() == {"code": "not_authenticated", "detail": "This API key was revoked."}


def test_a_deactivated_users_key_is_refused(alice, alice_key):
    _, secret = alice_key
    alice.is_active = False
    alice.save()

    assert bearer(secret).get("/api/v1/me/").status_code == 401


# --- /api/v1/keys/ -------------------------------------------------------------------------------


def test_a_logged_in_user_creates_a_key_and_sees_the_secret_once(alice, alice_client):
    response = alice_client.post("/api/v1/keys/", {"name": "zapier"})

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "name", "prefix", "created_at", "last_used_at", "revoked_at", "key"}
    assert body["name"] == "zapier"
    assert body["key"].startswith("sk_sheaf_" + body["prefix"])
    assert body["last_used_at"] is None and body["revoked_at"] is None
    key = ApiKey.objects.get(pk=body["id"])
    assert key.user == alice
    assert bearer(body["key"]).get("/api/v1/me/").json()["email"] == "alice@example.com"

    listed = alice_client.get("/api/v1/keys/").json()
    assert listed["count"] == 1
    assert "key" not in listed["results"][0]
    assert listed["results"][0]["prefix"] == body["prefix"]


def test_a_key_can_create_another_key(alice, alice_key):
    _, secret = alice_key

    response = bearer(secret).post(
        "/api/v1/keys/", {"name": "second"}, content_type="application/json"
    )

    assert response.status_code == 201
    assert ApiKey.objects.filter(user=alice).count() == 2


def test_a_key_needs_a_name(alice_client):
    response = alice_client.post("/api/v1/keys/", {"name": ""})

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert "name" in response.json()["errors"]


@pytest.mark.parametrize("name", [0, "\u00a0 ", None])
def test_a_key_name_must_be_text_with_a_visible_character(alice, alice_client, name):
    response = alice_client.post("/api/v1/keys/", {"name": name}, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert not ApiKey.objects.filter(user=alice).exists()


def test_the_key_list_shows_only_the_users_own_keys(alice, bob, alice_client):
    api_key_create(user=alice, name="mine")
    api_key_create(user=bob, name="bobs")

    body = alice_client.get("/api/v1/keys/").json()

    assert body["count"] == 1
    assert body["next"] is None and body["previous"] is None
    assert [k["name"] for k in body["results"]] == ["mine"]


def test_delete_revokes_the_key(alice, alice_client, alice_key):
    key, secret = alice_key

    response = alice_client.delete(f"/api/v1/keys/{key.pk}/")

    assert response.status_code == 204
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert key.revoked_at <= timezone.now()
    assert bearer(secret).get("/api/v1/me/").status_code == 401
    assert alice_client.delete(f"/api/v1/keys/{key.pk}/").status_code == 204


def test_another_users_key_is_404_and_stays_active(bob_client, alice_key):
    key, _ = alice_key

    response = bob_client.delete(f"/api/v1/keys/{key.pk}/")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    key.refresh_from_db()
    assert key.revoked_at is None


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/api/v1/keys/"), ("post", "/api/v1/keys/"), ("delete", "/api/v1/keys/1/")],
)
def test_keys_anonymous_is_401(db, method, path):
    response = getattr(Client(), method)(path)

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.parametrize(
    ("method", "path"),
    [("put", "/api/v1/keys/"), ("get", "/api/v1/keys/1/"), ("post", "/api/v1/keys/1/")],
)
def test_keys_wrong_method_is_405(alice_client, method, path):
    response = getattr(alice_client, method)(path)

    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
