"""In a real Chromium: the batch page's htmx polls are conditional (the browser keeps the
progress partial with its ETag and asks again with If-None-Match), the server answers 304 while
nothing changed, and the page still follows the batch when something does."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from batches import services
from batches.models import BatchProcess
from documents.models import Document
from tests.support.documents import INVOICE_PDF

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_batch_pages_polls_are_304_while_nothing_changes_and_it_follows_changes(
    page, live_server, sign_in, alice, settings, shots
):
    from playwright.sync_api import expect

    settings.SHEAF_EXTRACTION_ENGINE = "local"
    batch = services.batch_create(
        user=alice,
        files=[ContentFile(INVOICE_PDF, name=f"{n}.pdf") for n in ("march", "april")],
        prompt="invoice number, total",
    )
    # What the server answered each poll: the page's XMLHttpRequest sees the browser's cached
    # copy as a 200 after a 304, so the status comes from the network layer (CDP).
    polls: list[tuple[int, str | None]] = []
    sent: dict[str, str | None] = {}
    answered: dict[str, int] = {}
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.on(
        "Network.requestWillBeSentExtraInfo",
        lambda event: sent.setdefault(event["requestId"], event["headers"].get("If-None-Match")),
    )
    cdp.on(
        "Network.responseReceivedExtraInfo",
        lambda event: answered.setdefault(event["requestId"], event["statusCode"]),
    )

    def record(event) -> None:
        if "/progress/" in event["response"]["url"]:
            request = event["requestId"]
            polls.append((answered.get(request, event["response"]["status"]), sent.get(request)))

    cdp.on("Network.responseReceived", record)
    sign_in(alice)
    page.goto(f"{live_server.url}/dashboard/batches/{batch.pk}/")
    progress = page.locator("#batch-progress")
    expect(progress.get_by_text("2 queued", exact=True)).to_be_visible()
    deadline = time.monotonic() + 20
    while sum(status == 304 for status, _ in polls) < 3 and time.monotonic() < deadline:
        page.wait_for_timeout(500)
    assert polls[0][0] == 200
    assert sum(status == 304 for status, _ in polls) >= 3, polls
    assert all(etag for _, etag in polls[1:]), polls
    shots("unchanged")

    # A worker takes a document: the next poll draws it.
    Document.objects.filter(batch=batch, original_filename="march.pdf").update(
        status=Document.Status.PROCESSING,
        attempts=1,
        lease_token=uuid.uuid4(),
        lease_expires_at=timezone.now() + timedelta(minutes=5),
        updated_at=timezone.now(),
    )
    expect(progress.get_by_text("1 processing", exact=True)).to_be_visible(timeout=10_000)
    assert polls[-1][0] == 200, polls
    services.batch_cancel(batch=BatchProcess.objects.get(pk=batch.pk))
    expect(page.locator("[data-batch-status]")).to_have_text("Canceled", timeout=10_000)
    expect(page.locator("h1 #batch-status")).to_have_text("Canceled")
    shots("changed")
