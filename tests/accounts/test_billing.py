"""Stripe billing end to end: signed webhooks, entitlements, Checkout and the portal against the
loopback fake, and the plan limits every surface shares (accounts/billing, accounts/services).

The stripe library is never mocked: Sheaf's own client talks HTTP to `tests.support.fake_stripe`,
and every webhook is signed with the library's signing code. Webhook processing runs where the
worker would run it: the django-q2 task the endpoint enqueues after commit is taken off the ORM
queue and executed (`tests.support.billing.run_queued_stripe_events`).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import stripe
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from django.utils import timezone

from accounts.billing.services import customer_ensure
from accounts.models import MonthlyUsage, StripeEvent, Subscription, User
from accounts.selectors import user_effective_plan, user_usage
from batches import pipeline
from batches.models import BatchProcess
from batches.services import batch_create
from batchsite.errors import Rejected
from documents.models import Document
from extraction.contract import ErrorKind, ExtractionError
from samples.invoices import invoice
from tests.batches.test_upload import (
    PROMPT,
    page_text,
    pdf_of_size,
    post_upload,
)
from tests.batches.test_views import files_input
from tests.support.billing import browser, queued_stripe_events, run_queued_stripe_events
from tests.support.documents import encrypted_pdf, invoice_upload, invoice_uploads
from tests.support.fake_stripe import (
    FakeStripe,
    fake_stripe,  # noqa: F401 - the fixture, used by `fake`
    signed_payload,
)

BILLING = "/billing/"
CHECKOUT = "/billing/checkout/"
PORTAL = "/billing/portal/"
WEBHOOK = "/billing/webhook/"
UPLOAD = "/dashboard/batch-upload/"
SITE_URL = "https://sheaf.example"
RENEWAL = datetime(2030, 1, 15, 12, 0, tzinfo=UTC)


@pytest.fixture
def fake(fake_stripe: FakeStripe, settings) -> Iterator[FakeStripe]:  # noqa: F811
    """The loopback Stripe with Sheaf's STRIPE_* settings pointing at it."""
    settings.SITE_URL = SITE_URL
    yield fake_stripe
    assert fake_stripe.errors == []


class Webhooks:
    """Deliveries to /billing/webhook/ through the Django test client, as Stripe signs them."""

    def __init__(self, client, fake: FakeStripe, capture) -> None:
        self.client = client
        self.fake = fake
        self.capture = capture
        self.callbacks: list[Callable[[], Any]] = []

    def post(self, body: bytes, signature: str | None):
        """POST raw bytes; the callbacks the request left for after commit run (they enqueue)."""
        headers = {} if signature is None else {"HTTP_STRIPE_SIGNATURE": signature}
        with self.capture(execute=True) as callbacks:
            response = self.client.post(
                WEBHOOK, data=body, content_type="application/json", **headers
            )
        self.callbacks = list(callbacks)
        return response

    def send(
        self, event: dict[str, Any], *, secret: str | None = None, timestamp: int | None = None
    ):
        body, header = signed_payload(
            event, secret or self.fake.webhook_secret, timestamp=timestamp
        )
        return self.post(body, header)

    def deliver(self, event: dict[str, Any]) -> StripeEvent:
        """Send `event` as Stripe would, then let the worker process it; the stored event."""
        response = self.send(event)
        assert response.status_code == 200, response.content
        run_queued_stripe_events()
        return StripeEvent.objects.get(event_id=event["id"])


@pytest.fixture
def webhooks(db, client, fake, django_capture_on_commit_callbacks) -> Webhooks:
    return Webhooks(client, fake, django_capture_on_commit_callbacks)


def subscribe(fake: FakeStripe, user: User, *, price: str = "price_plus", **changes) -> dict:
    """A subscription in Stripe for `user`'s customer (created through Sheaf's client once);
    its `customer.subscription.created` event is `fake.events[-1]`, not yet delivered."""
    customer = customer_ensure(user=user)
    return fake.subscription(
        customer=customer, price=price, metadata={"user_id": str(user.pk)}, **changes
    )


def change(fake: FakeStripe, subscription: dict, **changes) -> dict[str, Any]:
    """Change a subscription in Stripe; returns the event Stripe made for it (not delivered)."""
    fake.subscription(subscription["id"], **changes)
    return fake.events[-1]


def plan_of(user: User, **kwargs) -> tuple[str, str]:
    effective = user_effective_plan(User.objects.get(pk=user.pk), **kwargs)
    return effective.plan.key, effective.source


def nav_plan(response) -> str:
    match = re.search(r"data-nav-plan>([^<]+)<", response.content.decode())
    assert match, "no plan badge in the navigation"
    return match.group(1)


def checkout_hour() -> str:
    return timezone.now().astimezone(UTC).strftime("%Y%m%d%H")


# --- The webhook endpoint -------------------------------------------------------------------------


