"""/billing/webhook/ takes a correctly signed body that is not a Stripe event with a 400 that
says why, and stores nothing (accounts/billing/stripe_client.py `verify_event`)."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from accounts.models import StripeEvent
from tests.support.fake_stripe import signed_payload

pytestmark = pytest.mark.django_db

WEBHOOK = "/billing/webhook/"
SECRET = "whsec_shapes"


@pytest.fixture(autouse=True)
def _billing_on(settings) -> None:
    settings.STRIPE_SECRET_KEY = "sk_test_fake"
    settings.STRIPE_WEBHOOK_SECRET = SECRET
    settings.STRIPE_PRICE_PLUS = "price_plus"
    settings.STRIPE_PRICE_GROWTH = "price_growth"
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # nothing may be called


def deliver(client: Client, body: str | bytes, django_capture_on_commit_callbacks):
    payload, header = signed_payload(body, SECRET)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(
            WEBHOOK, data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
        )
    return response, callbacks


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ("[]", "The event is an array, not a JSON object."),
        ('"evt_1"', "The event is a string, not a JSON object."),
        ("42", "The event is a number, not a JSON object."),
        ("null", "The event is null, not a JSON object."),
        ("true", "The event is a boolean, not a JSON object."),
        ('{"type": "invoice.paid"}', 'The event has no "id" string of 1 to 255 characters.'),
        ('{"id": 7, "type": "invoice.paid"}', 'The event has no "id" string of 1 to 255'),
        ('{"id": "", "type": "invoice.paid"}', 'The event has no "id" string of 1 to 255'),
        (json.dumps({"id": "e" * 256}), 'The event has no "id" string of 1 to 255'),
        ('{"id": "evt_1", "type": ["invoice.paid"]}', 'The event\'s "type" is not a string'),
        ("[" * 100_000 + "]" * 100_000, "The event is not valid JSON: it is nested more than"),
        ('{"id": "evt_1",', "The event is not valid JSON: Expecting property name"),
    ],
)
def test_a_signed_body_that_is_not_an_event_is_400_and_nothing_is_stored(
    client, django_capture_on_commit_callbacks, body, detail
):
    response, callbacks = deliver(client, body, django_capture_on_commit_callbacks)

    assert response.status_code == 400
    assert response.json()["detail"].startswith(detail)
    assert not StripeEvent.objects.exists()
    assert callbacks == []


def test_a_signed_event_with_an_id_is_still_stored(client, django_capture_on_commit_callbacks):
    event = {"id": "evt_shape", "type": "customer.created", "data": {"object": {"id": "cus_1"}}}

    response, _ = deliver(client, json.dumps(event), django_capture_on_commit_callbacks)

    assert response.status_code == 200
    stored = StripeEvent.objects.get()
    assert (stored.event_id, stored.type, stored.status) == (
        "evt_shape",
        "customer.created",
        "ignored",
    )
    assert stored.payload == event
