"""JSON a client sends, however deep it nests, is answered with a 400 that names the problem,
never a 500 (batchsite/json_input.py): a request body is `invalid_json`, the upload's `fields`
value `invalid_fields`; nothing is stored."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from accounts.models import ApiKey, User
from accounts.services import api_key_create
from batches.models import BatchProcess
from documents.models import Document
from notifications.models import WebhookEndpoint
from tests.support.pdfs import one_page_pdf

pytestmark = pytest.mark.django_db

DEEP = 100_000
TOO_DEEP = "it is nested more than 32 levels deep, the most accepted"


def nested_list(depth: int) -> str:
    return "[" * depth + "]" * depth


def nested_object(depth: int) -> str:
    return '{"a": ' * depth + "1" + "}" * depth


def bearer(user: User) -> Client:
    _, secret = api_key_create(user=user, name="ci")
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}")


@pytest.mark.parametrize(
    "body",
    [
        nested_list(DEEP),
        nested_object(DEEP),
        '{"url": "https://example.com/hook", "events": ' + nested_list(DEEP) + "}",
        nested_list(33),
    ],
    ids=["list", "object", "inside-a-value", "just-too-deep"],
)
def test_a_json_body_nested_too_deep_is_400_invalid_json_and_stores_nothing(alice, body):
    api = bearer(alice)

    response = api.post("/api/v1/webhooks/", body, content_type="application/json")

    assert response.status_code == 400
    assert response.json() == {
        "code": "invalid_json",
        "detail": f"The request body is not valid JSON: {TOO_DEEP}.",
    }
    assert not WebhookEndpoint.objects.exists()


def test_a_key_request_nested_too_deep_is_refused_the_same_way(alice):
    api = bearer(alice)

    response = api.post("/api/v1/keys/", nested_object(DEEP), content_type="application/json")

    assert (response.status_code, response.json()["code"]) == (400, "invalid_json")
    assert ApiKey.objects.filter(user=alice).count() == 1  # the one that made the request


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ('{"url": "https://example.com/hook",', "Expecting property name enclosed in double"),
        ('{"url": NaN}', "NaN is not a JSON value."),
        (b'{"url": "\xff"}', "it is not UTF-8 text."),
    ],
)
def test_a_body_that_is_not_json_is_400_invalid_json_with_the_reason(alice, body, detail):
    response = bearer(alice).post("/api/v1/webhooks/", body, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_json"
    assert response.json()["detail"].startswith("The request body is not valid JSON: ")
    assert detail in response.json()["detail"]


def test_json_nested_as_deep_as_allowed_still_reaches_validation(alice):
    response = bearer(alice).post(
        "/api/v1/webhooks/",
        json.dumps({"url": "https://example.com/hook", "events": json.loads(nested_list(31))}),
        content_type="application/json",
    )

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


@pytest.mark.parametrize("fields", [nested_list(DEEP), "[" + nested_object(DEEP) + "]"])
def test_fields_nested_too_deep_are_400_invalid_fields_and_nothing_is_stored(
    alice, media_files, fields
):
    pdf = SimpleUploadedFile("invoice.pdf", one_page_pdf(b"BT ET"))

    response = bearer(alice).post(
        "/api/v1/batches/", {"prompt": "invoice number", "fields": fields, "files": [pdf]}
    )

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_fields"
    assert body["detail"] == f"fields: Fields look like JSON but do not parse: {TOO_DEEP}."
    assert not BatchProcess.objects.exists()
    assert not Document.objects.exists()
    assert media_files() == []
