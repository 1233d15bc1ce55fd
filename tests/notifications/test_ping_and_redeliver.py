"""The settings page's "Send a test event" (`ping`) and "Redeliver": both go through the
normal signed delivery, and the delivery log shows what was sent."""

from __future__ import annotations

import html
import json
import re

import pytest

from batchsite.errors import Rejected
from notifications.models import Event, EventKind, WebhookDelivery
from notifications.services import (
    MAX_DELIVERY_ATTEMPTS,
    webhook_endpoint_create,
    webhook_ping,
    webhook_redeliver,
)
from tests.notifications.conftest import run_queued_notifications, verify_signature

pytestmark = pytest.mark.django_db


@pytest.fixture
def endpoint(alice, receiver):
    return webhook_endpoint_create(user=alice, url=receiver.url("/alice-hook"))


def test_a_ping_is_delivered_signed_to_that_one_endpoint_and_logged(
    alice, alice_client, receiver, endpoint, django_capture_on_commit_callbacks
):
    other = webhook_endpoint_create(user=alice, url=receiver.url("/other-hook"))

    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(f"/settings/webhooks/{endpoint.pk}/ping/", follow=True)
    run_queued_notifications()

    assert response.redirect_chain == [("/settings/#webhooks", 302)]
    assert f"A test event (ping) is on its way to {endpoint.url}" in response.content.decode()
    assert [r.path for r in receiver.requests] == ["/alice-hook"]
    sent = receiver.requests[0]
    assert verify_signature(
        secret=endpoint.secret, header=sent.headers["Sheaf-Signature"], body=sent.body
    )
    assert sent.headers["Sheaf-Event"] == "ping"
    body = json.loads(sent.body)
    event = Event.objects.get(kind=EventKind.PING)
    assert body == {
        "id": event.pk,
        "type": "ping",
        "created_at": event.payload["created_at"],
        "data": {"endpoint": {"id": endpoint.pk, "url": endpoint.url}},
    }
    delivery = WebhookDelivery.objects.get()
    assert (delivery.endpoint, delivery.status, delivery.attempts) == (endpoint, "delivered", 1)
    assert sent.headers["Sheaf-Delivery"] == str(delivery.pk)
    assert not other.deliveries.exists()

    log = alice_client.get("/settings/").content.decode()
    row = re.search(rf'<tr data-delivery="{delivery.pk}">(.*?)</tr>', log, re.S)
    assert row and "<code>ping</code>" in row[1] and "delivered" in row[1]
    shown = re.search(
        rf'<tr [^>]*data-payload-of="{delivery.pk}">.*?<summary>Payload of this ping delivery'
        r"</summary><pre>(.*?)</pre>",
        log,
        re.S,
    )
    assert shown and json.loads(html.unescape(shown[1])) == body


def test_a_failing_ping_is_retried_like_any_delivery(
    alice, receiver, endpoint, django_capture_on_commit_callbacks
):
    receiver.statuses = [500]

    with django_capture_on_commit_callbacks(execute=True):
        webhook_ping(user=alice, endpoint_id=endpoint.pk)
    run_queued_notifications()

    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("pending", 1, 500)
    assert delivery.error == "The endpoint answered HTTP 500."


def test_a_second_ping_waits_for_the_first(alice, receiver, endpoint):
    webhook_ping(user=alice, endpoint_id=endpoint.pk)

    with pytest.raises(Rejected) as refused:
        webhook_ping(user=alice, endpoint_id=endpoint.pk)

    assert refused.value.problems[0].code == "conflict"
    assert WebhookDelivery.objects.count() == 1


