"""axe-core (WCAG 2 A and AA rules) over every page of Sheaf's own, signed out and signed in,
in a real Chromium: a violation names the rule, the element and the page. The Django admin and
Swagger UI are other projects' pages and are not checked here."""

from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils import timezone

from batches import services
from batches.tasks import drain
from documents.models import Document
from tests.batches.test_batch_checks import the_same_invoice_twice

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RULES = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}

SIGNED_OUT = [
    "/",
    "/pricing/",
    "/accounts/login/",
    "/accounts/signup/",
    "/accounts/password/reset/",
    "/accounts/confirm-email/",
    "/no-such-page/",
]


def violations(page, url: str) -> list[str]:
    """Each violation of the page at `url` as "rule (impact): element", one per element."""
    page.goto(url)
    return shown_violations(page)


def shown_violations(page) -> list[str]:
    """The violations of the page as it stands (after a form's redirect, with its message)."""
    page.wait_for_load_state("networkidle")
    found = Axe().run(page, options=RULES).response["violations"]
    return [
        f"{page.url}: {rule['id']} ({rule['impact']}): {node['html'][:160]}"
        for rule in found
        for node in rule["nodes"]
    ]


def test_every_page_passes_axe_core(page, live_server, sign_in, alice, invoice_document):
    problems = [
        problem for path in SIGNED_OUT for problem in violations(page, live_server.url + path)
    ]

    sign_in(alice)
    batch = f"/dashboard/batches/{invoice_document.batch_id}/"
    signed_in = [
        "/dashboard/",
        "/dashboard/batch-upload/",
        "/dashboard/templates/",
        batch,
        f"{batch}?show=review&sort=-total",
        f"{batch}review/",
        f"{batch}runs/1/",
        f"/dashboard/documents/{invoice_document.pk}/",
        "/settings/",
        "/accounts/email/",
        "/accounts/password/change/",
        "/billing/",
        "/pricing/",
    ]
    problems += [
        problem for path in signed_in for problem in violations(page, live_server.url + path)
    ]

    assert not problems, "\n".join(problems)


def test_a_flash_message_can_be_dismissed(page, live_server, sign_in, alice, invoice_document):
    sign_in(alice)
    # Nothing in this batch needs review: the queue says so in a message on the batch page.
    page.goto(f"{live_server.url}/dashboard/batches/{invoice_document.batch_id}/review/")
    message = page.get_by_role("status").filter(has_text="Nothing needs review")
    assert message.is_visible()

    page.get_by_role("button", name="Dismiss this message").click()

    assert message.count() == 0


def test_good_news_goes_by_itself_and_an_error_stays(
    page, live_server, sign_in, alice, invoice_document
):
    page.clock.install()
    sign_in(alice)
    page.goto(f"{live_server.url}/dashboard/documents/{invoice_document.pk}/")
    page.get_by_label("Correct total").fill("a lot")
    with page.expect_navigation():
        page.get_by_label("Correct total").press("Enter")
    error = page.get_by_role("alert").filter(has_text="total")
    assert error.is_visible()

    page.clock.run_for(11_000)
    assert error.is_visible()

    page.goto(f"{live_server.url}/dashboard/batches/{invoice_document.batch_id}/review/")
    news = page.get_by_role("status").filter(has_text="Nothing needs review")
    assert news.is_visible()
    page.clock.run_for(11_000)
    assert news.count() == 0


def test_on_a_phone_each_document_is_a_card_values_first_and_the_page_passes_axe_core(
    page, live_server, sign_in, alice, invoice_document
):
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(alice)

    assert (
        violations(page, f"{live_server.url}/dashboard/batches/{invoice_document.batch_id}/") == []
    )
    # The document is a card: its name, then its values, then its status, one under another.
    row = page.locator("[data-results] tbody tr").first
    name, total, status = (
        row.locator(cell).bounding_box()
        for cell in ("td.cell-name", 'td[data-label="total"]', "td.cell-status")
    )
    assert name["y"] < total["y"] < status["y"]
    assert total["width"] > 300


