"""The fake Stripe server, driven through the real ``stripe`` library over loopback HTTP."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import stripe

from tests.support.fake_stripe import (
    FAKE_API_KEY,
    FakeStripe,
    fake_stripe,  # noqa: F401 - the fixture, used below
    make_event,
    parse_form,
    signed_payload,
)

REPO = Path(__file__).resolve().parents[2]
SUCCESS = "http://sheaf.test/billing/success/?session_id={CHECKOUT_SESSION_ID}"
CANCEL = "http://sheaf.test/billing/"


class Receiver:
    """A tiny webhook endpoint on loopback that keeps what it was sent."""

    def __init__(self, status: int = 200, on_event: Any = None) -> None:
        self.status = status
        self.on_event = on_event  # called with the raw body before answering, like a handler
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                if receiver.on_event is not None:
                    receiver.on_event(body)
                self.send_response(receiver.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/billing/webhook/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self, secret: str) -> list[Any]:
        """Every received body, verified and parsed by the stripe library itself."""
        return [
            stripe.Webhook.construct_event(body, headers["stripe-signature"], secret)
            for headers, body in self.received
        ]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with FakeStripe() as running:
        yield running
        assert running.errors == []


@pytest.fixture
def client(fake: FakeStripe) -> stripe.StripeClient:
    return stripe.StripeClient(
        FAKE_API_KEY, base_addresses={"api": fake.base_url}, max_network_retries=0
    )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.close()


def _checkout_params(customer: str, **extra: Any) -> dict[str, Any]:
    return {
        "mode": "subscription",
        "customer": customer,
        "client_reference_id": "7",
        "line_items": [{"price": "price_plus", "quantity": 1}],
        "success_url": SUCCESS,
        "cancel_url": CANCEL,
        "metadata": {"user_id": "7"},
        "subscription_data": {"metadata": {"user_id": "7"}},
        **extra,
    }


def _http(
    url: str, data: dict[str, str] | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One request without following redirects (the pages answer 303)."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect)
    body = urlencode(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, headers=headers or {})  # noqa: S310
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


# -- the wire --------------------------------------------------------------------------------------


def test_parse_form_decodes_bracket_notation() -> None:
    parsed = parse_form(
        "mode=subscription&line_items[0][price]=price_plus&line_items[0][quantity]=1"
        "&line_items[1][price]=p2&metadata[user_id]=7&metadata[0]=zero"
        "&subscription_data[metadata][user_id]=7&expand[]=customer&expand[]=subscription"
        "&empty="
    )
    assert parsed == {
        "mode": "subscription",
        "line_items": [{"price": "price_plus", "quantity": "1"}, {"price": "p2"}],
        "metadata": {"user_id": "7", "0": "zero"},
        "subscription_data": {"metadata": {"user_id": "7"}},
        "expand": ["customer", "subscription"],
        "empty": "",
    }


def test_client_goes_to_the_fake_over_plain_http(fake: FakeStripe, client) -> None:
    assert fake.base_url.startswith("http://127.0.0.1:")
    client.v1.customers.create(params={"email": "a@example.com"})
    request = fake.last("/v1/customers", "POST")
    assert request.headers["host"] == fake.base_url.removeprefix("http://")
    assert request.headers["authorization"] == f"Bearer {FAKE_API_KEY}"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.api_key == FAKE_API_KEY


def test_global_api_base_also_works(fake: FakeStripe, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stripe, "api_key", FAKE_API_KEY)
    monkeypatch.setattr(stripe, "api_base", fake.base_url)
    monkeypatch.setattr(stripe, "max_network_retries", 0)
    customer = stripe.Customer.create(email="g@example.com", metadata={"user_id": "9"})
    assert customer.id.startswith("cus_")
    assert stripe.Customer.retrieve(customer.id).email == "g@example.com"
    assert fake.count("/v1/customers", "POST") == 1
    assert fake.count(f"/v1/customers/{customer.id}", "GET") == 1


# -- customers and checkout ------------------------------------------------------------------------


def test_customer_create_and_retrieve(fake: FakeStripe, client) -> None:
    customer = client.v1.customers.create(
        params={"email": "ann@example.com", "metadata": {"user_id": "7"}},
        options={"idempotency_key": "customer-7"},
    )
    assert customer.id.startswith("cus_")
    assert customer.object == "customer"
    assert customer.email == "ann@example.com"
    assert customer.metadata.to_dict() == {"user_id": "7"}
    request = fake.last("/v1/customers", "POST")
    assert request.params == {"email": "ann@example.com", "metadata": {"user_id": "7"}}
    assert request.idempotency_key == "customer-7"

    again = client.v1.customers.retrieve(customer.id)
    assert (again.id, again.email) == (customer.id, "ann@example.com")
    assert fake.customers[customer.id]["metadata"] == {"user_id": "7"}


def test_checkout_session_create_and_retrieve(fake: FakeStripe, client) -> None:
    customer = client.v1.customers.create(params={"email": "ann@example.com"})
    session = client.v1.checkout.sessions.create(
        params=_checkout_params(customer.id), options={"idempotency_key": "checkout-7-plus"}
    )
    assert session.id.startswith("cs_test_")
    assert session.object == "checkout.session"
    assert session.url == f"{fake.base_url}/checkout/{session.id}"
    assert session.status == "open"
    assert session.mode == "subscription"
    assert session.customer == customer.id
    assert session.client_reference_id == "7"
    assert session.subscription is None
    assert session.metadata.to_dict() == {"user_id": "7"}
    assert (session.success_url, session.cancel_url) == (SUCCESS, CANCEL)

    request = fake.last("/v1/checkout/sessions", "POST")
    assert request.params == {
        "mode": "subscription",
        "customer": customer.id,
        "client_reference_id": "7",
        "line_items": [{"price": "price_plus", "quantity": "1"}],
        "success_url": SUCCESS,
        "cancel_url": CANCEL,
        "metadata": {"user_id": "7"},
        "subscription_data": {"metadata": {"user_id": "7"}},
    }
    assert fake.idempotency_keys["/v1/checkout/sessions"] == ["checkout-7-plus"]

    got = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["line_items"]})
    assert got.id == session.id
    assert got.line_items.data[0].price.id == "price_plus"


def test_checkout_validates_like_stripe(fake: FakeStripe, client) -> None:
    customer = client.v1.customers.create(params={})
    with pytest.raises(stripe.InvalidRequestError) as missing_price:
        client.v1.checkout.sessions.create(
            params=_checkout_params(customer.id, line_items=[{"price": "price_nope"}])
        )
    assert missing_price.value.http_status == 400
    assert missing_price.value.code == "resource_missing"
    assert missing_price.value.param == "line_items[0][price]"

    with pytest.raises(stripe.InvalidRequestError) as missing_customer:
        client.v1.checkout.sessions.create(params=_checkout_params("cus_nope"))
    assert missing_customer.value.http_status == 400
    assert missing_customer.value.param == "customer"

    with pytest.raises(stripe.InvalidRequestError, match="unknown parameter: succes_url"):
        client.v1.checkout.sessions.create(
            params={**_checkout_params(customer.id), "succes_url": "x"}
        )
    assert fake.checkout_sessions == {}


def test_idempotent_replay_returns_the_same_object(fake: FakeStripe, client) -> None:
    customer = client.v1.customers.create(params={"email": "ann@example.com"})
    first = client.v1.checkout.sessions.create(
        params=_checkout_params(customer.id), options={"idempotency_key": "checkout-7-plus"}
    )
    second = client.v1.checkout.sessions.create(
        params=_checkout_params(customer.id), options={"idempotency_key": "checkout-7-plus"}
    )
    assert second.id == first.id
    assert second.to_dict() == first.to_dict()
    assert len(fake.checkout_sessions) == 1
    assert fake.count("/v1/checkout/sessions", "POST") == 2
    assert [r.replayed for r in fake.find("/v1/checkout/sessions", "POST")] == [False, True]
    assert fake.idempotency_keys["/v1/checkout/sessions"] == ["checkout-7-plus"] * 2

    with pytest.raises(stripe.IdempotencyError):
        client.v1.checkout.sessions.create(
            params=_checkout_params(customer.id, client_reference_id="8"),
            options={"idempotency_key": "checkout-7-plus"},
        )
    # without a key of its own the library makes a fresh one per call: a new object each time
    third = client.v1.checkout.sessions.create(params=_checkout_params(customer.id))
    assert third.id != first.id
    assert fake.last("/v1/checkout/sessions").idempotency_key not in (None, "checkout-7-plus")


def test_replay_header_on_the_wire(fake: FakeStripe) -> None:
    headers = {"Authorization": f"Bearer {FAKE_API_KEY}", "Idempotency-Key": "raw-1"}
    status1, h1, body1 = _http(fake.url("/v1/customers"), {"email": "r@example.com"}, headers)
    status2, h2, body2 = _http(fake.url("/v1/customers"), {"email": "r@example.com"}, headers)
    assert (status1, status2) == (200, 200)
    assert json.loads(body1) == json.loads(body2)
    assert "Idempotent-Replayed" not in h1
    assert h2["Idempotent-Replayed"] == "true"


def test_scripted_failure_is_not_stored_for_replay(fake: FakeStripe, client) -> None:
    fake.fail_next("/v1/customers", status=500)
    with pytest.raises(stripe.APIError):
        client.v1.customers.create(params={}, options={"idempotency_key": "c-1"})
    customer = client.v1.customers.create(params={}, options={"idempotency_key": "c-1"})
    assert customer.id.startswith("cus_")
    assert fake.idempotency_keys["/v1/customers"] == ["c-1", "c-1"]
    assert [r.status for r in fake.find("/v1/customers")] == [500, 200]


# -- portal and subscriptions ----------------------------------------------------------------------


def test_portal_session(fake: FakeStripe, client) -> None:
    customer = client.v1.customers.create(params={"email": "ann@example.com"})
    portal = client.v1.billing_portal.sessions.create(
        params={"customer": customer.id, "return_url": "http://sheaf.test/billing/"},
        options={"idempotency_key": "portal-7-1"},
    )
    assert portal.id.startswith("bps_")
    assert portal.object == "billing_portal.session"
    assert portal.url == f"{fake.base_url}/portal/{portal.id}"
    assert (portal.customer, portal.return_url) == (customer.id, "http://sheaf.test/billing/")
    assert fake.last("/v1/billing_portal/sessions").params == {
        "customer": customer.id,
        "return_url": "http://sheaf.test/billing/",
    }
    assert fake.idempotency_keys["/v1/billing_portal/sessions"] == ["portal-7-1"]


def test_subscription_retrieve_update_and_cancel(fake: FakeStripe, client) -> None:
    made = fake.subscription(price="price_plus", metadata={"user_id": "7"})
    sub = client.v1.subscriptions.retrieve(made["id"])
    assert sub.id.startswith("sub_")
    assert sub.object == "subscription"
    assert sub.status == "active"
    assert sub.customer == made["customer"]
    item = sub["items"].data[0]
    assert item.id.startswith("si_")
    assert item.price.id == "price_plus"
    assert item.price.object == "price"
    assert item.current_period_end == sub.current_period_end
    assert abs(sub.current_period_end - (time.time() + 30 * 86400)) < 60
    assert sub.cancel_at_period_end is False
    assert sub.metadata.to_dict() == {"user_id": "7"}

    updated = client.v1.subscriptions.update(sub.id, params={"cancel_at_period_end": True})
    assert updated.cancel_at_period_end is True
    assert fake.last(f"/v1/subscriptions/{sub.id}", "POST").params == {
        "cancel_at_period_end": "true"
    }
    switched = client.v1.subscriptions.update(
        sub.id, params={"items": [{"id": item.id, "price": "price_growth"}]}
    )
    assert switched["items"].data[0].price.id == "price_growth"

    canceled = client.v1.subscriptions.cancel(sub.id)
    assert canceled.status == "canceled"
    assert client.v1.subscriptions.retrieve(sub.id).status == "canceled"
    listed = client.v1.subscriptions.list(params={"customer": sub.customer, "status": "all"})
    assert [s.id for s in listed.data] == [sub.id]
    # no webhook_url: the events are recorded but not sent
    assert [e["type"] for e in fake.events][-3:] == [
        "customer.subscription.updated",
        "customer.subscription.updated",
        "customer.subscription.deleted",
    ]
    assert fake.deliveries == []


@pytest.mark.parametrize(
    "status", ["past_due", "unpaid", "canceled", "incomplete", "trialing", "paused"]
)
def test_subscription_helper_changes_status_and_notifies(
    fake: FakeStripe, client, receiver: Receiver, status: str
) -> None:
    fake.webhook_url = receiver.url
    made = fake.subscription()
    changed = fake.subscription(made["id"], status=status, notify=True)
    assert changed["status"] == status
    assert client.v1.subscriptions.retrieve(made["id"]).status == status
    (event,) = receiver.events(fake.webhook_secret)
    expected = "deleted" if status == "canceled" else "updated"
    assert event.type == f"customer.subscription.{expected}"
    assert event.data.object.status == status
    if expected == "updated":
        assert event.data.previous_attributes.status == "active"


# -- hosted pages and webhooks ---------------------------------------------------------------------


def test_hosted_checkout_completes_and_sends_signed_webhooks(
    fake: FakeStripe, client, receiver: Receiver
) -> None:
    fake.webhook_url = receiver.url
    customer = client.v1.customers.create(params={"email": "ann@example.com"})
    session = client.v1.checkout.sessions.create(params=_checkout_params(customer.id))

    status, _, page = _http(session.url)
    assert status == 200
    assert b"Pay with test card" in page
    assert f'action="/checkout/{session.id}/pay"'.encode() in page

    status, headers, _ = _http(fake.url(f"/checkout/{session.id}/pay"), {"status": "active"})
    assert status == 303
    assert headers["Location"] == SUCCESS.replace("{CHECKOUT_SESSION_ID}", session.id)

    events = receiver.events(fake.webhook_secret)  # raises unless every signature verifies
    assert [e.type for e in events] == [
        "checkout.session.completed",
        "customer.subscription.created",
    ]
    for event in events:
        assert event.id.startswith("evt_")
        assert event.object == "event"
        assert event.livemode is False
        assert event.api_version == stripe.api_version
    completed, created = events
    assert completed.data.object.id == session.id
    assert completed.data.object.status == "complete"
    assert completed.data.object.client_reference_id == "7"
    sub_id = completed.data.object.subscription
    assert created.data.object.id == sub_id
    assert [d.status for d in fake.deliveries] == [200, 200]

    after = client.v1.checkout.sessions.retrieve(session.id)
    assert (after.status, after.subscription) == ("complete", sub_id)
    sub = client.v1.subscriptions.retrieve(sub_id)
    assert sub.status == "active"
    assert sub.customer == customer.id
    assert sub["items"].data[0].price.id == "price_plus"
    assert sub.metadata.to_dict() == {"user_id": "7"}
    assert abs(sub.current_period_end - (time.time() + 30 * 86400)) < 60

    expanded = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["subscription"]})
    assert expanded.subscription.id == sub_id

    # paying twice is refused, as on the real page
    status, _, _ = _http(fake.url(f"/checkout/{session.id}/pay"), {})
    assert status == 400
    assert len(receiver.received) == 2


def test_portal_switch_and_cancel(fake: FakeStripe, client, receiver: Receiver) -> None:
    fake.webhook_url = receiver.url
    customer = client.v1.customers.create(params={"email": "ann@example.com"})
    session = client.v1.checkout.sessions.create(params=_checkout_params(customer.id))
    sub_id = fake.complete_checkout(session.id)["subscription"]
    portal = client.v1.billing_portal.sessions.create(
        params={"customer": customer.id, "return_url": "http://sheaf.test/billing/"}
    )
    receiver.received.clear()

    status, _, page = _http(portal.url)
    assert status == 200
    assert b"Switch to Growth" in page
    assert b"Cancel subscription" in page

    status, headers, _ = _http(fake.url(f"/portal/{portal.id}/switch"), {"price": "price_growth"})
    assert (status, headers["Location"]) == (303, "http://sheaf.test/billing/")
    (updated,) = receiver.events(fake.webhook_secret)
    assert updated.type == "customer.subscription.updated"
    assert updated.data.object["items"].data[0].price.id == "price_growth"
    assert updated.data.previous_attributes["items"].data[0].price.id == "price_plus"
    assert client.v1.subscriptions.retrieve(sub_id)["items"].data[0].price.id == "price_growth"

    status, _, _ = _http(fake.url(f"/portal/{portal.id}/cancel-at-period-end"), {})
    assert status == 303
    pending = receiver.events(fake.webhook_secret)[-1]
    assert pending.type == "customer.subscription.updated"
    assert pending.data.object.cancel_at_period_end is True
    assert pending.data.previous_attributes.cancel_at_period_end is False

    status, headers, _ = _http(fake.url(f"/portal/{portal.id}/cancel"), {})
    assert (status, headers["Location"]) == (303, "http://sheaf.test/billing/")
    deleted = receiver.events(fake.webhook_secret)[-1]
    assert deleted.type == "customer.subscription.deleted"
    assert deleted.data.object.status == "canceled"
    assert client.v1.subscriptions.retrieve(sub_id).status == "canceled"


def test_api_changes_send_webhooks_after_answering(
    fake: FakeStripe, client, receiver: Receiver
) -> None:
    fake.webhook_url = receiver.url
    sub = fake.subscription()
    client.v1.subscriptions.update(
        sub["id"], params={"cancel_at_period_end": True}, options={"idempotency_key": "cape-1"}
    )
    fake.flush()
    (event,) = receiver.events(fake.webhook_secret)
    assert event.type == "customer.subscription.updated"
    assert event.data.previous_attributes.cancel_at_period_end is False
    assert event.request.idempotency_key == "cape-1"


def test_webhook_handler_may_call_back_into_the_fake(fake: FakeStripe, client) -> None:
    """Sheaf's handlers re-read the subscription from Stripe while the delivery is in flight."""
    seen: list[str] = []

    def reread(body: bytes) -> None:
        obj = json.loads(body)["data"]["object"]
        sub_id = obj["id"] if obj["object"] == "subscription" else obj["subscription"]
        seen.append(client.v1.subscriptions.retrieve(sub_id).status)

    receiver = Receiver(on_event=reread)
    try:
        fake.webhook_url = receiver.url
        customer = client.v1.customers.create(params={})
        session = client.v1.checkout.sessions.create(params=_checkout_params(customer.id))
        assert _http(fake.url(f"/checkout/{session.id}/pay"), {})[0] == 303
        assert seen == ["active", "active"]
    finally:
        receiver.close()


