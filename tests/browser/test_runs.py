"""In a real Chromium: "Re-run with changes" on a finished batch's page adds a field, the runs
panel shows the new run with what it changed once it has finished, its page lists each value
that changed, and the earlier run can be kept again; all of it passes axe-core."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from batches.tasks import drain
from tests.batches.test_reruns import finished  # noqa: F401  (three invoices, run 1 done)
from tests.browser.test_accessibility import violations
from tests.browser.test_what_to_extract import add_field

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_field_added_on_the_batch_page_runs_again_shows_its_changes_and_can_be_undone(
    page,
    live_server,
    sign_in,
    alice,
    finished,  # noqa: F811
    shots,
):
    sign_in(alice)
    url = f"{live_server.url}/dashboard/batches/{finished.pk}/"
    page.goto(url)
    runs = page.locator("#batch-runs")
    assert "Run 1 is the upload" in runs.inner_text()

    runs.get_by_text("Re-run with changes").click()
    add_field(page, "invoice date", "date")
    page.get_by_text("3 fields, no problems.").wait_for()
    assert violations(page, page.url) == []  # the form open
    page.goto(url)
    runs.get_by_text("Re-run with changes").click()
    add_field(page, "invoice date", "date")
    page.get_by_text("3 fields, no problems.").wait_for()
    shots("rerun-form")
    page.get_by_role("button", name="Start run 2").click()

    page.get_by_text("Run 2 started: the batch, 3 documents, asking only invoice date.").wait_for()
    drain(budget_seconds=120)
    page.goto(url)
    rows = runs.locator("[data-runs] tbody tr")
    assert rows.count() == 2
    second = runs.locator("[data-run='2']")
    assert "current" in second.inner_text()
    assert second.locator("[data-run-changes]").inner_text() == (
        "6 same · 0 changed · 3 new · 0 lost"
    )
    assert "invoice date" in page.locator(".field-specs").inner_text()  # the batch's fields now
    shots("two-runs")

    second.get_by_role("link", name="Run 2").click()
    changes = page.locator("[data-changes] tbody tr")
    expect(changes).to_have_count(3)  # waits for the run's page, where count() would not
    first_change = changes.first.inner_text()
    assert "invoice date" in first_change and "new" in first_change
    assert violations(page, page.url) == []
    shots("run-page")

    page.goto(url)
    runs.locator("[data-run='1']").get_by_role("button", name="Keep run 1").click()
    page.get_by_text("Run 1 is the batch's current run again.").wait_for()
    assert "current" in runs.locator("[data-run='1']").inner_text()
    assert "invoice date" not in page.locator(".field-specs").inner_text()
    assert page.evaluate("window.cspViolations") == []