def test_the_batch_checks_pass_axe_core(page, live_server, sign_in, alice, settings):
    """The Checks panel with a duplicate listed, its heat map, and the duplicate's page saying
    why it needs review."""
    batch = the_same_invoice_twice(alice, settings)
    assert batch.checks["duplicates"]
    duplicate = batch.documents.get(original_filename="b.pdf")
    sign_in(alice)

    problems = violations(page, f"{live_server.url}/dashboard/batches/{batch.pk}/")
    assert page.get_by_role("heading", name="Checks").is_visible()
    assert page.get_by_role("table").filter(has_text="a.pdf").first.is_visible()
    problems += violations(page, f"{live_server.url}/dashboard/documents/{duplicate.pk}/")
    assert page.get_by_text("Possible duplicate of a.pdf").is_visible()

    assert not problems, "\n".join(problems)


def test_the_sample_the_dashboards_search_and_the_webhook_log_pass_axe_core(
    page, live_server, sign_in, frank, alice, settings
):
    """The empty dashboard with its sample button, the sample batch, the dashboard's figures and
    search, and the settings page with a copy button, a test event's delivery and its payload."""
    from notifications.models import WebhookDelivery
    from notifications.services import webhook_endpoint_create, webhook_ping

    settings.SHEAF_EXTRACTION_ENGINE = "local"
    settings.SHEAF_WEBHOOK_ALLOW_PRIVATE = True
    sign_in(frank)
    problems = violations(page, live_server.url + "/dashboard/")
    page.get_by_role("button", name="Try it with example invoices").click()
    page.wait_for_url("**/dashboard/batches/*/")
    problems += violations(page, page.url)
    problems += violations(page, live_server.url + "/dashboard/?q=invoices&status=queued")
    problems += violations(page, live_server.url + "/dashboard/?q=zebra")

    page.context.clear_cookies()
    sign_in(alice)
    endpoint = webhook_endpoint_create(user=alice, url=f"{live_server.url}/no-hook-here/")
    delivery = webhook_ping(user=alice, endpoint_id=endpoint.pk)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status="failed", attempts=6, response_status=404, error="The endpoint answered HTTP 404."
    )
    page.goto(live_server.url + "/settings/")
    page.get_by_label("Name").fill("nightly import")
    page.get_by_role("button", name="Create key").click()
    page.locator("[data-delivery-payload] summary").first.click()
    assert page.locator("[data-delivery-payload] pre").first.is_visible()
    assert page.get_by_role("button", name="Copy key").is_visible()
    assert page.get_by_role("button", name="Redeliver ping").is_visible()
    page.wait_for_load_state("networkidle")
    found = Axe().run(page, options=RULES).response["violations"]
    problems += [
        f"/settings/ (new key): {rule['id']} ({rule['impact']}): {node['html'][:160]}"
        for rule in found
        for node in rule["nodes"]
    ]

    assert not problems, "\n".join(problems)


def test_a_canceled_batch_text_documents_and_a_removed_original_pass_axe_core(
    page, live_server, sign_in, alice, settings
):
    settings.SHEAF_EXTRACTION_ENGINE = "local"
    read = services.batch_create(
        user=alice,
        files=[
            ContentFile(b"Invoice number: INV-7\nTotal: 12.00 EUR\n", name="invoice.txt"),
            ContentFile(b"item,amount\nPaper,12.00\n", name="items.csv"),
        ],
        prompt="invoice number, total",
    )
    drain(budget_seconds=120)
    text, table = read.documents.order_by("original_filename")
    Document.objects.filter(pk=table.pk).update(file_removed_at=timezone.now())
    canceled = services.batch_create(
        user=alice,
        files=[ContentFile(b"Total: 3.00 EUR\n", name="later.txt")],
        prompt="total",
    )
    services.batch_cancel(batch=canceled)

    sign_in(alice)
    paths = [
        f"/dashboard/batches/{canceled.pk}/",
        f"/dashboard/documents/{text.pk}/",
        f"/dashboard/documents/{table.pk}/",
        reverse("document_original", kwargs={"document_id": table.pk}),
    ]
    problems = [problem for path in paths for problem in violations(page, live_server.url + path)]

    assert not problems, "\n".join(problems)