def test_a_signed_event_is_stored_and_answered_before_it_is_processed(frank, fake, webhooks):
    subscription = subscribe(fake, frank)
    event = fake.events[-1]

    response = webhooks.send(event)

    assert response.status_code == 200
    assert response.json() == {"received": True, "status": "received"}
    stored = StripeEvent.objects.get()
    assert (stored.event_id, stored.type, stored.status) == (
        event["id"],
        "customer.subscription.created",
        "received",
    )
    assert stored.payload == event
    # The work waits for the worker: one task queued after commit, nothing applied yet.
    assert len(webhooks.callbacks) == 1
    assert queued_stripe_events() == [stored.pk]
    assert not Subscription.objects.exists()

    assert run_queued_stripe_events() == ["processed"]

    stored.refresh_from_db()
    assert stored.status == "processed"
    assert stored.processed_at is not None
    assert Subscription.objects.get(user=frank).stripe_subscription_id == subscription["id"]
    assert queued_stripe_events() == []


def test_an_event_delivered_again_is_answered_200_and_stored_once(frank, fake, webhooks):
    subscribe(fake, frank)
    event = fake.events[-1]
    webhooks.deliver(event)

    again = webhooks.send(event)

    assert again.status_code == 200
    assert again.json() == {"received": True, "duplicate": True}
    assert webhooks.callbacks == []
    assert StripeEvent.objects.count() == 1
    assert queued_stripe_events() == []


def test_an_event_type_sheaf_does_not_handle_is_answered_200_and_stored_as_ignored(
    frank, fake, webhooks
):
    customer_id = customer_ensure(user=frank)
    event = fake.event("customer.updated", fake.customers[customer_id])

    response = webhooks.send(event)

    assert response.status_code == 200
    assert response.json() == {"received": True, "status": "ignored"}
    assert StripeEvent.objects.get().status == "ignored"
    assert webhooks.callbacks == []
    assert queued_stripe_events() == []


def _tampered(event, secret):
    body, header = signed_payload(event, secret)
    tampered = body.replace(b'"status": "canceled"', b'"status": "active"', 1)
    assert tampered != body
    return tampered, header


def _wrong_secret(event, secret):
    return signed_payload(event, "whsec_someone_else")


def _stale(event, secret):
    too_old = int(time.time()) - stripe.Webhook.DEFAULT_TOLERANCE - 60
    return signed_payload(event, secret, timestamp=too_old)


def _no_header(event, secret):
    return signed_payload(event, secret)[0], None


def _empty_header(event, secret):
    return signed_payload(event, secret)[0], ""


@pytest.mark.parametrize(
    "forge",
    [_tampered, _wrong_secret, _stale, _no_header, _empty_header],
    ids=["tampered body", "wrong secret", "stale timestamp", "missing header", "empty header"],
)
def test_a_request_whose_signature_does_not_verify_is_400_and_changes_nothing(
    frank, fake, webhooks, forge
):
    subscription = subscribe(fake, frank)
    webhooks.deliver(fake.events[-1])
    before = Subscription.objects.values().get(user=frank)
    event = change(fake, subscription, status="canceled")

    body, signature = forge(event, fake.webhook_secret)
    response = webhooks.post(body, signature)

    assert response.status_code == 400
    assert response.json() == {"detail": "invalid signature"}
    assert not StripeEvent.objects.filter(event_id=event["id"]).exists()
    assert StripeEvent.objects.count() == 1
    assert webhooks.callbacks == []
    assert queued_stripe_events() == []
    assert Subscription.objects.values().get(user=frank) == before
    assert plan_of(frank) == ("plus", "subscription")

    # The same event, signed as Stripe signs it, does take effect.
    webhooks.deliver(event)
    assert plan_of(frank) == ("free", "default")


@pytest.mark.parametrize("missing", ["STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET"])
def test_without_stripe_keys_the_webhook_is_404_and_writes_nothing(
    frank, fake, webhooks, settings, missing
):
    subscribe(fake, frank)
    event = fake.events[-1]
    setattr(settings, missing, "")

    response = webhooks.send(event)

    assert response.status_code == 404
    assert StripeEvent.objects.count() == 0
    assert webhooks.callbacks == []
    assert not Subscription.objects.exists()