def test_concurrent_redelivery_of_one_event(fake: FakeStripe, receiver: Receiver) -> None:
    fake.webhook_url = receiver.url
    event = fake.event("customer.subscription.updated", fake.subscription())
    threads = [threading.Thread(target=fake.deliver, args=(event,)) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {e.id for e in receiver.events(fake.webhook_secret)} == {event["id"]}
    assert len(receiver.received) == 5


def test_send_event_and_redelivery(fake: FakeStripe, receiver: Receiver) -> None:
    fake.webhook_url = receiver.url
    sub = fake.subscription()
    status, body = fake.send_event("invoice.payment_failed", fake.invoice(sub["id"], paid=False))
    assert (status, body) == (200, "ok")
    event = fake.events[-1]
    assert fake.deliver(event) == (200, "ok")
    first, second = receiver.events(fake.webhook_secret)
    assert first.id == second.id == event["id"]
    assert first.data.object.parent.subscription_details.subscription == sub["id"]

    receiver.status = 500
    assert fake.send_event("invoice.paid", fake.invoice(sub["id"]))[0] == 500
    assert fake.deliveries[-1].ok is False
    # a receiver that is not there is recorded, not raised
    status, _ = fake.send_event("invoice.paid", {"id": "in_x"}, to="http://127.0.0.1:9/")
    assert status is None
    assert fake.deliveries[-1].error


# -- signatures ------------------------------------------------------------------------------------


def test_signed_payload_is_what_construct_event_verifies() -> None:
    event = make_event("checkout.session.completed", {"id": "cs_test_1", "object": "x"})
    body, header = signed_payload(event, "whsec_abc", timestamp=int(time.time()))
    verified = stripe.Webhook.construct_event(body, header, "whsec_abc")
    assert verified.id == event["id"]
    assert verified.data.object.id == "cs_test_1"

    # the header is exactly t=<ts>,v1=<hex hmac_sha256(secret, "<ts>.<body>")>
    t = header.split(",")[0].removeprefix("t=")
    mac = hmac.new(b"whsec_abc", f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    assert header == f"t={t},v1={mac}"

    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(
            body.replace(b"cs_test_1", b"cs_test_2"), header, "whsec_abc"
        )
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body, header, "whsec_other")
    stale_body, stale_header = signed_payload(event, "whsec_abc", timestamp=int(time.time()) - 600)
    with pytest.raises(stripe.SignatureVerificationError, match="tolerance"):
        stripe.Webhook.construct_event(stale_body, stale_header, "whsec_abc")
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body, None, "whsec_abc")


