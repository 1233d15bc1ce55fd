"""In a real Chromium, Sheaf's pages work under their Content-Security-Policy: the browser reports
no violation, htmx still polls, the delete button still asks first, and Swagger UI renders."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from accounts.models import User
from batches.models import BatchProcess
from batches.services import batch_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Every violation the page sees, kept on the window for the test to read.
RECORD_VIOLATIONS_JS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
    window.cspViolations.push(`${event.violatedDirective} ${event.blockedURI} ${event.sample}`);
});
"""


@pytest.fixture
def signed_in(page, live_server, staff: User):
    """The page, signed in as a staff user (who also has a dashboard of their own)."""
    client = Client()
    client.force_login(staff)
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    page.context.add_init_script(RECORD_VIOLATIONS_JS)
    return page


@pytest.fixture
def queued_batch(staff: User) -> BatchProcess:
    """Queued for good (no worker runs here), so its page keeps polling."""
    text = b"Invoice number: INV-7\nTotal: 120.00 EUR\n"
    return batch_create(user=staff, files=[SimpleUploadedFile("march.txt", text)], prompt="total")


def violations(page) -> list[str]:
    return page.evaluate("window.cspViolations")


def test_the_pages_run_under_their_policy_without_a_violation(
    signed_in, live_server, queued_batch
) -> None:
    page = signed_in
    url = live_server.url
    for path in [
        "/",
        "/dashboard/",
        "/dashboard/batch-upload/",
        "/settings/",
        "/accounts/email/",
        "/billing/",
        "/admin/",
        "/admin/overview/",
        "/admin/batches/batchprocess/",
        f"/admin/batches/batchprocess/{queued_batch.pk}/change/",
    ]:
        page.goto(url + path)
        page.wait_for_load_state("load")
        assert violations(page) == [], path

    # The batch page: htmx polls the progress (no inline styles, no eval).
    with page.expect_response(lambda r: "/progress/" in r.url, timeout=10_000) as polled:
        page.goto(f"{url}/dashboard/batches/{queued_batch.pk}/")
    assert polled.value.status == 200
    page.wait_for_load_state("networkidle")
    assert violations(page) == []

    # The delete button asks first (confirm.js); dismissed, the batch stays.
    page.once("dialog", lambda dialog: dialog.dismiss())
    with page.expect_event("dialog") as asked:
        page.get_by_role("button", name="Delete batch").click()
    assert asked.value.message.startswith("Delete this batch")
    assert page.url == f"{url}/dashboard/batches/{queued_batch.pk}/"
    assert BatchProcess.objects.filter(pk=queued_batch.pk).exists()

    # The API docs: Swagger UI's inline start-up script runs under the nonce.
    page.goto(url + "/api/v1/docs/")
    page.locator(".swagger-ui .info .title").wait_for()
    assert "Sheaf API" in page.locator(".swagger-ui .info .title").inner_text()
    assert violations(page) == []