def test_the_webhook_only_takes_post(client, fake, db):
    response = client.get(WEBHOOK)

    assert response.status_code == 405
    assert StripeEvent.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_one_event_delivered_five_times_at_once_is_stored_once_and_applied_once(
    frank, fake, live_server
):
    fake.webhook_url = live_server.url + WEBHOOK
    subscription = subscribe(fake, frank)
    event = fake.events[-1]
    barrier = threading.Barrier(5)
    answers: list[tuple[int | None, str]] = []

    def deliver() -> None:
        barrier.wait()
        answers.append(fake.deliver(event))

    threads = [threading.Thread(target=deliver) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [status for status, _ in answers] == [200] * 5, answers
    bodies = [json.loads(body) for _, body in answers]
    assert bodies.count({"received": True, "status": "received"}) == 1
    assert bodies.count({"received": True, "duplicate": True}) == 4
    assert StripeEvent.objects.count() == 1
    assert len(queued_stripe_events()) == 1

    assert run_queued_stripe_events() == ["processed"]

    assert fake.count(f"/v1/subscriptions/{subscription['id']}", "GET") == 1
    assert Subscription.objects.count() == 1
    assert plan_of(frank) == ("plus", "subscription")


# --- Entitlements ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("price", "status", "plan"),
    [
        ("price_plus", "active", "plus"),
        ("price_plus", "trialing", "plus"),
        ("price_growth", "active", "growth"),
        ("price_growth", "trialing", "growth"),
    ],
)
def test_an_active_or_trialing_subscription_gives_its_paid_plan(
    frank, fake, webhooks, price, status, plan
):
    subscription = subscribe(
        fake, frank, price=price, status=status, current_period_end=int(RENEWAL.timestamp())
    )

    stored_event = webhooks.deliver(fake.events[-1])

    assert stored_event.status == "processed"
    assert plan_of(frank) == (plan, "subscription")
    stored = Subscription.objects.get(user=frank)
    assert (stored.plan, stored.status) == (plan, status)
    assert stored.stripe_subscription_id == subscription["id"]
    assert stored.stripe_customer_id == subscription["customer"] == frank.stripe_customer_id
    assert stored.current_period_end == RENEWAL
    assert stored.past_due_since is None


def test_an_incomplete_subscription_gives_free_until_its_first_payment_succeeds(
    frank, fake, webhooks
):
    subscription = subscribe(fake, frank, status="incomplete")
    webhooks.deliver(fake.events[-1])

    assert Subscription.objects.get(user=frank).status == "incomplete"
    assert plan_of(frank) == ("free", "default")

    webhooks.deliver(change(fake, subscription, status="active"))

    assert plan_of(frank) == ("plus", "subscription")


def test_an_incomplete_subscription_that_expires_stays_on_free(frank, fake, webhooks):
    subscription = subscribe(fake, frank, status="incomplete")
    webhooks.deliver(fake.events[-1])

    webhooks.deliver(change(fake, subscription, status="incomplete_expired"))

    assert Subscription.objects.get(user=frank).status == "incomplete_expired"
    assert plan_of(frank) == ("free", "default")


@pytest.mark.parametrize("status", ["canceled", "unpaid", "paused", "incomplete_expired"])
def test_a_subscription_that_stops_being_paid_falls_back_to_free(frank, fake, webhooks, status):
    subscription = subscribe(fake, frank, price="price_growth")
    webhooks.deliver(fake.events[-1])
    assert plan_of(frank) == ("growth", "subscription")

    event = change(fake, subscription, status=status)
    webhooks.deliver(event)

    assert event["type"] == (
        "customer.subscription.deleted" if status == "canceled" else "customer.subscription.updated"
    )
    stored = Subscription.objects.get(user=frank)
    assert (stored.plan, stored.status) == ("growth", status)
    assert plan_of(frank) == ("free", "default")


def test_past_due_keeps_the_plan_for_the_grace_period_with_a_banner_then_falls_to_free(
    frank, frank_client, fake, webhooks, settings
):
    settings.SHEAF_PAST_DUE_GRACE_DAYS = 3
    subscription = subscribe(fake, frank)
    webhooks.deliver(fake.events[-1])
    assert "Your last payment failed" not in page_text(frank_client.get("/dashboard/"))

    webhooks.deliver(change(fake, subscription, status="past_due"))

    stored = Subscription.objects.get(user=frank)
    since = stored.past_due_since
    assert (stored.status, since is not None) == ("past_due", True)
    assert plan_of(frank) == ("plus", "subscription")
    assert plan_of(frank, now=since + timedelta(days=3) - timedelta(seconds=1))[0] == "plus"
    assert plan_of(frank, now=since + timedelta(days=3)) == ("free", "default")
    dashboard = frank_client.get("/dashboard/")
    assert "Your last payment failed. Update your payment method to keep your plan." in (
        page_text(dashboard)
    )
    assert nav_plan(dashboard) == "Plus"
    billing = page_text(frank_client.get(BILLING))
    assert "otherwise the account returns to Free after a grace period" in billing

    # A later failed retry does not restart the grace period.
    webhooks.deliver(
        fake.event("invoice.payment_failed", fake.invoice(subscription["id"], paid=False))
    )
    assert Subscription.objects.get(user=frank).past_due_since == since

    Subscription.objects.filter(user=frank).update(past_due_since=since - timedelta(days=3))

    assert plan_of(frank) == ("free", "default")
    assert nav_plan(frank_client.get("/dashboard/")) == "Free"


@pytest.mark.parametrize(
    "status",
    [
        "active",
        "trialing",
        "past_due",
        "incomplete",
        "incomplete_expired",
        "paused",
        "canceled",
        "unpaid",
    ],
)
def test_a_staff_override_wins_over_every_subscription_status(alice, fake, webhooks, status):
    subscribe(fake, alice, price="price_growth", status=status)

    webhooks.deliver(fake.events[-1])

    assert Subscription.objects.get(user=alice).status == status
    assert plan_of(alice) == ("plus", "override")


