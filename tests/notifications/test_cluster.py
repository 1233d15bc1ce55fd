"""End to end with a real django-q2 cluster: a batch finishes and its webhook arrives, once."""

from __future__ import annotations

import json
import time

import pytest
from django.core.files.base import ContentFile

from batches import services
from notifications.models import Event, WebhookDelivery
from notifications.services import webhook_endpoint_create
from tests.notifications.conftest import NOTIFYING, verify_signature
from tests.support.cluster import Cluster

pytestmark = pytest.mark.cluster


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_delivers_batch_completed_once(alice, receiver, settings, tmp_path):
    settings.SHEAF_EXTRACTION_ENGINE = "local"
    endpoint = webhook_endpoint_create(user=alice, url=receiver.url(), events=["batch.completed"])
    files = [
        ContentFile(f"Invoice number: INV-{n}\nTotal: {n}.00 EUR\n".encode(), name=f"{n}.txt")
        for n in range(3)
    ]
    batch = services.batch_create(user=alice, files=files, prompt="invoice number, total")
    cluster = Cluster(tmp_path / "cluster.log", SHEAF_WEBHOOK_ALLOW_PRIVATE="1")
    try:
        cluster.start()  # the batch's kick is already queued
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not receiver.requests:
            time.sleep(0.5)
        time.sleep(2)  # room for a duplicate to show up, if there were one
    finally:
        cluster.stop()

    log = (tmp_path / "cluster.log").read_text()[-3000:]
    assert len(receiver.requests) == 1, log
    request = receiver.requests[0]
    assert verify_signature(
        secret=endpoint.secret, header=request.headers["Sheaf-Signature"], body=request.body
    )
    assert json.loads(request.body)["data"]["batch"]["id"] == str(batch.pk)
    assert Event.objects.get(batch=batch, kind__in=NOTIFYING).dispatched_at is not None
    assert WebhookDelivery.objects.get().status == "delivered"
