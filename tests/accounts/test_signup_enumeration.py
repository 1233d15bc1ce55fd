"""Whether sign-up tells a stranger that an address has an account (batchsite/settings.py,
ACCOUNT_PREVENT_ENUMERATION): with mandatory verification it does not; with `optional` it does,
as the README says."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client

from accounts.models import User

SIGNUP = "/accounts/signup/"
PASSWORD = "a long unusual passphrase 42"


def sign_up(email: str) -> tuple[int, list[tuple[str, int]], str]:
    """A stranger's sign-up, followed to the page it ends on, as the stranger can compare it:
    status, redirects and the page's text, with the address they typed and tokens left out."""
    data = {"email": email, "password1": PASSWORD, "password2": PASSWORD}
    response = Client().post(SIGNUP, data, follow=True)
    text = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", response.content.decode())
    return response.status_code, response.redirect_chain, text.replace(email, "<typed address>")


@pytest.mark.django_db
def test_with_mandatory_verification_a_registered_address_signs_up_like_a_new_one(alice, settings):
    settings.ACCOUNT_EMAIL_VERIFICATION = "mandatory"

    registered = sign_up("alice@example.com")
    new = sign_up("newcomer@example.com")

    assert registered == new
    assert registered[:2] == (200, [("/accounts/confirm-email/", 302)])
    assert "Confirmation email sent to <typed address>." in registered[2]
    assert User.objects.filter(email__iexact="alice@example.com").count() == 1
    assert Client().login(email="alice@example.com", password="correct horse battery staple")
    to_alice = [m for m in mail.outbox if m.to == ["alice@example.com"]]
    assert [m.subject for m in to_alice] == ["[Sheaf] You already have an account"]


@pytest.mark.django_db
def test_with_optional_verification_the_form_says_the_address_is_registered(alice, settings):
    settings.ACCOUNT_EMAIL_VERIFICATION = "optional"

    status, redirects, page = sign_up("alice@example.com")

    assert (status, redirects) == (200, [])
    assert "A user is already registered with this email address." in page
    assert User.objects.filter(email__iexact="alice@example.com").count() == 1