def test_a_free_override_wins_over_a_paid_subscription(frank, fake, webhooks):
    subscribe(fake, frank, price="price_growth")
    webhooks.deliver(fake.events[-1])
    User.objects.filter(pk=frank.pk).update(plan_override="free")

    assert plan_of(frank) == ("free", "override")


def test_updated_events_delivered_out_of_order_end_in_the_latest_state(frank, fake, webhooks):
    subscription = subscribe(fake, frank)
    webhooks.deliver(fake.events[-1])
    older = change(fake, subscription, cancel_at_period_end=True)
    newer = change(fake, subscription, price="price_growth", cancel_at_period_end=False)
    assert older["type"] == newer["type"] == "customer.subscription.updated"
    assert older["data"]["object"]["items"]["data"][0]["price"]["id"] == "price_plus"

    webhooks.deliver(newer)
    assert plan_of(frank) == ("growth", "subscription")
    webhooks.deliver(older)

    assert plan_of(frank) == ("growth", "subscription")
    assert Subscription.objects.get(user=frank).plan == "growth"
    assert set(StripeEvent.objects.values_list("status", flat=True)) == {"processed"}


def test_a_late_event_about_an_old_canceled_subscription_leaves_the_new_one_in_place(
    frank, fake, webhooks
):
    old = subscribe(fake, frank)
    old_created = fake.events[-1]
    old_deleted = change(fake, old, status="canceled")
    new = subscribe(fake, frank, price="price_growth")
    new_created = fake.events[-1]

    webhooks.deliver(new_created)
    webhooks.deliver(old_deleted)
    webhooks.deliver(old_created)

    stored = Subscription.objects.get(user=frank)
    assert (stored.stripe_subscription_id, stored.plan, stored.status) == (
        new["id"],
        "growth",
        "active",
    )
    assert plan_of(frank) == ("growth", "subscription")


@pytest.mark.parametrize("shape", ["parent.subscription_details", "top-level subscription"])
def test_invoice_events_find_their_subscription_through_the_invoice(frank, fake, webhooks, shape):
    subscription = subscribe(fake, frank)
    webhooks.deliver(fake.events[-1])

    def invoice(paid: bool) -> dict[str, Any]:
        data = fake.invoice(subscription["id"], paid=paid)
        if shape == "parent.subscription_details":
            del data["subscription"]  # API versions from 2025-03-31 (basil) on
        else:
            data["parent"] = None  # older API versions
        return data

    fake.subscription(subscription["id"], status="past_due")  # its own event is never sent
    failed = webhooks.deliver(fake.event("invoice.payment_failed", invoice(paid=False)))

    assert failed.status == "processed"
    stored = Subscription.objects.get(user=frank)
    assert stored.status == "past_due"
    assert stored.past_due_since is not None

    fake.subscription(subscription["id"], status="active")
    paid = webhooks.deliver(fake.event("invoice.paid", invoice(paid=True)))

    assert paid.status == "processed"
    stored.refresh_from_db()
    assert (stored.status, stored.past_due_since) == ("active", None)
    assert plan_of(frank) == ("plus", "subscription")


MISSHAPEN_EVENTS = {
    "data is a list": ("customer.subscription.updated", ["sub_1"]),
    "object is a string": ("checkout.session.completed", {"object": "cs_1"}),
    "invoice parent is a string": ("invoice.paid", {"object": {"parent": "sub_1"}}),
    "subscription id is a number": ("customer.subscription.deleted", {"object": {"id": 7}}),
}


@pytest.mark.parametrize("kind, data", MISSHAPEN_EVENTS.values(), ids=MISSHAPEN_EVENTS.keys())
def test_a_signed_event_of_a_handled_type_with_a_misshapen_body_is_ignored(
    frank, fake, webhooks, kind, data
):
    event = {"id": "evt_misshapen", "object": "event", "type": kind, "data": data}

    stored = webhooks.deliver(event)

    # Processed once and set aside, not left "received" to fail on every run.
    assert (stored.status, stored.error) == ("ignored", "")
    assert stored.processed_at is not None
    assert not Subscription.objects.exists()
    assert queued_stripe_events() == []


def test_an_event_for_a_price_sheaf_does_not_sell_is_kept_as_failed_with_the_reason(
    frank, fake, webhooks
):
    fake.add_price("price_legacy", "Legacy")
    subscription = subscribe(fake, frank, price="price_legacy")

    stored = webhooks.deliver(fake.events[-1])

    assert stored.status == "failed"
    assert stored.error == (f"Subscription {subscription['id']} has unknown price 'price_legacy'.")
    assert not Subscription.objects.exists()
    assert plan_of(frank) == ("free", "default")


# --- Checkout and the portal ----------------------------------------------------------------------