def test_nobody_pings_or_redelivers_another_users_endpoint(
    alice, bob_client, receiver, endpoint, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        delivery = webhook_ping(user=alice, endpoint_id=endpoint.pk)
    run_queued_notifications()

    assert bob_client.post(f"/settings/webhooks/{endpoint.pk}/ping/").status_code == 404
    redeliver = bob_client.post(f"/settings/webhooks/deliveries/{delivery.pk}/redeliver/")
    assert redeliver.status_code == 404
    assert len(receiver.requests) == 1
    assert WebhookDelivery.objects.get().attempts == 1


def test_ping_and_redeliver_are_posts_of_a_signed_in_user(client, alice_client, endpoint):
    assert alice_client.get(f"/settings/webhooks/{endpoint.pk}/ping/").status_code == 405
    assert alice_client.get("/settings/webhooks/deliveries/1/redeliver/").status_code == 405
    anonymous = client.post(f"/settings/webhooks/{endpoint.pk}/ping/")
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/")
    assert not WebhookDelivery.objects.exists()


def test_a_user_whose_plan_lost_webhooks_cannot_ping(alice, alice_client, endpoint):
    alice.plan_override = "free"
    alice.save()

    response = alice_client.post(f"/settings/webhooks/{endpoint.pk}/ping/", follow=True)

    assert "Outgoing webhooks are part of the Plus and Growth plans" in response.content.decode()
    assert not WebhookDelivery.objects.exists()


def test_ping_cannot_be_subscribed_to(alice, receiver):
    with pytest.raises(Rejected) as refused:
        webhook_endpoint_create(user=alice, url=receiver.url(), events=["ping"])

    assert refused.value.problems[0].code == "invalid"
    assert "ping is not subscribed to" in refused.value.problems[0].message


# --- Redeliver ------------------------------------------------------------------------------------


def test_redeliver_makes_a_new_signed_attempt_of_a_failed_delivery(
    alice, alice_client, receiver, endpoint, finished_batch, django_capture_on_commit_callbacks
):
    receiver.statuses = [500] * MAX_DELIVERY_ATTEMPTS
    finished_batch(alice, ["ok"])
    run_queued_notifications()
    delivery = WebhookDelivery.objects.get()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status="failed", attempts=MAX_DELIVERY_ATTEMPTS, next_attempt_at=None
    )
    receiver.statuses = []
    first = receiver.requests[0]

    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(
            f"/settings/webhooks/deliveries/{delivery.pk}/redeliver/", follow=True
        )
    run_queued_notifications()

    assert "The batch.completed delivery to" in response.content.decode()
    assert len(receiver.requests) == 2
    again = receiver.requests[1]
    assert again.body == first.body
    assert again.headers["Sheaf-Delivery"] == first.headers["Sheaf-Delivery"] == str(delivery.pk)
    assert verify_signature(
        secret=endpoint.secret, header=again.headers["Sheaf-Signature"], body=again.body
    )
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_status, delivery.error) == (
        "delivered",
        MAX_DELIVERY_ATTEMPTS + 1,
        200,
        "",
    )


def test_a_redelivery_after_the_attempts_ran_out_is_one_attempt(
    alice, receiver, endpoint, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        delivery = webhook_ping(user=alice, endpoint_id=endpoint.pk)
    run_queued_notifications()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(attempts=MAX_DELIVERY_ATTEMPTS)
    receiver.statuses = [503]

    with django_capture_on_commit_callbacks(execute=True):
        webhook_redeliver(user=alice, delivery_id=delivery.pk)
    run_queued_notifications()

    delivery.refresh_from_db()
    assert (delivery.status, delivery.response_status, delivery.next_attempt_at) == (
        "failed",
        503,
        None,
    )
    assert len(receiver.requests) == 2


def test_a_pending_delivery_is_not_redelivered(alice, alice_client, receiver, endpoint):
    delivery = webhook_ping(user=alice, endpoint_id=endpoint.pk)  # not sent yet

    response = alice_client.post(
        f"/settings/webhooks/deliveries/{delivery.pk}/redeliver/", follow=True
    )

    assert "is still on its way" in html.unescape(response.content.decode())
    assert WebhookDelivery.objects.get().attempts == 0
    assert receiver.requests == []


def test_the_log_offers_redeliver_only_for_finished_deliveries(
    alice, alice_client, receiver, endpoint, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        pending = webhook_ping(user=alice, endpoint_id=endpoint.pk)  # queued, not yet sent
    page = alice_client.get("/settings/").content.decode()
    assert f"/settings/webhooks/deliveries/{pending.pk}/redeliver/" not in page
    assert f'action="/settings/webhooks/{endpoint.pk}/ping/"' in page

    run_queued_notifications()
    page = alice_client.get("/settings/").content.decode()
    assert f'action="/settings/webhooks/deliveries/{pending.pk}/redeliver/"' in page
