"""In a real Chromium, staff see a batch's and a document's status in the admin as text, never as
a control they could set: a save leaves the status as the services left it. The batch
changelist fits its columns beside the filters, and a document links to its review page."""

from __future__ import annotations

import pytest

from documents.models import Document
from tests.factories import BatchFactory, DocumentFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def failing_batch():
    # Long words, as real ones are: the columns must still fit.
    owner = UserFactory(email="accounts-payable.team@northwind-traders.example.com")
    BatchFactory(
        user=owner,
        name="Supplier-invoices-Q1-2026-Northwind-Traders-final-reconciliation",
        status="completed",
    )
    batch = BatchFactory(user=owner, name="March invoices", status="processing")
    DocumentFactory(batch=batch, status="completed", attempts=1, original_filename="a.pdf")
    DocumentFactory(
        batch=batch,
        status="failed",
        attempts=3,
        error_code="malformed",
        error_kind="permanent",
        original_filename="b.pdf",
    )
    DocumentFactory(batch=batch, status="queued", original_filename="c.pdf")
    return batch


def test_staff_see_the_status_read_only_and_a_save_keeps_it(
    page, live_server, sign_in, staff, failing_batch, shots
):
    sign_in(staff)
    url = live_server.url

    page.goto(f"{url}/admin/batches/batchprocess/")
    results = page.locator("#changelist .results")
    assert page.locator("#changelist-filter").is_visible()
    assert results.evaluate("element => element.scrollWidth <= element.clientWidth")
    filters = page.locator("#changelist-filter").bounding_box()
    table = page.locator("#result_list").bounding_box()
    assert table["x"] + table["width"] <= filters["x"]
    shots("changelist")

    page.get_by_role("link", name="March invoices").click()
    status = page.locator(".field-status")
    assert status.locator(".readonly").inner_text() == "Processing"
    assert status.locator("select, input").count() == 0
    assert page.locator("select[name=status]").count() == 0
    page.locator("input[name=name]").fill("March invoices (checked)")
    with page.expect_navigation():
        page.get_by_role("button", name="Save", exact=True).click()
    assert page.get_by_text("was changed successfully").is_visible()
    failing_batch.refresh_from_db()
    assert (failing_batch.name, failing_batch.status) == ("March invoices (checked)", "processing")

    page.goto(f"{url}/admin/batches/batchprocess/{failing_batch.pk}/change/")
    shots("batch")
    document = Document.objects.get(original_filename="b.pdf")
    page.locator(f'a[href="/admin/documents/document/{document.pk}/change/"]').click()
    assert page.locator("h1").inner_text() == "View document"
    assert page.locator(".field-status .readonly").inner_text() == "Failed"
    assert page.locator("select, button[name=_save], input[type=submit]").count() == 0
    review = page.get_by_role("link", name="Open its review page")
    assert review.get_attribute("href") == f"/dashboard/documents/{document.pk}/"
    shots("document")
    assert page.evaluate("window.cspViolations") == []