@pytest.mark.parametrize(("plan", "price"), [("plus", "price_plus"), ("growth", "price_growth")])
def test_checkout_sends_a_free_user_to_stripe_with_their_customer_and_the_plans_price(
    frank, frank_client, fake, plan, price
):
    response = frank_client.post(CHECKOUT, {"plan": plan})

    assert response.status_code == 302
    ((session_id, session),) = fake.checkout_sessions.items()
    assert response["Location"] == session["url"] == f"{fake.base_url}/checkout/{session_id}"
    frank.refresh_from_db()
    assert frank.stripe_customer_id
    customer = fake.customers[frank.stripe_customer_id]
    assert customer["email"] == "frank@example.com"
    assert customer["metadata"] == {"user_id": str(frank.pk)}
    created = fake.last("/v1/customers", "POST")
    assert created.idempotency_key == f"sheaf-customer-{frank.pk}"
    request = fake.last("/v1/checkout/sessions", "POST")
    assert request.params["mode"] == "subscription"
    assert request.params["customer"] == frank.stripe_customer_id
    assert request.params["client_reference_id"] == str(frank.pk)
    assert request.params["line_items"] == [{"price": price, "quantity": "1"}]
    assert request.params["success_url"].startswith(SITE_URL + "/billing/")
    assert request.params["cancel_url"].startswith(SITE_URL + "/billing/")
    assert request.idempotency_key.startswith(f"sheaf-checkout-{frank.pk}-{plan}-")


def test_a_second_checkout_in_the_same_hour_reuses_the_key_the_session_and_the_customer(
    frank, frank_client, fake
):
    while True:
        hour = checkout_hour()
        first = frank_client.post(CHECKOUT, {"plan": "plus"})
        second = frank_client.post(CHECKOUT, {"plan": "plus"})
        if checkout_hour() == hour:
            break  # both in the key's hour; across an hour boundary the pair is taken again

    first_key, second_key = fake.idempotency_keys["/v1/checkout/sessions"][-2:]
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"]
    assert first_key == second_key
    assert first_key.startswith(f"sheaf-checkout-{frank.pk}-plus-{hour}")
    assert [r.replayed for r in fake.find("/v1/checkout/sessions", "POST")[-2:]] == [False, True]
    assert fake.count("/v1/customers", "POST") == 1
    frank.refresh_from_db()
    assert list(fake.customers) == [frank.stripe_customer_id]


@pytest.mark.parametrize("plan", ["free", "gold", ""])
def test_checkout_for_a_plan_that_cannot_be_bought_says_so_and_calls_nothing(
    frank, frank_client, fake, plan
):
    response = frank_client.post(CHECKOUT, {"plan": plan}, follow=True)

    assert response.redirect_chain == [(BILLING, 302)]
    assert f"Could not start Checkout: {plan!r} is not a plan you can subscribe to." in (
        page_text(response)
    )
    assert fake.requests == []
    frank.refresh_from_db()
    assert frank.stripe_customer_id == ""


def test_a_stripe_error_during_checkout_is_shown_and_nothing_breaks(frank, frank_client, fake):
    fake.fail_next("/v1/checkout/sessions", status=400, message="Your account cannot do that.")

    response = frank_client.post(CHECKOUT, {"plan": "plus"}, follow=True)

    assert response.redirect_chain == [(BILLING, 302)]
    assert "Could not start Checkout: Your account cannot do that." in page_text(response)
    assert fake.checkout_sessions == {}


def test_a_subscriber_opens_the_portal_for_their_own_customer(frank, frank_client, fake, webhooks):
    subscribe(fake, frank)
    webhooks.deliver(fake.events[-1])

    response = frank_client.post(PORTAL)

    assert response.status_code == 302
    ((portal_id, portal),) = fake.portal_sessions.items()
    assert response["Location"] == portal["url"] == f"{fake.base_url}/portal/{portal_id}"
    assert portal["customer"] == User.objects.get(pk=frank.pk).stripe_customer_id
    assert portal["return_url"] == SITE_URL + "/billing/"
    assert fake.last("/v1/billing_portal/sessions").idempotency_key.startswith(
        f"sheaf-portal-{frank.pk}-"
    )


def test_the_portal_for_a_user_without_a_customer_explains_and_returns_to_billing(
    frank_client, fake
):
    response = frank_client.post(PORTAL, follow=True)

    assert response.redirect_chain == [(BILLING, 302)]
    assert "Could not open the billing portal: You have no subscription to manage yet." in (
        page_text(response)
    )
    assert fake.requests == []


