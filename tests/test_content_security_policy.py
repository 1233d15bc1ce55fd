"""Pages send a Content-Security-Policy that runs only Sheaf's own scripts and styles, and their
HTML needs nothing else; downloads carry a stricter policy of their own."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import path

import batchsite.urls
from accounts.models import User
from accounts.services import api_key_create
from batches.models import BatchProcess
from batches.services import batch_create

DOWNLOAD_POLICY = "default-src 'none'; sandbox"


def broken(request):
    raise RuntimeError("a bug")


# The real URLs plus one that crashes, with the real error handlers (see the 500 page's test).
urlpatterns = [path("broken/", broken), *batchsite.urls.urlpatterns]
handler500 = batchsite.urls.handler500


def directives(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    parsed: dict[str, list[str]] = {}
    for directive in policy.split(";"):
        name, *values = directive.split()
        parsed[name] = values
    return parsed


def nonce_of(response) -> str | None:
    sources = [s for s in directives(response)["script-src"] if s.startswith("'nonce-")]
    return sources[0].removeprefix("'nonce-").removesuffix("'") if sources else None


class InlineCode(HTMLParser):
    """What a browser would refuse under the page's policy: inline scripts and styles without
    its nonce, style attributes, event-handler attributes and javascript: URLs."""

    def __init__(self, nonce: str | None) -> None:
        super().__init__()
        self.nonce = nonce
        self.refused: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        where = f"<{tag} {' '.join(f'{k}={v!r}' for k, v in attrs)}>"
        data_block = tag == "script" and values.get("type") in ("application/json",)
        inline = (tag == "script" and "src" not in values and not data_block) or tag == "style"
        if inline and (self.nonce is None or values.get("nonce") != self.nonce):
            self.refused.append(f"inline {tag} without the nonce: {where}")
        for name, value in attrs:
            if name == "style" or name.startswith("on"):
                self.refused.append(f"{name}= attribute: {where}")
            if (value or "").strip().lower().startswith("javascript:"):
                self.refused.append(f"javascript: URL: {where}")


def refused_by_the_policy(response) -> list[str]:
    parser = InlineCode(nonce_of(response))
    parser.feed(response.content.decode())
    return parser.refused


@pytest.fixture
def alices_batch(alice: User) -> BatchProcess:
    text = b"Invoice number: INV-7\nDate: 2025-03-01\nTotal: 120.00 EUR\n"
    return batch_create(
        user=alice, files=[SimpleUploadedFile("march.txt", text)], prompt="invoice number, total"
    )


PAGES = [
    ("anonymous", "/"),
    ("anonymous", "/pricing/"),
    ("anonymous", "/accounts/login/"),
    ("anonymous", "/accounts/signup/"),
    ("anonymous", "/accounts/password/reset/"),
    ("anonymous", "/nowhere/"),
    ("alice", "/dashboard/"),
    ("alice", "/dashboard/batch-upload/"),
    ("alice", "/dashboard/batches/{batch}/"),
    ("alice", "/dashboard/batches/{batch}/progress/"),
    ("alice", "/dashboard/documents/{document}/"),
    ("alice", "/settings/"),
    ("alice", "/billing/"),
    ("alice", "/accounts/email/"),
    ("frank", "/dashboard/batch-upload/"),
    ("staff", "/admin/"),
    ("staff", "/admin/overview/"),
    ("staff", "/admin/batches/batchprocess/"),
    ("staff", "/admin/batches/batchprocess/{batch}/change/"),
    ("staff", "/admin/accounts/user/"),
    ("anonymous", "/api/v1/docs/"),
]


@pytest.mark.parametrize(("who", "path"), PAGES)
def test_every_page_runs_only_sheafs_own_scripts_and_styles(
    who, path, alices_batch, alice_client, frank_client, staff_client
) -> None:
    client = {
        "anonymous": Client(),
        "alice": alice_client,
        "frank": frank_client,
        "staff": staff_client,
    }[who]

    document = alices_batch.documents.get()
    response = client.get(path.format(batch=alices_batch.pk, document=document.pk))

    assert response.status_code in (200, 404)
    policy = directives(response)
    nonce = [f"'nonce-{nonce_of(response)}'"] if nonce_of(response) else []
    assert policy["script-src"] == ["'self'", *nonce]
    assert policy["style-src"] == ["'self'", *nonce]
    assert policy["default-src"] == ["'self'"]
    assert policy["object-src"] == policy["base-uri"] == policy["frame-ancestors"] == ["'none'"]
    assert refused_by_the_policy(response) == []


def test_a_page_with_inline_code_gets_a_fresh_nonce_each_time(db) -> None:
    first, second = Client().get("/api/v1/docs/"), Client().get("/api/v1/docs/")

    assert nonce_of(first) and nonce_of(second)
    assert nonce_of(first) != nonce_of(second)
    assert f'nonce="{nonce_of(first)}"' in first.content.decode()


def test_a_page_without_inline_code_offers_no_nonce(db) -> None:
    assert nonce_of(Client().get("/pricing/")) is None


def test_the_batch_delete_still_asks_first(alice_client, alices_batch) -> None:
    """The question moved from an onsubmit= handler to a data attribute read by confirm.js."""
    html = alice_client.get(f"/dashboard/batches/{alices_batch.pk}/").content.decode()

    assert 'data-confirm="Delete this batch' in html
    assert "js/confirm.js" in html


@pytest.mark.parametrize("fmt", ["csv", "json", "md", "xlsx"])
def test_an_export_keeps_its_own_restrictive_policy(alice_client, alices_batch, fmt) -> None:
    response = alice_client.get(f"/dashboard/batches/{alices_batch.pk}/export/{fmt}/")

    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment")
    assert response["Content-Security-Policy"] == DOWNLOAD_POLICY


def test_an_api_export_keeps_its_own_restrictive_policy(alice: User, alices_batch) -> None:
    _, secret = api_key_create(user=alice, name="csp")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")

    response = client.get(f"/api/v1/batches/{alices_batch.pk}/results/?format=md")

    assert response.status_code == 200
    assert response["Content-Security-Policy"] == DOWNLOAD_POLICY


def test_an_original_keeps_its_own_restrictive_policy(alice_client, alices_batch) -> None:
    document = alices_batch.documents.get()

    response = alice_client.get(f"/dashboard/documents/{document.pk}/original/")

    assert b"".join(response.streaming_content).startswith(b"Invoice number: INV-7")
    assert response["Content-Security-Policy"] == DOWNLOAD_POLICY


@pytest.mark.urls(__name__)
def test_the_server_error_page_needs_no_inline_style(db) -> None:
    """It renders without a request, so without a nonce: its styles come from a file."""
    response = Client(raise_request_exception=False).get("/broken/")

    assert response.status_code == 500
    assert directives(response)["style-src"] == ["'self'"]
    assert refused_by_the_policy(response) == []
    assert "css/error.css" in response.content.decode()
