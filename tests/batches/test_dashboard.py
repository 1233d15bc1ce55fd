"""The dashboard: search by batch name or filename, the status filter beside it, and this
month's documents, spend and failure rate at the top."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.selectors import user_effective_plan
from accounts.services import quota_reserve
from batches.models import BatchProcess, RunResult
from batches.selectors import month_figures_for_user
from documents.models import Document
from tests.factories import BatchFactory, DocumentFactory


def text_of(response) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode()))


def listed(response) -> list[str]:
    """The batch names of the dashboard's table, in order."""
    names = re.findall(
        r'<td class="cell-name"><a href="[^"]+">([^<]+)</a>', response.content.decode()
    )
    return [html.unescape(name) for name in names]


@pytest.fixture
def alices_batches(alice, bob):
    march = BatchFactory(user=alice, name="March invoices", status="completed")
    DocumentFactory(batch=march, original_filename="acme-0042.pdf")
    april = BatchFactory(user=alice, name="April receipts", status="failed")
    DocumentFactory(batch=april, original_filename="Northwind-ACME-receipt.pdf")
    BatchFactory(user=alice, name="Bank statements", status="completed")
    bobs = BatchFactory(user=bob, name="Bob's ACME batch", status="completed")
    DocumentFactory(batch=bobs, original_filename="acme-bob.pdf")
    return march, april


def test_search_finds_batches_by_name_or_by_a_documents_filename(alice_client, alices_batches):
    by_filename = alice_client.get("/dashboard/?q=acme")
    by_name = alice_client.get("/dashboard/?q=  statements ")

    assert listed(by_filename) == ["April receipts", "March invoices"]
    assert listed(by_name) == ["Bank statements"]
    assert 'value="statements"' in by_name.content.decode()


def test_search_and_status_filter_together(alice_client, alices_batches):
    response = alice_client.get("/dashboard/?q=ACME&status=completed")

    assert listed(response) == ["March invoices"]


def test_a_search_with_no_match_says_so_and_offers_every_batch(alice_client, alices_batches):
    body = text_of(alice_client.get("/dashboard/?q=zebra"))

    assert "No batches match “zebra”" in body
    assert "Show all batches" in body
    assert "Try it with example invoices" not in body


def test_another_users_filenames_find_nothing_of_theirs(bob_client, alices_batches):
    assert listed(bob_client.get("/dashboard/?q=0042")) == []
    assert listed(bob_client.get("/dashboard/?q=acme")) == ["Bob's ACME batch"]


def test_the_pages_keep_the_search_and_the_status(alice_client, alice):
    for n in range(22):
        batch = BatchFactory(user=alice, name=f"Report {n:02d}", status="completed")
        DocumentFactory(batch=batch, original_filename=f"ledger-{n}.pdf")

    first = alice_client.get("/dashboard/?q=ledger&status=completed").content.decode()

    assert "?page=2&amp;q=ledger&amp;status=completed" in first
    second = alice_client.get("/dashboard/?page=2&q=ledger&status=completed")
    assert len(listed(second)) == 2


def test_the_status_filter_applies_when_chosen_without_a_filter_button(
    alice_client, alices_batches
):
    body = alice_client.get("/dashboard/").content.decode()

    assert 'src="/static/js/auto-filter.js"' in body
    assert re.search(r"<form [^>]*data-auto-filter", body)
    assert re.search(r'<select id="status-filter" name="status" data-auto-submit>', body)
    assert ">Filter</button>" not in body


# --- This month's figures ------------------------------------------------------------------------


def finished(batch: BatchProcess, status: str, *, cost: str | None, at: datetime) -> Document:
    document = DocumentFactory(batch=batch, status=status, completed_at=at)
    RunResult.objects.create(
        run=batch.current_run,
        document=document,
        status=status,
        cost_usd=Decimal(cost) if cost is not None else None,
        updated_at=at,
    )
    return document


def test_this_months_figures_count_this_months_work_and_not_the_samples(alice, bob):
    now = datetime(2026, 12, 15, 12, tzinfo=UTC)
    last_month = datetime(2026, 11, 30, 23, 59, tzinfo=UTC)
    batch = BatchFactory(user=alice)
    for _ in range(3):
        finished(batch, "completed", cost="0.010000", at=now - timedelta(days=1))
    finished(batch, "failed", cost="0.002500", at=now - timedelta(days=2))
    finished(batch, "failed", cost="1.000000", at=last_month)
    sample = BatchFactory(user=alice, is_sample=True)
    finished(sample, "failed", cost="5.000000", at=now)
    finished(BatchFactory(user=bob), "failed", cost="9.000000", at=now)
    quota_reserve(user=alice, plan=user_effective_plan(alice).plan, documents=4, now=now)

    figures = month_figures_for_user(user=alice, now=now)

    assert figures.documents == 4
    assert figures.documents_allowed == 1000
    assert figures.spent_usd == Decimal("0.0325")
    assert (figures.finished, figures.failed, figures.failure_percent) == (4, 1, 25)


def test_the_dashboard_shows_this_months_figures(alice_client, alice):
    batch = BatchFactory(user=alice)
    now = timezone.now()
    finished(batch, "completed", cost="0.120000", at=now)
    finished(batch, "failed", cost=None, at=now)
    quota_reserve(user=alice, plan=user_effective_plan(alice).plan, documents=2)

    body = alice_client.get("/dashboard/").content.decode()

    documents = re.search(r"data-month-documents>(.*?)</dd>", body, re.S)
    spend = re.search(r"data-month-spend>(.*?)</dd>", body, re.S)
    failures = re.search(r"data-month-failures>(.*?)</dd>", body, re.S)
    assert documents and re.sub(r"<[^>]+>", "", documents[1]) == "2 of 1,000"
    assert spend and re.sub(r"<[^>]+>", "", spend[1]) == "$0.12"
    assert failures and re.sub(r"<[^>]+>", "", failures[1]) == "50% 1 of 2 documents"


def test_before_anything_finished_the_failure_rate_is_a_dash(alice_client, alice):
    BatchFactory(user=alice)

    body = text_of(alice_client.get("/dashboard/"))

    assert "Failure rate this month — nothing finished yet" in " ".join(body.split())
