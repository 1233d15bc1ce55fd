"""The webhook egress guards, each tested so that removing it fails a test (notifications/
egress.py): every address a name resolves to is checked, site-local IPv6 is refused with the
other non-public ranges, a delivery refused for its address is not retried, and the delivery
connects to the address that was checked, never to the name again (DNS rebinding).

DNS is faked by replacing `socket.getaddrinfo` (the resolver both the check and the HTTP client
use) with scripted answers per name; every other name and every literal goes to the real one.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from batchsite.errors import Rejected
from notifications.models import WebhookDelivery, WebhookEndpoint
from notifications.services import notifications_sweep, webhook_endpoint_create
from tests.notifications.conftest import Receiver, run_queued_notifications

pytestmark = pytest.mark.django_db

NAME = "hooks.example.test"
# A public address: the checks below refuse the URL before anything connects to it.
PUBLIC_V4 = "93.184.215.14"
PUBLIC_V6 = "2606:2800:21f:cb07:6820:80da:af6b:8b2c"


@dataclass
class FakeDns:
    """Answers for NAME, one list per call (the last one repeats), and who asked."""

    answers: list[list[str]] = field(default_factory=list)
    asked: int = 0

    def resolve(self, *addresses: str) -> None:
        """The next look-ups of NAME answer these addresses (every later one too)."""
        self.answers = [list(addresses)]

    def then(self, *addresses: str) -> None:
        """After the answers queued so far, NAME answers these."""
        self.answers.append(list(addresses))

    def getaddrinfo(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        self.asked += 1
        answer = self.answers[0] if len(self.answers) == 1 else self.answers.pop(0)
        infos = []
        for text in answer:
            if ipaddress.ip_address(text).version == 6:
                infos.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (text, port, 0, 0)))
            else:
                infos.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (text, port)))
        return infos


@pytest.fixture
def dns(monkeypatch) -> Iterator[FakeDns]:
    fake = FakeDns()
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in (NAME, NAME.encode()):
            return fake.getaddrinfo(host, port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield fake


def _deliver_one(user, finished_batch) -> WebhookDelivery:
    finished_batch(user, ["ok"])
    run_queued_notifications()
    return WebhookDelivery.objects.get()


# --- Every resolved address is checked ------------------------------------------------------------


@pytest.mark.parametrize(
    ("addresses", "refused"),
    [
        ((PUBLIC_V4, "10.0.0.7"), "10.0.0.7, which is a private address"),
        ((PUBLIC_V6, PUBLIC_V4, "127.0.0.1"), "127.0.0.1, which is a loopback address"),
        ((PUBLIC_V4, "169.254.169.254"), "169.254.169.254, which is a link-local address"),
        ((PUBLIC_V4, PUBLIC_V6, "fec0::5"), "fec0::5, which is a site-local address"),
    ],
)
def test_a_name_with_any_private_address_among_public_ones_is_refused_at_registration(
    alice, dns, addresses, refused
):
    dns.resolve(*addresses)

    with pytest.raises(Rejected) as refusal:
        webhook_endpoint_create(user=alice, url=f"https://{NAME}/hook")

    assert refusal.value.code == "invalid_url"
    assert str(refusal.value) == (
        f"{NAME} resolves to {refused}; webhooks may only reach public addresses."
    )
    assert not WebhookEndpoint.objects.exists()


def test_a_private_address_added_after_registration_fails_the_delivery_before_any_connection(
    alice, dns, finished_batch
):
    dns.resolve(PUBLIC_V4)
    webhook_endpoint_create(user=alice, url=f"https://{NAME}/hook")
    dns.resolve(PUBLIC_V4, "10.0.0.7")

    delivery = _deliver_one(alice, finished_batch)

    assert (delivery.status, delivery.attempts, delivery.response_status) == ("failed", 1, None)
    assert delivery.error == (
        f"{NAME} resolves to 10.0.0.7, which is a private address; webhooks may only reach "
        "public addresses. Not retried."
    )


# --- Site-local IPv6, and refusals are final ------------------------------------------------------


@pytest.mark.parametrize("literal", ["fec0::1", "fec0:0:0:ffff::1", "feff:ffff::1"])
def test_site_local_ipv6_urls_are_refused_with_the_other_non_public_ranges(alice, literal):
    with pytest.raises(Rejected) as refusal:
        webhook_endpoint_create(user=alice, url=f"http://[{literal}]/hook")

    assert str(refusal.value) == (
        f"{literal} is a site-local address; webhooks may only reach public addresses."
    )
    assert not WebhookEndpoint.objects.exists()


def test_a_delivery_refused_for_its_address_fails_at_once_and_is_never_retried(
    alice, alice_client, dns, finished_batch
):
    dns.resolve(PUBLIC_V6)
    webhook_endpoint_create(user=alice, url=f"https://{NAME}/hook")
    dns.resolve("fec0::5")

    delivery = _deliver_one(alice, finished_batch)
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    assert delivery.next_attempt_at is None
    assert delivery.error.endswith(
        "fec0::5, which is a site-local address; webhooks may only "
        "reach public addresses. Not retried."
    )

    dns.resolve(PUBLIC_V6)  # even were the name public again, the refusal stands
    assert notifications_sweep(now=timezone.now() + timedelta(days=1))["deliveries"] == 0
    run_queued_notifications()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    page = alice_client.get("/settings/").content.decode()
    row = page[page.index(f'data-delivery="{delivery.pk}"') :].split("</tr>")[0]
    assert "failed" in row and "site-local address" in row and "Not retried." in row


def test_a_name_that_does_not_resolve_is_still_retried(alice, dns, finished_batch):
    dns.resolve(PUBLIC_V4)
    webhook_endpoint_create(user=alice, url=f"https://{NAME}/hook")
    dns.resolve()  # NXDOMAIN-like: no address at all

    delivery = _deliver_one(alice, finished_batch)

    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert delivery.error == f"The host {NAME} could not be resolved."
    assert delivery.next_attempt_at is not None


# --- The delivery connects to the checked address (DNS rebinding) ---------------------------------


def test_the_delivery_connects_to_the_address_it_checked_not_to_a_new_answer_for_the_name(
    alice, dns, receiver, finished_batch
):
    """The receiver on 127.0.0.1 stands for the public address the check saw; an "internal
    service" on 127.0.0.2, same port, for what the name answers a moment later. (Loopback needs
    SHEAF_WEBHOOK_ALLOW_PRIVATE, which lifts the address rule but not the pinning.)"""
    with Receiver(host="127.0.0.2", port=receiver.port) as internal:
        dns.resolve("127.0.0.1")
        webhook_endpoint_create(user=alice, url=f"http://{NAME}:{receiver.port}/hook")
        dns.asked = 0
        dns.then("127.0.0.2")  # the delivery's check gets 127.0.0.1; any later look-up, .2

        delivery = _deliver_one(alice, finished_batch)

        assert internal.requests == []
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("delivered", 1, 200)
    [request] = receiver.requests
    assert request.headers["Host"] == f"{NAME}:{receiver.port}"
    assert request.path == "/hook"
    assert dns.asked == 1  # the check's look-up, and no other
