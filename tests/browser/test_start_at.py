"""In a real Chromium whose clock is in Tokyo: the upload form's start time is read in the
browser's time zone (start-at.js picks it), and the batch page shows the batch waiting for it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from batches.models import BatchProcess
from tests.support.documents import INVOICE_PDF

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TOKYO = "Asia/Tokyo"


@pytest.fixture
def page(browser) -> Iterator:
    """The conftest's page, with the browser's time zone set to Tokyo's (UTC+9, no DST)."""
    context = browser.new_context(
        accept_downloads=True, viewport={"width": 1280, "height": 900}, timezone_id=TOKYO
    )
    context.set_default_timeout(15_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def test_a_start_time_is_read_in_the_browsers_zone_and_shown_on_the_batch_page(
    page, live_server, sign_in, alice, shots
):
    from playwright.sync_api import expect

    sign_in(alice)
    page.goto(f"{live_server.url}/dashboard/batch-upload/")
    zone = page.get_by_label("Time zone")
    expect(zone).to_have_value(TOKYO)

    page.set_input_files(
        "input[name=files]",
        [{"name": "march.pdf", "mimeType": "application/pdf", "buffer": INVOICE_PDF}],
    )
    expect(page.locator("[data-files] .file-status")).to_have_text(["ready"])
    page.fill("[name=prompt]", "invoice number, total")
    start = (
        (timezone.now() + timedelta(days=2))
        .astimezone(ZoneInfo(TOKYO))
        .replace(second=0, microsecond=0)
    )
    page.get_by_label("Start at").fill(start.strftime("%Y-%m-%dT%H:%M"))
    shots("form")
    page.get_by_role("button", name="Start batch").click()

    expect(page).to_have_url(re.compile(r"/dashboard/batches/[0-9a-f-]{36}/$"))
    when = f"{start.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    expect(page.locator("[data-start-at] dd")).to_have_text(f"{when} (1 day, 23 hours from now)")
    expect(page.locator("[data-scheduled]")).to_contain_text(
        f"Scheduled: starts 1 day, 23 hours from now ({when}); nothing is processed before then"
    )
    expect(page.locator("[data-batch-status]")).to_have_text("Queued")
    shots("batch")
    created = BatchProcess.objects.get()
    assert created.start_at == start
    assert created.status == "queued"
    assert set(created.documents.values_list("next_attempt_at", flat=True)) == {start}
    assert page.evaluate("window.cspViolations") == []
