"""A new user's whole first visit, in a real headless Chromium against a live server, with a real
django-q2 cluster processing the documents and the loopback Stripe taking the payment.

Sign up, upgrade to Plus through the hosted Checkout stand-in, drop ten PDFs on the upload page
(nine invoices and one scan without a text layer), watch htmx move the progress to 100% without a
reload, download the CSV, retry the failed scan, and open the API docs. Each step leaves a
screenshot in var/artifacts/browser/.
"""

from __future__ import annotations

import base64
import csv
import io
import re
from collections.abc import Iterator

import pytest
from django.utils import timezone

from accounts.models import Subscription, User
from accounts.selectors import user_effective_plan
from batches.models import BatchProcess
from documents.models import Document
from samples.invoices import Layout, invoices
from tests.support.cluster import Cluster, wait_for
from tests.support.documents import image_only_pdf
from tests.support.fake_stripe import (
    FakeStripe,
    fake_stripe,  # noqa: F401 - the fixture
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

EMAIL = "dana@example.com"
PASSWORD = "a long and unusual passphrase 7"
PROMPT = "invoice number, date and total"
SCAN = "scanned-receipt.pdf"
INVOICES = {
    f"invoice-{n}.pdf": made
    for n, made in enumerate(invoices(9, seed=4, languages=["en-US"], layouts=[Layout.BLOCK]), 1)
}
# What the worker must see as the live server does (Stripe's are set by the fake_stripe fixture).
SHARED_SETTINGS = (
    "SITE_URL",
    "SHEAF_EXTRACTION_ENGINE",
    "SHEAF_WORKERS",
    "STRIPE_API_BASE",
    "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "STRIPE_PRICE_PLUS",
    "STRIPE_PRICE_GROWTH",
)
# Builds a DataTransfer of File objects inside the page, as the browser makes for a real drop.
DATA_TRANSFER_JS = """(files) => {
    const transfer = new DataTransfer();
    for (const file of files) {
        const bytes = Uint8Array.from(atob(file.data), (c) => c.charCodeAt(0));
        transfer.items.add(new File([bytes], file.name, {type: "application/pdf"}));
    }
    return transfer;
}"""
# Every htmx swap of the progress block records the percentage it showed.
RECORD_SWAPS_JS = """() => {
    window.sheafNoReload = true;
    window.sheafPercents = [];
    document.body.addEventListener("htmx:afterSwap", () => {
        const shown = document.querySelector("[data-progress-percent]");
        window.sheafPercents.push(shown ? shown.textContent : null);
    });
}"""


@pytest.fixture
def stripe(fake_stripe: FakeStripe, live_server, settings) -> FakeStripe:  # noqa: F811
    """The loopback Stripe, sending its webhooks to the live server and back to it after pay."""
    settings.SITE_URL = live_server.url
    fake_stripe.webhook_url = live_server.url + "/billing/webhook/"
    return fake_stripe


@pytest.fixture
def cluster(stripe: FakeStripe, settings, tmp_path) -> Iterator[Cluster]:
    """A real `manage.py qcluster` on the test database, configured as the live server is."""
    settings.SHEAF_EXTRACTION_ENGINE = "local"
    settings.SHEAF_WORKERS = 2
    running = Cluster(
        tmp_path / "cluster.log", **{name: str(getattr(settings, name)) for name in SHARED_SETTINGS}
    )
    running.start()
    try:
        yield running
    finally:
        running.stop()


def test_a_new_user_signs_up_upgrades_runs_a_batch_retries_and_reads_the_api_docs(
    page, shots, live_server, stripe, cluster
):
    from playwright.sync_api import expect

    url = live_server.url
    log = cluster.log

    # 1. Sign up with email and password.
    page.goto(url + "/accounts/signup/")
    page.fill("input[name=email]", EMAIL)
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    shots("signup-form")
    page.get_by_role("button", name=re.compile("sign up", re.I)).click()
    expect(page).to_have_url(url + "/dashboard/")
    expect(page.locator("[data-nav-plan]")).to_have_text("Free")
    shots("signed-up")
    user = User.objects.get(email=EMAIL)
    assert user.check_password(PASSWORD)

    # 2. Upgrade to Plus through Stripe's hosted Checkout (the loopback stand-in).
    page.goto(url + "/billing/")
    page.get_by_role("button", name=re.compile("Upgrade to Plus")).click()
    expect(page).to_have_url(re.compile(re.escape(stripe.base_url) + "/checkout/"))
    expect(page.get_by_text(f"Subscribe as {EMAIL}")).to_be_visible()
    shots("stripe-checkout")
    page.get_by_role("button", name="Pay with test card").click()
    expect(page).to_have_url(url + "/billing/?checkout=success")
    expect(page.get_by_text("Thank you!")).to_be_visible()
    assert [(d.type, d.status) for d in stripe.deliveries] == [
        ("checkout.session.completed", 200),
        ("customer.subscription.created", 200),
    ]
    # The worker applies the webhooks; the plan badge follows on the next page.
    assert wait_for(lambda: user_effective_plan(user).plan.key == "plus", timeout=30), (
        log.read_text()[-3000:]
    )
    page.reload()
    expect(page.locator("[data-nav-plan]")).to_have_text("Plus")
    shots("upgraded")
    assert Subscription.objects.get(user=user).status == "active"

    # 3. Drop ten PDFs on the upload page, describe the fields, start the batch. The worker is
    # held back until the batch page is open, so the whole run is watched there from 0%.
    cluster.kill()
    page.goto(url + "/dashboard/batch-upload/")
    expect(page.get_by_text("Up to 25 files per batch")).to_be_visible()
    files = {name: made.pdf for name, made in INVOICES.items()}
    files[SCAN] = image_only_pdf()  # pictures, no text layer, as a scan is
    transfer = page.evaluate_handle(
        DATA_TRANSFER_JS,
        [{"name": n, "data": base64.b64encode(data).decode()} for n, data in files.items()],
    )
    zone = page.locator("[data-dropzone]")
    zone.dispatch_event("dragenter", {"dataTransfer": transfer})
    expect(zone).to_have_class(re.compile("dropzone-active"))
    zone.dispatch_event("dragover", {"dataTransfer": transfer})
    zone.dispatch_event("drop", {"dataTransfer": transfer})
    expect(zone).not_to_have_class(re.compile("dropzone-active"))
    expect(page.locator("[data-file-count]")).to_have_text("10 of 25 files")
    expect(page.locator("[data-files] .file-name")).to_have_text(list(files))
    # Each file is sent on its own into the upload's draft as soon as it is dropped.
    expect(page.locator("[data-files] .file-status")).to_have_text(["ready"] * 10)
    page.fill("[name=prompt]", PROMPT)
    shots("files-dropped")
    page.get_by_role("button", name="Start batch").click()

    # 4. The batch page polls (htmx) until 100%, without reloading.
    expect(page).to_have_url(re.compile(r"/dashboard/batches/[0-9a-f-]{36}/$"))
    batch = BatchProcess.objects.get(user=user)
    assert batch.documents.count() == 10
    percent = page.locator("[data-progress-percent]")
    expect(percent).to_have_text("0%")
    expect(page.locator("[data-batch-status]")).to_have_text("Queued")
    expect(page.locator("h1 #batch-status")).to_have_text("Queued")
    page.evaluate(RECORD_SWAPS_JS)
    shots("batch-queued")
    cluster.start()
    expect(percent).to_have_text("100%", timeout=90_000)
    expect(page.locator("[data-batch-status]")).to_have_text("Completed with errors")
    # The page header follows the polled block: status badge and the run's dates.
    expect(page.locator("h1 #batch-status")).to_have_text("Completed with errors")
    expect(page.locator("#batch-details dd").nth(3)).not_to_have_text("—")
    expect(page.locator("#batch-details dd").nth(4)).not_to_have_text("—")
    progress = page.locator("#batch-progress")
    expect(progress.get_by_text("9 completed", exact=True)).to_be_visible()
    expect(progress.get_by_text("1 failed", exact=True)).to_be_visible()
    shots("batch-finished")
    assert page.evaluate("window.sheafNoReload") is True
    swaps = page.evaluate("window.sheafPercents")
    assert swaps and swaps[-1] == "100%", swaps
    scan_row = page.locator("#results tbody tr", has_text=SCAN).first
    expect(scan_row.locator("[data-label=Status]")).to_have_text("Failed")
    expect(scan_row.locator("[data-label=Error]")).to_contain_text("no_text_layer")

    # 5. Download the CSV: one row per document, the invoices' values, the scan's error.
    with page.expect_download() as download_info:
        page.get_by_role("link", name="CSV", exact=True).click()
    download = download_info.value
    download.save_as(shots.folder / "results.csv")
    table = list(csv.DictReader(io.StringIO((shots.folder / "results.csv").read_text("utf-8-sig"))))
    by_file = {row["filename"]: row for row in table}
    assert sorted(by_file) == sorted(files)
    for name, made in INVOICES.items():
        row = by_file[name]
        assert (row["status"], row["error_code"]) == ("completed", ""), row
        assert row["invoice number"] == made.labels.invoice_number
        assert row["date"] == made.labels.date
        assert (row["total"], row["total currency"]) == (f"{made.labels.total}", "USD")
        assert row["total verified"] == "true"
    assert (by_file[SCAN]["status"], by_file[SCAN]["error_code"]) == ("failed", "no_text_layer")
    assert by_file[SCAN]["total"] == ""

    # 6. Retry the failed scan: a retry cannot fix a page with nothing legible on it, and the
    # page says what would. The person re-runs it alone anyway. The worker is held back for a
    # moment so the page can be seen showing it queued again (waiting, its error gone); then it runs
    # and fails the same way.
    scan = Document.objects.get(batch=batch, original_filename=SCAN)
    first_finish = scan.completed_at
    page.get_by_role("button", name="Retry 1 failed").click()
    expect(page.get_by_text(f"{SCAN} (no_text_layer: upload a clearer scan")).to_be_visible()
    cluster.kill()
    scan_row.get_by_role("button", name="Re-run").click()
    expect(page.get_by_text(f"{SCAN} queued again.")).to_be_visible()
    expect(page.locator("[data-batch-status]")).to_have_text("Processing")
    expect(scan_row.locator("[data-label=Status]")).to_have_text("Queued")
    expect(scan_row.locator("[data-label=Values]")).to_have_text("Waiting")
    expect(percent).to_have_text("90%")
    shots("retry-queued")
    page.evaluate(RECORD_SWAPS_JS)
    cluster.start()
    expect(percent).to_have_text("100%", timeout=60_000)
    expect(page.locator("[data-batch-status]")).to_have_text("Completed with errors")
    expect(scan_row.locator("[data-label=Status]")).to_have_text("Failed")
    expect(scan_row.locator("[data-label=Error]")).to_contain_text("no_text_layer")
    expect(page.locator("h1 #batch-status")).to_have_text("Completed with errors")
    shots("retry-finished")
    assert page.evaluate("window.sheafNoReload") is True
    scan.refresh_from_db()
    assert (scan.status, scan.error_code, scan.attempts) == ("failed", "no_text_layer", 1)
    assert first_finish < scan.completed_at <= timezone.now()

    # 7. The API docs: Swagger UI renders from files the site serves itself.
    outside = []
    page.on("request", lambda r: None if r.url.startswith(url) else outside.append(r.url))
    page.goto(url + "/api/v1/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Sheaf API")
    expect(page.locator(".opblock-summary-path", has_text="/api/v1/batches/").first).to_be_visible()
    shots("api-docs")
    assert outside == []