@pytest.mark.django_db(transaction=True)
def test_a_free_user_upgrades_through_checkout_and_a_cancellation_returns_them_to_free(
    frank, frank_client, fake, live_server, media_files
):
    fake.webhook_url = live_server.url + WEBHOOK
    batch_create(user=frank, files=[invoice_upload()], prompt=PROMPT)
    assert "multiple" not in files_input(frank_client.get(UPLOAD))

    started = frank_client.post(CHECKOUT, {"plan": "plus"})
    session_url = started["Location"]
    status, _, page = browser(session_url)
    assert status == 200
    assert "Pay with test card" in page
    status, headers, _ = browser(session_url + "/pay", {"status": "active"})

    assert status == 303
    assert headers["Location"] == SITE_URL + "/billing/?checkout=success"
    assert [(d.type, d.status) for d in fake.deliveries] == [
        ("checkout.session.completed", 200),
        ("customer.subscription.created", 200),
    ]
    assert run_queued_stripe_events() == ["processed", "processed"]
    assert plan_of(frank) == ("plus", "subscription")
    upload = frank_client.get(UPLOAD)
    assert "multiple" in files_input(upload)
    assert "Up to 25 files per batch, 25 MB per file" in page_text(upload)
    assert "1 of 1,000 documents used this month" in page_text(upload)  # usage carries over
    welcome = page_text(frank_client.get(BILLING + "?checkout=success"))
    assert "Thank you! Your plan changes as soon as Stripe confirms it." in welcome
    assert "Manage billing" in welcome

    opened = frank_client.post(PORTAL)
    portal_url = opened["Location"]
    assert portal_url.startswith(fake.base_url + "/portal/")
    status, _, page = browser(portal_url)
    assert (status, "Cancel subscription" in page) == (200, True)
    status, headers, _ = browser(portal_url + "/cancel", {})

    assert (status, headers["Location"]) == (303, SITE_URL + "/billing/")
    assert (fake.deliveries[-1].type, fake.deliveries[-1].status) == (
        "customer.subscription.deleted",
        200,
    )
    assert run_queued_stripe_events() == ["processed"]
    assert plan_of(frank) == ("free", "default")
    assert Subscription.objects.get(user=frank).status == "canceled"
    upload = frank_client.get(UPLOAD)
    assert "multiple" not in files_input(upload)
    assert "One file per submission" in page_text(upload)
    assert BatchProcess.objects.filter(user=frank).count() == 1  # a downgrade deletes nothing


def test_a_user_who_canceled_can_subscribe_again_within_the_hour(
    frank, frank_client, fake, webhooks
):
    first = frank_client.post(CHECKOUT, {"plan": "plus"})
    session_id = first["Location"].rsplit("/", 1)[1]
    subscription_id = fake.complete_checkout(session_id)["subscription"]
    for event in fake.events:
        webhooks.deliver(event)
    assert plan_of(frank) == ("plus", "subscription")
    webhooks.deliver(change(fake, {"id": subscription_id}, status="canceled"))
    assert plan_of(frank) == ("free", "default")
    assert "Upgrade to Plus" in page_text(frank_client.get(BILLING))

    again = frank_client.post(CHECKOUT, {"plan": "plus"})

    assert again.status_code == 302
    new_session_id = again["Location"].rsplit("/", 1)[1]
    assert fake.checkout_sessions[new_session_id]["status"] == "open", (
        "the Checkout button sent a returning customer to the Checkout session they already "
        "completed (its idempotency key is the same for the whole hour)"
    )


def test_an_active_subscriber_is_not_sent_through_checkout_for_a_second_subscription(
    frank, frank_client, fake, webhooks
):
    subscribe(fake, frank)
    webhooks.deliver(fake.events[-1])

    response = frank_client.post(CHECKOUT, {"plan": "growth"})

    assert fake.count("/v1/checkout/sessions", "POST") == 0, (
        "a Plus subscriber was given a Checkout session for Growth: paying it would bill them "
        "for two subscriptions"
    )
    assert response.status_code == 302
    assert not response["Location"].startswith(fake.base_url + "/checkout/")


# --- Billing off ----------------------------------------------------------------------------------


@pytest.fixture
def billing_off(settings):
    settings.STRIPE_SECRET_KEY = ""
    settings.STRIPE_WEBHOOK_SECRET = ""
    settings.STRIPE_PRICE_PLUS = ""
    settings.STRIPE_PRICE_GROWTH = ""
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # nothing listens: a call would fail loudly


def test_without_keys_the_billing_page_says_billing_is_off_and_shows_the_staff_plan(
    alice_client, billing_off
):
    response = alice_client.get(BILLING)

    assert response.status_code == 200
    text = page_text(response)
    assert "Plans cannot be bought here yet; whoever runs this Sheaf can change yours." in text
    assert "staff" not in text.lower().replace("set by staff", "")
    assert "Plan Plus" in text
    assert "Comes from set by staff" in text
    assert "Upgrade to" not in text
    assert "Manage billing" not in text


def test_without_keys_staff_are_told_how_to_turn_billing_on(staff_client, billing_off):
    text = page_text(staff_client.get(BILLING))

    assert "Staff: billing is off until the STRIPE_ settings are set" in text
    assert "make plan" in text


@pytest.mark.parametrize("url", [CHECKOUT, PORTAL])
def test_without_keys_checkout_and_portal_redirect_with_an_error(
    frank, frank_client, billing_off, url
):
    response = frank_client.post(url, {"plan": "plus"}, follow=True)

    assert response.redirect_chain == [(BILLING, 302)]
    assert "Plans cannot be bought here yet; nothing changed." in page_text(response)
    frank.refresh_from_db()
    assert frank.stripe_customer_id == ""


