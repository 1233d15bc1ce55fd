"""Behind the TLS proxy every request comes from the proxy's address: sign-in limits must still
be per client (and per account), or one visitor's failures lock everyone out."""

from __future__ import annotations

import runpy
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from accounts.models import User
from batchsite import settings as settings_module
from tests.factories import UserFactory

SETTINGS = str(Path(settings_module.__file__))
PROXY = "10.0.0.2"
PASSWORD = "correct horse battery staple"  # every factory user's


@pytest.fixture(autouse=True)
def behind_one_proxy(db, settings) -> Iterator[None]:
    """Sign-in limits count in the cache, which a Redis test run keeps between tests."""
    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 1
    # Failed sign-ins hash a password each; the cheapest hasher keeps two dozen of them quick.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()
    yield
    cache.clear()


def _sign_in(email: str, password: str, *, client_address: str, sent: str | None = None):
    """A sign-in as the proxy passes it on: it appends the address it saw the client at to any
    X-Forwarded-For the client sent."""
    forwarded = f"{sent}, {client_address}" if sent else client_address
    return Client().post(
        reverse("account_login"),
        {"login": email, "password": password},
        REMOTE_ADDR=PROXY,
        HTTP_X_FORWARDED_FOR=forwarded,
    )


def _signed_in(response) -> bool:
    return response.status_code == 302 and response["Location"] == reverse("dashboard")


def _failures_from(client_address: str) -> None:
    """More than allauth's ten failed sign-ins a minute from one address."""
    for n in range(12):
        response = _sign_in(f"guess{n}@example.com", "wrong", client_address=client_address)
        assert response.status_code == 200


def test_failed_sign_ins_from_one_client_do_not_lock_out_another(alice: User) -> None:
    _failures_from("203.0.113.5")

    refused = _sign_in("alice@example.com", PASSWORD, client_address="203.0.113.5")
    welcome = _sign_in("alice@example.com", PASSWORD, client_address="198.51.100.7")

    assert b"Too many failed login attempts" in refused.content
    assert _signed_in(welcome)


def test_a_client_cannot_dodge_its_limit_with_its_own_forwarded_header(alice: User) -> None:
    for n in range(12):
        _sign_in(f"guess{n}@example.com", "x", client_address="203.0.113.5", sent=f"192.0.2.{n}")

    response = _sign_in(
        "alice@example.com", PASSWORD, client_address="203.0.113.5", sent="192.0.2.99"
    )

    assert b"Too many failed login attempts" in response.content


def test_an_account_is_still_limited_whatever_the_addresses_guessing_it() -> None:
    UserFactory(email="carol@example.com")
    for n in range(5):
        _sign_in("carol@example.com", "wrong", client_address=f"198.51.100.{n}")

    response = _sign_in("carol@example.com", PASSWORD, client_address="198.51.100.200")

    assert b"Too many failed login attempts" in response.content


def test_the_trusted_proxy_count_comes_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("SHEAF_TRUSTED_PROXY_COUNT", "2")

    loaded = runpy.run_path(SETTINGS)

    assert loaded["ALLAUTH_TRUSTED_PROXY_COUNT"] == 2


def test_without_the_setting_no_forwarded_header_is_believed(monkeypatch) -> None:
    monkeypatch.delenv("SHEAF_TRUSTED_PROXY_COUNT", raising=False)

    assert runpy.run_path(SETTINGS)["ALLAUTH_TRUSTED_PROXY_COUNT"] == 0
