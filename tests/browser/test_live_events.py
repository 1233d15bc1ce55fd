"""In a real Chromium against daphne (batchsite.asgi, as production serves it) with a real
django-q2 cluster: the batch page follows a 100-document batch over the WebSocket, with no
polling while the socket is open, and when its web server is killed mid-batch and started again
it reconnects with the last event it saw and misses nothing; the dashboard follows too."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.files.base import ContentFile

from batches import services
from batches.models import BatchProcess
from batches.tasks import enqueue_drain
from notifications.models import Event
from tests.support.cluster import Cluster, WebServer, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.cluster, pytest.mark.django_db(transaction=True)]

DOCUMENTS = 100  # the "100-document batch", followed document by document
# The reconnect and the dashboard do not depend on the batch's size: smaller batches, quicker.
RECONNECT_DOCUMENTS = 50
DASHBOARD_DOCUMENTS = 10


@pytest.fixture
def web(asgi_server: WebServer) -> WebServer:
    return asgi_server


@pytest.fixture
def cluster(tmp_path: Path, settings) -> Iterator[Cluster]:
    """A cluster whose engine takes 20-80 ms a document, 4 at a time (started by the test)."""
    settings.SHEAF_EXTRA_ENGINES = {"counting": "tests.support.engines.CountingEngine"}
    settings.SHEAF_EXTRACTION_ENGINE = "counting"
    settings.SHEAF_PLAN_LIMITS = {"plus": {"files_per_batch": DOCUMENTS}}
    started = Cluster(
        tmp_path / "cluster.log",
        SHEAF_TEST_LATENCY="0.02,0.08",
        SHEAF_WORKERS="1",
        SHEAF_CONCURRENCY="4",
    )
    try:
        yield started
    finally:
        started.stop()


def invoices(user, count: int = DOCUMENTS) -> BatchProcess:
    files = [
        ContentFile(f"Invoice number: INV-{n:03}\nTotal: {n}.00 EUR\n".encode(), name=f"{n:03}.txt")
        for n in range(count)
    ]
    return services.batch_create(user=user, files=files, prompt="invoice number, total")


def signed_in(page, user, url: str) -> None:
    from django.test import Client

    client = Client()
    client.force_login(user)
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": url}]
    )


def progress_requests(page) -> list[str]:
    seen: list[str] = []
    page.on(
        "request", lambda request: seen.append(request.url) if "/progress/" in request.url else None
    )
    return seen


def events_seen(page, kind: str) -> list[dict]:
    return page.evaluate(
        "(kind) => window.sheafLive.events.filter((event) => event.type === kind)", kind
    )


def test_the_batch_page_follows_every_document_over_the_websocket_without_polling(
    page, web, cluster, alice
):
    from playwright.sync_api import expect

    batch = invoices(alice)
    signed_in(page, alice, web.url)
    requests = progress_requests(page)
    page.goto(f"{web.url}/dashboard/batches/{batch.pk}/")
    expect(page.locator("body[data-live-state=open]")).to_be_attached()

    page.wait_for_timeout(5000)  # polling would have asked twice by now
    assert requests == []

    cluster.start()
    enqueue_drain()
    expect(page.locator("[data-batch-status]").first).to_have_attribute(
        "data-batch-status", "completed", timeout=120_000
    )
    expect(page.locator("#batch-progress")).to_contain_text(f"{DOCUMENTS} completed")

    completed = events_seen(page, "document.completed")
    assert sorted(e["data"]["document"]["filename"] for e in completed) == [
        f"{n:03}.txt" for n in range(DOCUMENTS)
    ]
    redraws = page.evaluate("window.sheafLive.redraws")
    assert 0 < len(requests) <= redraws  # every redraw came from an event, none from a timer
    assert events_seen(page, "batch.completed")


def test_a_page_whose_web_server_died_reconnects_and_misses_nothing(page, web, cluster, alice):
    from playwright.sync_api import expect

    batch = invoices(alice, RECONNECT_DOCUMENTS)
    signed_in(page, alice, web.url)
    page.goto(f"{web.url}/dashboard/batches/{batch.pk}/")
    expect(page.locator("body[data-live-state=open]")).to_be_attached()
    cluster.env["SHEAF_TEST_LATENCY"] = "0.3,0.5"  # about 5 s for the batch: it outlives the outage
    cluster.start()
    enqueue_drain()
    assert wait_for(lambda: len(events_seen(page, "document.completed")) >= 5, timeout=60)

    web.kill()
    expect(page.locator("body[data-live-state=closed]")).to_be_attached()
    done = batch.documents.filter(status="completed")
    assert wait_for(lambda: done.count() >= 15, timeout=60)  # documents finish meanwhile
    web.start()
    expect(page.locator("body[data-live-state=open]")).to_be_attached(timeout=30_000)

    expect(page.locator("[data-batch-status]").first).to_have_attribute(
        "data-batch-status", "completed", timeout=120_000
    )
    seen = [event["id"] for event in page.evaluate("window.sheafLive.events")]
    logged = list(Event.objects.filter(batch=batch).order_by("pk").values_list("pk", flat=True))
    assert seen == logged  # every event of the batch, once, in order
    assert len(events_seen(page, "document.completed")) == RECONNECT_DOCUMENTS


def test_the_dashboard_follows_a_running_batch(page, web, cluster, alice):
    from playwright.sync_api import expect

    batch = invoices(alice, DASHBOARD_DOCUMENTS)
    signed_in(page, alice, web.url)
    page.goto(f"{web.url}/dashboard/")
    expect(page.locator("body[data-live-state=open]")).to_be_attached()
    cluster.start()
    enqueue_drain()

    row = page.locator("#batch-table tr", has_text=batch.name)
    expect(row).to_contain_text(f"{DASHBOARD_DOCUMENTS} / {DASHBOARD_DOCUMENTS}", timeout=120_000)
    expect(row.locator(".badge")).to_have_text("Completed")
