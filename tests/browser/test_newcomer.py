"""In a real Chromium: a newcomer's first batch is the sample (from the empty dashboard to its
values, read by a real django-q2 cluster), the dashboard's search and status filter, and the
settings page's copy button, test event and redelivery, all under the page's
Content-Security-Policy."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from batches.models import BatchProcess
from batches.services import SAMPLE_INVOICES
from samples.invoices import Layout, invoice
from tests.factories import BatchFactory, DocumentFactory
from tests.support.cluster import Cluster

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def cluster(live_server, settings, tmp_path) -> Iterator[Cluster]:
    """A real `manage.py qcluster` on the test database, reading with the offline engine."""
    settings.SHEAF_EXTRACTION_ENGINE = "local"
    running = Cluster(
        tmp_path / "cluster.log",
        SHEAF_EXTRACTION_ENGINE="local",
        SHEAF_WORKERS="1",
        SITE_URL=live_server.url,
    )
    running.start()
    try:
        yield running
    finally:
        running.stop()


def test_a_newcomers_first_batch_is_the_sample_from_the_empty_dashboard_to_its_values(
    page, live_server, sign_in, frank, cluster, shots
):
    from playwright.sync_api import expect

    sign_in(frank)  # Free: one file per batch, yet the sample has three
    page.goto(f"{live_server.url}/dashboard/")
    expect(page.get_by_role("heading", name="No batches yet")).to_be_visible()
    shots("empty-dashboard")

    page.get_by_role("button", name="Try it with example invoices").click()

    expect(page).to_have_url(re.compile(r"/dashboard/batches/[0-9a-f-]{36}/$"))
    expect(page.get_by_text("3 example invoices, not counted against your plan")).to_be_visible()
    expect(page.locator("[data-sample]")).to_contain_text("A sample batch")
    batch = BatchProcess.objects.get(user=frank)
    assert batch.is_sample

    # The worker takes it; the page follows by its polls.
    percent = page.locator("[data-progress-percent]")
    expect(percent).to_have_text("100%", timeout=90_000)
    expect(page.locator("[data-batch-status]")).to_have_text("Completed")
    for seed, language, layout in SAMPLE_INVOICES:
        labels = invoice(seed, language=language, layout=Layout(layout), serial=seed % 1000).labels
        row = page.locator("#results tbody tr", has_text=labels.invoice_number).first
        expect(row.locator("[data-label=Status]")).to_have_text("Completed")
        expect(row.locator("[data-label='invoice number']")).to_contain_text(labels.invoice_number)
        expect(row.locator("[data-label='supplier']")).to_contain_text(labels.supplier)
    shots("sample-completed")

    page.get_by_role("link", name="← Batches").click()
    table = page.locator("table")
    expect(table.get_by_role("link", name="Sample: example invoices")).to_be_visible()
    expect(table.locator("[data-sample]")).to_have_text("Sample")
    expect(page.locator("[data-month-documents]")).to_have_text("0 of 50")
    expect(page.get_by_role("button", name="Try it with example invoices")).to_have_count(0)
    shots("dashboard-after")
    assert page.evaluate("window.cspViolations") == []


def test_the_dashboard_searches_and_filters_by_status_when_it_is_chosen(
    page, live_server, sign_in, alice, shots
):
    from playwright.sync_api import expect

    march = BatchFactory(user=alice, name="March invoices", status="completed")
    DocumentFactory(batch=march, original_filename="acme-0042.pdf")
    april = BatchFactory(user=alice, name="April receipts", status="failed")
    DocumentFactory(batch=april, original_filename="acme-receipt.pdf")
    BatchFactory(user=alice, name="Bank statements", status="failed")
    names = page.locator("table tbody .cell-name a")
    sign_in(alice)
    page.goto(f"{live_server.url}/dashboard/")
    expect(names).to_have_text(["Bank statements", "April receipts", "March invoices"])

    search = page.get_by_role("searchbox", name="Search")
    search.fill("ACME")
    search.press("Enter")

    expect(page).to_have_url(re.compile(r"\?q=ACME&status=$"))
    expect(names).to_have_text(["April receipts", "March invoices"])
    expect(search).to_have_value("ACME")

    # Choosing a status applies it: no button to press.
    page.get_by_label("Status").select_option("failed")

    expect(page).to_have_url(re.compile(r"\?q=ACME&status=failed$"))
    expect(names).to_have_text(["April receipts"])
    expect(page.get_by_label("Status")).to_have_value("failed")
    shots("searched-and-filtered")

    search.fill("zebra")
    search.press("Enter")
    expect(page.get_by_role("heading", name="No batches match “zebra”")).to_be_visible()
    assert page.evaluate("window.cspViolations") == []


def test_a_new_api_key_is_copied_with_its_button(page, live_server, sign_in, alice, shots):
    from playwright.sync_api import expect

    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    sign_in(alice)
    page.goto(f"{live_server.url}/settings/")
    page.get_by_label("Name").fill("nightly import")
    page.get_by_role("button", name="Create key").click()
    key = page.locator("[data-new-key]").inner_text()
    assert key.startswith("sk_sheaf_")

    page.get_by_role("button", name="Copy key").click()

    button = page.locator("[data-new-key] + button[data-copy]")  # its name changes

    expect(button).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == key
    shots("copied")
    expect(button).to_have_text("Copy key", timeout=5_000)
    assert page.evaluate("window.cspViolations") == []


def test_a_test_event_is_sent_shown_with_its_payload_and_redelivered(
    page, live_server, sign_in, alice, settings, shots
):
    from playwright.sync_api import expect

    from notifications.services import webhook_endpoint_create
    from tests.notifications.conftest import Receiver, run_queued_notifications

    settings.SHEAF_WEBHOOK_ALLOW_PRIVATE = True
    with Receiver() as receiver:
        endpoint = webhook_endpoint_create(user=alice, url=receiver.url("/hook"))
        sign_in(alice)
        page.goto(f"{live_server.url}/settings/")

        page.get_by_role("button", name=f"Send a test event to {endpoint.url}").click()
        expect(page.get_by_text("A test event (ping) is on its way")).to_be_visible()
        run_queued_notifications()  # the worker's part
        page.reload()

        row = page.locator("[data-delivery-log] tbody tr[data-delivery]").first
        expect(row).to_contain_text("ping")
        expect(row).to_contain_text("delivered")
        page.get_by_text("Payload of this ping delivery").click()
        payload = page.locator("[data-delivery-payload] pre").first
        expect(payload).to_be_visible()
        assert '"type": "ping"' in payload.inner_text()
        assert f'"url": "{endpoint.url}"' in payload.inner_text()
        shots("ping-delivered")

        row.get_by_role("button", name="Redeliver ping").click()
        expect(page.get_by_text("The ping delivery to")).to_be_visible()
        run_queued_notifications()

        assert [r.path for r in receiver.requests] == ["/hook", "/hook"]
        assert receiver.requests[0].body == receiver.requests[1].body
    assert page.evaluate("window.cspViolations") == []