# -- errors ----------------------------------------------------------------------------------------


def test_missing_or_wrong_key_gets_401(fake: FakeStripe) -> None:
    status, _, body = _http(fake.url("/v1/customers"), {"email": "x@example.com"})
    assert status == 401
    error = json.loads(body)["error"]
    assert error["type"] == "invalid_request_error"
    assert "API key" in error["message"]

    live = stripe.StripeClient(
        "sk_live_0123456789abcdef", base_addresses={"api": fake.base_url}, max_network_retries=0
    )
    with pytest.raises(stripe.AuthenticationError) as raised:
        live.v1.customers.create(params={})
    assert raised.value.http_status == 401
    assert fake.customers == {}


def test_unknown_ids_get_404(fake: FakeStripe, client) -> None:
    for call in (
        lambda: client.v1.customers.retrieve("cus_nope"),
        lambda: client.v1.checkout.sessions.retrieve("cs_test_nope"),
        lambda: client.v1.subscriptions.retrieve("sub_nope"),
    ):
        with pytest.raises(stripe.InvalidRequestError) as raised:
            call()
        assert raised.value.http_status == 404
        assert raised.value.code == "resource_missing"
        assert "No such" in raised.value.user_message
    status, _, body = _http(
        fake.url("/v1/nothing"), headers={"Authorization": f"Bearer {FAKE_API_KEY}"}
    )
    assert status == 404
    assert json.loads(body)["error"]["type"] == "invalid_request_error"
    assert _http(fake.url("/checkout/cs_test_nope"))[0] == 404


