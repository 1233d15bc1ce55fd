"""The webhook delivery log on /settings/ shows a user their own deliveries only
(notifications/selectors.py `webhook_delivery_list_for_user`)."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from accounts.models import User
from notifications.models import WebhookDelivery
from notifications.services import webhook_endpoint_create
from tests.factories import UserFactory
from tests.notifications.conftest import run_queued_notifications

pytestmark = pytest.mark.django_db


def delivery_log(client: Client) -> dict[int, str]:
    """The log's rows on /settings/, by delivery id, as text."""
    response = client.get("/settings/")
    assert response.status_code == 200
    page = response.content.decode()
    return {
        int(pk): " ".join(re.sub(r"<[^>]+>", " ", row).split())
        for pk, row in re.findall(r'<tr data-delivery="(\d+)">(.*?)</tr>', page, re.DOTALL)
    }


def test_each_user_sees_only_their_own_deliveries(
    alice, bob, alice_client, bob_client, receiver, finished_batch
):
    webhook_endpoint_create(user=alice, url=receiver.url("/alice-hook"))
    webhook_endpoint_create(user=bob, url=receiver.url("/bob-hook"))
    finished_batch(alice, ["ok"])
    finished_batch(bob, ["fail"])
    run_queued_notifications()
    alices = set(WebhookDelivery.objects.filter(endpoint__user=alice).values_list("pk", flat=True))
    bobs = set(WebhookDelivery.objects.filter(endpoint__user=bob).values_list("pk", flat=True))
    assert len(alices) == 1 and len(bobs) == 2  # bob's: batch.failed and document.failed

    alice_log, bob_log = delivery_log(alice_client), delivery_log(bob_client)

    assert set(alice_log) == alices
    assert set(bob_log) == bobs
    assert all("/alice-hook" in row and "batch.completed" in row for row in alice_log.values())
    assert all("/bob-hook" in row for row in bob_log.values())
    kinds = [re.findall(r"\b(?:batch|document)\.\w+", row) for row in bob_log.values()]
    assert sorted(kinds) == [["batch.failed"], ["document.failed"]]


def test_a_user_without_deliveries_sees_none_of_anyone_elses(alice, receiver, finished_batch):
    webhook_endpoint_create(user=alice, url=receiver.url("/alice-hook"))
    finished_batch(alice, ["ok"])
    run_queued_notifications()
    assert WebhookDelivery.objects.count() == 1
    carol: User = UserFactory(email="carol@example.com", plan_override="plus")
    client = Client()
    client.force_login(carol)

    assert delivery_log(client) == {}
    page = client.get("/settings/").content.decode()
    assert "No deliveries yet." in page
    assert "/alice-hook" not in page