# --- Access and the billing page ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "method"), [(BILLING, "get"), (CHECKOUT, "post"), (PORTAL, "post")]
)
def test_an_anonymous_visitor_is_sent_to_sign_in(client, db, fake, url, method):
    response = getattr(client, method)(url)

    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={url}"
    assert fake.requests == []


@pytest.mark.parametrize("url", [CHECKOUT, PORTAL])
def test_checkout_and_portal_only_take_post(frank, frank_client, fake, url):
    response = frank_client.get(url, {"plan": "plus"})

    assert response.status_code == 405
    assert fake.requests == []
    frank.refresh_from_db()
    assert frank.stripe_customer_id == ""


def test_a_free_user_sees_their_plan_and_the_ways_to_upgrade(frank_client, fake):
    response = frank_client.get(BILLING)

    assert response.status_code == 200
    text = page_text(response)
    assert "Plan Free" in text
    assert "Comes from the free default" in text
    assert "Upgrade to Plus · $29/month" in text
    assert "Upgrade to Growth · $99/month" in text
    assert "Manage billing" not in text
    assert "Renews" not in text


def test_a_subscriber_sees_status_renewal_date_and_manage_billing(
    frank, frank_client, fake, webhooks
):
    subscribe(fake, frank, current_period_end=int(RENEWAL.timestamp()))
    webhooks.deliver(fake.events[-1])

    text = page_text(frank_client.get(BILLING))

    assert "Plan Plus" in text
    assert "Comes from your subscription" in text
    assert "Subscription Active Plus" in text
    assert "Renews 15 January 2030" in text
    assert "Manage billing" in text
    assert "Upgrade to" not in text
    assert "Your last payment failed" not in text


def test_another_users_subscription_does_not_show_on_the_billing_page(
    frank, frank_client, bob, fake, webhooks
):
    User.objects.filter(pk=bob.pk).update(plan_override="")
    subscribe(fake, bob, current_period_end=int(RENEWAL.timestamp()))
    webhooks.deliver(fake.events[-1])

    text = page_text(frank_client.get(BILLING))

    assert "Plan Free" in text
    assert "Renews" not in text
    assert "Manage billing" not in text


def test_a_canceled_checkout_says_nothing_changed(frank_client, fake):
    text = page_text(frank_client.get(BILLING + "?checkout=canceled"))

    assert "Checkout was canceled; nothing changed." in text
    assert "Plan Free" in text


def test_the_billing_page_shows_documents_used_this_month_against_the_limit(
    frank, frank_client, fake
):
    batch_create(user=frank, files=[invoice_upload()], prompt=PROMPT)

    response = frank_client.get(BILLING)

    body = response.content.decode()
    assert 'role="progressbar"' in body, "no usage bar on /billing/"
    assert re.search(r"\b1 of 50\b", page_text(response)), "no '1 of 50' documents on /billing/"


def test_the_settings_page_shows_the_plan_and_links_to_billing(frank_client):
    response = frank_client.get("/settings/")

    assert response.status_code == 200
    assert 'href="/billing/"' in response.content.decode()


# --- Limits: the form and the service say the same -----------------------------------------------


def _readable(count: int) -> Callable[[], list]:
    return lambda: invoice_uploads(count)


LIMIT_CASES = [
    pytest.param({"files_per_batch": 2}, 0, _readable(3), "standard", "too_many_files", id="files"),
    pytest.param(
        {"max_file_size": 100_000},
        0,
        lambda: [SimpleUploadedFile("big.pdf", pdf_of_size(100_001))],
        "standard",
        "file_too_large",
        id="file size",
    ),
    pytest.param(
        {"submissions_per_hour": 1}, 1, _readable(1), "standard", "rate_limited", id="per hour"
    ),
    pytest.param(
        {"documents_per_month": 2}, 1, _readable(2), "standard", "quota_exceeded", id="per month"
    ),
    pytest.param({}, 0, _readable(1), "economy", "plan_limit", id="economy lane"),
]


@pytest.mark.parametrize(("limits", "earlier", "files", "mode", "code"), LIMIT_CASES)
def test_each_limit_is_refused_with_the_same_code_and_message_by_the_form_and_the_service(
    alice, alice_client, bob, settings, media_files, limits, earlier, files, mode, code
):
    settings.SHEAF_PLAN_LIMITS = {"plus": limits}
    for user in (alice, bob):
        for _ in range(earlier):
            batch_create(user=user, files=_readable(1)(), prompt=PROMPT)

    with pytest.raises(Rejected) as caught:
        batch_create(user=bob, files=files(), prompt=PROMPT, mode=mode)
    response = post_upload(alice_client, files(), mode=mode)

    from_service = [(p.code, p.message) for p in caught.value.problems]
    assert response.status_code == 400
    form_errors = response.context["form"].errors.as_data()
    from_form = [(e.code, e.messages[0]) for errors in form_errors.values() for e in errors]
    assert from_form == from_service
    assert from_service[0][0] == code
    text = page_text(response)
    for _, message in from_service:
        assert " ".join(message.split()) in text
    for user in (alice, bob):
        assert BatchProcess.objects.filter(user=user).count() == earlier
        assert user_usage(user).documents_this_month == earlier
    assert len(media_files()) == 2 * earlier