def test_pytest_fixture_points_django_settings_at_the_fake(fake_stripe, settings) -> None:  # noqa: F811
    assert fake_stripe.base_url == settings.STRIPE_API_BASE
    assert settings.STRIPE_SECRET_KEY == FAKE_API_KEY
    assert fake_stripe.webhook_secret == settings.STRIPE_WEBHOOK_SECRET
    assert set(fake_stripe.prices) == {settings.STRIPE_PRICE_PLUS, settings.STRIPE_PRICE_GROWTH}


# -- standalone ------------------------------------------------------------------------------------


def test_standalone_prints_base_url_and_serves(receiver: Receiver) -> None:
    process = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
        [
            sys.executable,
            "-m",
            "tests.support.fake_stripe",
            "--port",
            "0",
            "--webhook-url",
            receiver.url,
            "--webhook-secret",
            "whsec_test",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")
        client = stripe.StripeClient(
            FAKE_API_KEY, base_addresses={"api": base_url}, max_network_retries=0
        )
        customer = client.v1.customers.create(params={"email": "demo@example.com"})
        session = client.v1.checkout.sessions.create(params=_checkout_params(customer.id))
        assert _http(f"{base_url}/checkout/{session.id}/pay", {})[0] == 303
        assert [e.type for e in receiver.events("whsec_test")] == [
            "checkout.session.completed",
            "customer.subscription.created",
        ]
    finally:
        process.terminate()
        process.wait(timeout=10)
