"""Outgoing webhooks: signed, delivered once per event, retried with backoff, never to private
addresses unless allowed."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.plans import PlanKey
from batches import pipeline
from batchsite.errors import Rejected
from notifications.models import Event, WebhookDelivery, WebhookEndpoint
from notifications.services import (
    MAX_DELIVERY_ATTEMPTS,
    event_dispatch,
    notifications_sweep,
    webhook_delivery_attempt,
    webhook_endpoint_create,
)
from tests.factories import BatchFactory, DocumentFactory
from tests.notifications.conftest import (
    NOTIFYING,
    run_queued_notifications,
    verify_signature,
)

pytestmark = pytest.mark.django_db


def _due_now() -> None:
    """Let the backoff run out, as the minutes passing would."""
    WebhookDelivery.objects.filter(status="pending").update(next_attempt_at=timezone.now())


def test_batch_completed_is_received_once_signed_with_the_endpoints_secret(
    alice, receiver, finished_batch, settings
):
    settings.SITE_URL = "https://sheaf.example.com"
    endpoint = webhook_endpoint_create(user=alice, url=receiver.url(), events=["batch.completed"])
    batch = finished_batch(alice, ["ok", "fail"], name="March")

    run_queued_notifications()
    notifications_sweep()
    run_queued_notifications()

    [request] = receiver.requests
    assert request.path == "/hooks/sheaf"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Sheaf-Event"] == "batch.completed"
    assert verify_signature(
        secret=endpoint.secret, header=request.headers["Sheaf-Signature"], body=request.body
    )
    assert not verify_signature(
        secret="whsec_wrong", header=request.headers["Sheaf-Signature"], body=request.body
    )
    body = json.loads(request.body)
    assert body["type"] == "batch.completed"
    assert body["data"]["batch"] == {
        "id": str(batch.pk),
        "name": "March",
        "status": "completed_with_errors",
        "finish": 1,
        "run": 1,
        "counts": {"total": 2, "completed": 1, "failed": 1, "canceled": 0},
        "url": f"https://sheaf.example.com/dashboard/batches/{batch.pk}/",
        "created_at": batch.created_at.isoformat(),
        "completed_at": batch.completed_at.isoformat(),
    }
    delivery = WebhookDelivery.objects.get()
    assert request.headers["Sheaf-Delivery"] == str(delivery.pk)
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("delivered", 1, 200)
    assert delivery.delivered_at is not None


def test_a_mail_server_that_is_down_does_not_hold_back_the_webhook(
    alice, receiver, finished_batch, settings
):
    webhook_endpoint_create(user=alice, url=receiver.url(), events=["batch.completed"])
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 1  # nothing listens there
    finished_batch(alice, ["ok"])

    with pytest.raises(OSError):
        run_queued_notifications()
    run_queued_notifications()  # the delivery the dispatcher queued before the mail failed

    [request] = receiver.requests
    assert request.headers["Sheaf-Event"] == "batch.completed"
    assert WebhookDelivery.objects.get().status == "delivered"


def test_the_delivery_connects_to_the_checked_address_and_keeps_the_host_name(
    alice, receiver, finished_batch
):
    webhook_endpoint_create(user=alice, url=f"http://localhost:{receiver.port}/in?x=1")
    finished_batch(alice, ["ok"])

    run_queued_notifications()

    [request] = receiver.requests
    assert request.path == "/in?x=1"
    assert request.headers["Host"] == f"localhost:{receiver.port}"


def test_document_failed_is_sent_for_a_document_that_failed_for_good(
    alice, receiver, finished_batch
):
    webhook_endpoint_create(user=alice, url=receiver.url(), events=["document.failed"])
    batch = finished_batch(alice, ["fail", "ok"])

    run_queued_notifications()

    [request] = receiver.requests
    assert request.headers["Sheaf-Event"] == "document.failed"
    data = json.loads(request.body)["data"]
    document = batch.documents.get(status="failed")
    assert data["document"]["id"] == str(document.pk)
    assert data["document"]["error"] == {
        "code": "malformed",
        "message": "invoice.pdf is not a readable PDF.",
        "kind": "permanent",
    }
    assert data["batch"]["id"] == str(batch.pk)


def test_a_poison_document_failed_by_the_sweep_is_sent_as_document_failed(
    alice, receiver, settings, django_capture_on_commit_callbacks
):
    webhook_endpoint_create(user=alice, url=receiver.url(), events=["document.failed"])
    batch = BatchFactory(user=alice)
    document = DocumentFactory(
        batch=batch,
        status="processing",
        lease_token=uuid.uuid4(),
        attempts=settings.SHEAF_MAX_ATTEMPTS,
        lease_expires_at=timezone.now() - timedelta(seconds=1),
    )

    with django_capture_on_commit_callbacks(execute=True):
        pipeline.sweep()
    run_queued_notifications()

    [request] = receiver.requests
    data = json.loads(request.body)["data"]
    assert data["document"]["id"] == str(document.pk)
    assert data["document"]["error"]["code"] == "timeout"


def test_a_500_is_retried_with_backoff_until_it_succeeds_and_the_log_shows_it(
    alice, alice_client, receiver, finished_batch
):
    receiver.statuses = [500, 503]
    webhook_endpoint_create(user=alice, url=receiver.url(), events=["batch.completed"])
    finished_batch(alice, ["ok"])

    run_queued_notifications()
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("pending", 1, 500)
    assert delivery.error == "The endpoint answered HTTP 500."
    assert delivery.next_attempt_at > timezone.now() + timedelta(seconds=25)
    assert notifications_sweep()["deliveries"] == 0  # not due yet

    _due_now()
    notifications_sweep()
    run_queued_notifications()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("pending", 2, 503)
    assert delivery.next_attempt_at > timezone.now() + timedelta(seconds=55)

    _due_now()
    notifications_sweep()
    run_queued_notifications()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("delivered", 3, 200)
    assert delivery.error == ""
    assert len(receiver.requests) == 3
    assert len({r.headers["Sheaf-Delivery"] for r in receiver.requests}) == 1

    page = alice_client.get("/settings/").content.decode()
    row = page[page.index(f'data-delivery="{delivery.pk}"') :].split("</tr>")[0]
    assert "batch.completed" in row and "delivered" in row
    assert "<td>3</td>" in row and "<td>200</td>" in row


def test_a_delivery_gives_up_after_the_last_attempt(alice, receiver, finished_batch):
    receiver.statuses = [500] * MAX_DELIVERY_ATTEMPTS
    webhook_endpoint_create(user=alice, url=receiver.url(), events=["batch.completed"])
    finished_batch(alice, ["ok"])
    run_queued_notifications()

    for _ in range(MAX_DELIVERY_ATTEMPTS - 1):
        _due_now()
        notifications_sweep()
        run_queued_notifications()

    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", MAX_DELIVERY_ATTEMPTS)
    assert delivery.next_attempt_at is None
    assert notifications_sweep(now=timezone.now() + timedelta(days=1))["deliveries"] == 0
    assert len(receiver.requests) == MAX_DELIVERY_ATTEMPTS


def test_a_redirect_is_not_followed_and_counts_as_a_failure(alice, receiver, finished_batch):
    receiver.statuses = [302]
    webhook_endpoint_create(user=alice, url=receiver.url(), events=["batch.completed"])
    finished_batch(alice, ["ok"])

    run_queued_notifications()

    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "pending"
    assert delivery.error == "The endpoint answered HTTP 302 (redirects are not followed)."
    assert len(receiver.requests) == 1


def test_dispatching_or_delivering_twice_sends_once(alice, receiver, finished_batch):
    webhook_endpoint_create(user=alice, url=receiver.url(), events=["batch.completed"])
    batch = finished_batch(alice, ["ok"])
    event = Event.objects.get(batch=batch, kind__in=NOTIFYING)

    run_queued_notifications()
    assert event_dispatch(event_id=event.pk) is False
    delivery = WebhookDelivery.objects.get(event=event)
    assert webhook_delivery_attempt(delivery_id=delivery.pk) is None
    notifications_sweep(now=timezone.now() + timedelta(hours=2))
    run_queued_notifications()

    assert len(receiver.requests) == 1
    assert WebhookDelivery.objects.count() == 1


def test_an_address_that_became_private_is_refused_at_delivery(
    alice, receiver, finished_batch, settings
):
    webhook_endpoint_create(user=alice, url=receiver.url(), events=["batch.completed"])
    settings.SHEAF_WEBHOOK_ALLOW_PRIVATE = False
    finished_batch(alice, ["ok"])

    run_queued_notifications()

    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "failed"  # refused for its address: not retried
    assert delivery.response_status is None
    assert delivery.error == (
        "127.0.0.1 is a loopback address; webhooks may only reach public addresses. Not retried."
    )
    assert receiver.requests == []


def test_events_go_only_to_endpoints_subscribed_to_them_and_only_on_paid_plans(
    alice, bob, receiver, finished_batch
):
    webhook_endpoint_create(user=alice, url=receiver.url("/failed"), events=["batch.failed"])
    webhook_endpoint_create(user=bob, url=receiver.url("/bob"))
    finished_batch(alice, ["ok"])
    run_queued_notifications()
    assert receiver.requests == []

    bob.plan_override = PlanKey.FREE  # downgraded: endpoints stay, nothing is sent
    bob.save()
    finished_batch(bob, ["ok"])
    run_queued_notifications()
    assert receiver.requests == []
    assert WebhookDelivery.objects.count() == 0


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://10.0.0.1/hook", "10.0.0.1 is a private address"),
        ("http://127.0.0.1:8000/", "127.0.0.1 is a loopback address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
        ("http://[::1]/hook", "::1 is a loopback address"),
        ("https://[fd00::1]/hook", "fd00::1 is a private address"),
        ("http://0.0.0.0/", "0.0.0.0 is an unspecified address"),
        ("http://224.0.0.1/", "224.0.0.1 is a multicast address"),
        ("http://240.0.0.1/", "240.0.0.1 is a reserved address"),
        ("http://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1 is a loopback address"),
        ("http://[2002:a00:1::]/", "2002:a00:1:: is a private address"),
        ("http://localhost/hook", "localhost resolves to"),
    ],
)
def test_private_addresses_are_refused_at_registration(alice, url, message):
    with pytest.raises(Rejected) as refused:
        webhook_endpoint_create(user=alice, url=url)

    assert refused.value.code == "invalid_url"
    assert str(refused.value).startswith(message)
    assert str(refused.value).endswith("webhooks may only reach public addresses.")
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/hook", "Webhook URLs must start with http:// or https://."),
        ("file:///etc/passwd", "Webhook URLs must start with http:// or https://."),
        ("http://user:pw@example.com/", "Webhook URLs may not carry a user name or password."),
        ("http://:80/", "The URL has no host name."),
        ("", "Give the URL that should receive the webhooks."),
    ],
)
def test_urls_that_are_not_http_or_do_not_resolve_are_refused(alice, url, message):
    with pytest.raises(Rejected) as refused:
        webhook_endpoint_create(user=alice, url=url)

    assert str(refused.value) == message
    assert not WebhookEndpoint.objects.exists()


def test_staff_see_events_and_deliveries_in_the_admin_without_secrets(
    alice, staff_client, receiver, finished_batch
):
    endpoint = webhook_endpoint_create(user=alice, url=receiver.url())
    finished_batch(alice, ["ok"])
    run_queued_notifications()

    deliveries = staff_client.get("/admin/notifications/webhookdelivery/").content.decode()
    events = staff_client.get("/admin/notifications/event/").content.decode()
    endpoints = staff_client.get(f"/admin/notifications/webhookendpoint/{endpoint.pk}/change/")

    assert receiver.url() in deliveries and "delivered" in deliveries
    assert "batch.completed" in events and "alice@example.com" in events
    assert endpoints.status_code == 200
    assert endpoint.secret not in endpoints.content.decode()


def test_a_host_that_does_not_resolve_yet_is_accepted_and_each_delivery_checks_again(
    alice, finished_batch
):
    endpoint = webhook_endpoint_create(user=alice, url="https://no-such-host.invalid/hook")
    finished_batch(alice, ["ok"])

    run_queued_notifications()

    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("pending", 1, None)
    assert delivery.error == "The host no-such-host.invalid could not be resolved."