# --- Quota race -----------------------------------------------------------------------------------


def _sessions_waiting_for_a_lock() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_two_submissions_racing_for_the_last_room_of_the_month_let_exactly_one_through(
    alice, settings, media_files
):
    """Both submissions pass the read-only check and store their files while the month's usage
    is held; then only the atomic reservation decides. Runs on SQLite and on PostgreSQL."""
    settings.SHEAF_PLAN_LIMITS = {"plus": {"documents_per_month": 3}}
    batch_create(user=alice, files=_readable(2)(), prompt=PROMPT)
    outcomes: dict[str, BatchProcess | Rejected] = {}

    def submit(name: str) -> None:
        try:
            user = User.objects.get(pk=alice.pk)
            upload = invoice_upload(f"{name}.pdf")
            outcomes[name] = batch_create(user=user, files=[upload], prompt=PROMPT)
        except Rejected as rejection:
            outcomes[name] = rejection
        finally:
            connection.close()

    threads = [threading.Thread(target=submit, args=(name,)) for name in ("left", "right")]
    deadline = time.monotonic() + 60
    with transaction.atomic():
        # PostgreSQL: the row lock on the usage row; SQLite: the IMMEDIATE write lock.
        MonthlyUsage.objects.select_for_update().get(user=alice)
        for thread in threads:
            thread.start()
        while len(media_files()) < 4 and any(t.is_alive() for t in threads):
            assert time.monotonic() < deadline, "the submissions never stored their files"
            time.sleep(0.01)
        assert len(media_files()) == 4, f"a submission stopped before the race: {outcomes}"
        if connection.vendor == "postgresql":
            while _sessions_waiting_for_a_lock() < 2 and all(t.is_alive() for t in threads):
                assert time.monotonic() < deadline, "the submissions never waited for the quota"
                time.sleep(0.01)
    for thread in threads:
        thread.join()

    created = [o for o in outcomes.values() if isinstance(o, BatchProcess)]
    refused = [o for o in outcomes.values() if isinstance(o, Rejected)]
    assert (len(created), len(refused)) == (1, 1), outcomes
    assert refused[0].code == "quota_exceeded"
    assert refused[0].problems[0].message == (
        "Your Plus plan includes 3 documents a month; 3 are used and 0 left, so these 1 do not "
        "fit. Upgrade, or wait for next month."
    )
    assert MonthlyUsage.objects.get(user=alice).documents == 3
    assert BatchProcess.objects.count() == 2
    assert Document.objects.count() == 3
    assert len(media_files()) == 3


# --- Refunds --------------------------------------------------------------------------------------


def test_a_document_that_fails_permanently_gives_its_quota_back(alice, settings):
    settings.SHEAF_EXTRACTION_ENGINE = "local"
    batch = batch_create(
        user=alice,
        files=[
            SimpleUploadedFile(
                "locked.pdf",
                encrypted_pdf(invoice(3).pdf, user_password="asdfzxcv", algorithm="RC4-128"),
            ),
            invoice_upload(),
        ],
        prompt=PROMPT,
    )
    assert user_usage(alice).documents_this_month == 2

    outcomes = [pipeline.document_process(claim=pipeline.document_claim()) for _ in range(2)]

    assert sorted(outcomes) == ["completed", "failed"]
    failed = batch.documents.get(status="failed")
    assert (failed.original_filename, failed.error_code) == ("locked.pdf", "encrypted")
    assert user_usage(alice).documents_this_month == 1


def test_a_document_that_gives_up_after_its_last_attempt_gives_its_quota_back(alice, settings):
    settings.SHEAF_MAX_ATTEMPTS = 1
    batch_create(user=alice, files=_readable(2)(), prompt=PROMPT)
    claim = pipeline.document_claim()
    overloaded = ExtractionError(
        "provider_error", "the extraction service is overloaded", kind=ErrorKind.TRANSIENT
    )

    assert pipeline.document_fail(claim=claim, error=overloaded) == "failed"

    assert user_usage(alice).documents_this_month == 1


def test_canceling_a_batch_gives_back_the_quota_of_its_waiting_documents(alice, alice_client):
    batch = batch_create(user=alice, files=_readable(3)(), prompt=PROMPT)
    claim = pipeline.document_claim()
    pipeline.document_complete(claim=claim, result={"engine": "local", "fields": {}})
    assert user_usage(alice).documents_this_month == 3

    response = alice_client.post(f"/dashboard/batches/{batch.pk}/cancel/")

    assert response.status_code == 302
    statuses = sorted(batch.documents.values_list("status", flat=True))
    assert statuses == ["canceled", "canceled", "completed"]
    assert user_usage(alice).documents_this_month == 1  # the completed one stays used
