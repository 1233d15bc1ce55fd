"""Sign-up, sign-in and their emails in Sheaf's name and words (templates/account/): no stock
"Hello from <host>!", sentence case as on the rest of Sheaf ("Sign up", "Sign in")."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from allauth.account.models import EmailAddress
from django.contrib.staticfiles import finders
from django.core import mail
from django.test import Client

from accounts.models import User

PASSWORD = "a long unusual passphrase 42"
EMAIL = "newcomer@mail.test"
# allauth's stock words, which Sheaf's templates replace.
STOCK = ("Sign In", "Sign Up", "Signup", "Sign Out", "Remember Me", "Hello from", "contact us")


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def sign_up(client: Client, email: str = EMAIL) -> None:
    data = {"email": email, "password1": PASSWORD, "password2": PASSWORD}
    client.post("/accounts/signup/", data)


@pytest.mark.django_db
def test_the_confirmation_email_is_sheafs_and_its_link_confirms_the_address(settings):
    settings.ACCOUNT_EMAIL_VERIFICATION = "mandatory"

    sign_up(Client())

    [message] = mail.outbox
    assert message.subject == "[Sheaf] Confirm your email address"
    assert message.body.startswith("Hello,\n\nThank you for signing up for Sheaf.")
    assert message.body.rstrip().endswith("Sheaf · batch document extraction")
    for stock in ("Hello from", "testserver!", "example.com", "Thank you for using"):
        assert stock not in message.body
    [link] = re.findall(r"https?://testserver/accounts/confirm-email/\S+/", message.body)

    client = Client()
    page = text_of(client.get(link).content.decode())
    assert "Confirm that newcomer@mail.test is your address for Sheaf." in page
    client.post(link)
    assert EmailAddress.objects.get(email=EMAIL).verified


@pytest.mark.django_db
def test_the_password_reset_email_is_sheafs(frank):
    Client().post("/accounts/password/reset/", {"email": "frank@example.com"})

    [message] = mail.outbox
    assert message.subject == "[Sheaf] Reset your password"
    assert "asked to reset the password of your Sheaf account" in message.body
    assert re.search(r"https?://testserver/accounts/password/reset/key/\S+/", message.body)
    assert "Hello from" not in message.body


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "title"),
    [
        ("/accounts/login/", "Sign in"),
        ("/accounts/signup/", "Sign up"),
        ("/accounts/password/reset/", "Reset your password"),
        ("/accounts/password/reset/done/", "Check your email"),
        ("/accounts/confirm-email/", "Check your email"),
        ("/accounts/confirm-email/not-a-key/", "Confirm your email address"),
        ("/accounts/password/reset/key/1-not-a-key/", "This link has expired"),
    ],
)
def test_the_account_pages_speak_as_sheaf_does(url, title):
    response = Client().get(url)

    assert response.status_code == 200
    html = response.content.decode()
    assert f"<title>{title} · Sheaf</title>" in html
    assert f"<h1>{title}</h1>" in html
    page = text_of(html)
    for stock in STOCK:
        assert stock not in page


@pytest.mark.django_db
def test_sign_out_asks_in_sheafs_words(frank):
    client = Client()
    client.force_login(frank)

    page = text_of(client.get("/accounts/logout/").content.decode())

    assert "Sign out of Sheaf in this browser?" in page
    assert "Sign Out" not in page
    client.post("/accounts/logout/")
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_changing_the_password_speaks_as_sheaf_does(frank):
    client = Client()
    client.force_login(frank)

    html = client.get("/accounts/password/change/").content.decode()
    response = client.post(
        "/accounts/password/change/",
        {
            "oldpassword": "correct horse battery staple",
            "password1": PASSWORD,
            "password2": PASSWORD,
        },
    )

    assert "<h1>Change password</h1>" in html
    assert "Change Password" not in text_of(html)
    assert response.status_code == 302
    frank.refresh_from_db()
    assert frank.check_password(PASSWORD)


@pytest.mark.django_db
def test_the_email_addresses_page_speaks_as_sheaf_does(frank):
    client = Client()
    client.force_login(frank)

    html = client.get("/accounts/email/").content.decode()
    client.post("/accounts/email/", {"action_add": "", "email": "frank@mail.test"})

    assert "<h1>Email addresses</h1>" in html
    for stock in ("Email Addresses", "Make Primary", "Re-send Verification", "Add Email"):
        assert stock not in html
    assert EmailAddress.objects.filter(user=frank, email="frank@mail.test").exists()
    [message] = mail.outbox
    assert message.subject == "[Sheaf] Confirm your email address"
    assert "This address was added to the Sheaf account of frank@example.com." in message.body


@pytest.mark.django_db
def test_signing_in_still_works_with_sheafs_form(frank):
    client = Client()

    response = client.post(
        "/accounts/login/",
        {
            "login": "frank@example.com",
            "password": "correct horse battery staple",
            "remember": "on",
        },
    )

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(frank.pk)
    assert User.objects.get(pk=frank.pk).last_login is not None


def test_the_favicon_is_served_and_favicon_ico_leads_to_it(client, db):
    page = client.get("/pricing/").content.decode()
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in page

    response = client.get("/favicon.ico")

    assert response.status_code == 302
    assert response["Location"] == "/static/favicon.svg"
    found = finders.find("favicon.svg")
    assert found and "<svg" in Path(found).read_text()
