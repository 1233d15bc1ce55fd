"""The live part of the batch page and its controls: progress polling, cancel, retry, re-run,
exports and the results table (batches/views.py)."""

from __future__ import annotations

import csv
import html
import io
import json
import re
import uuid
from datetime import datetime, timedelta
from typing import Any

import openpyxl
import pytest
from django.utils import timezone

from accounts.models import MonthlyUsage
from accounts.selectors import month_start
from batches import pipeline
from batches.models import BatchProcess
from documents.models import Document
from tests.factories import BatchFactory, DocumentFactory

pytestmark = pytest.mark.django_db

BATCH_NAME = "Alice's March invoices"


def result(number: str | None, date: str | None, total: str | None, /, **extra: Any) -> dict:
    def cell(value: str | None) -> dict:
        if value is None:
            return {"value": None, "quote": None, "page": None, "verified": False}
        return {"value": value, "quote": value, "page": 1, "verified": True}

    fields = {
        "invoice number": cell(number),
        "date": cell(date),
        "total": {**cell(total), "currency": "EUR"} if total else cell(None),
    }
    fields.update(extra)
    return {"engine": "local", "model": None, "fields": fields}


def add_document(batch: BatchProcess, name: str, status: str, **kwargs: Any) -> Document:
    now = timezone.now()
    values: dict[str, Any] = {
        "original_filename": name,
        "status": status,
        "started_at": batch.started_at if status != Document.Status.QUEUED else None,
    }
    if status == Document.Status.COMPLETED:
        values.update(
            attempts=1,
            read_at=now,
            text="Invoice number: INV-001",
            page_count=1,
            completed_at=now,
            result=result("INV-001", "2024-03-01", "120.00"),
        )
    elif status == Document.Status.FAILED:
        values.update(
            attempts=3,
            read_at=now,
            text="Total: 1",
            page_count=1,
            completed_at=now,
            error_code="provider_error",
            error_message=f"{name}: the extraction service did not answer (gave up after 3 "
            "attempts)",
        )
    elif status == Document.Status.PROCESSING:
        values.update(
            attempts=1,
            lease_token=uuid.uuid4(),
            lease_expires_at=now + timedelta(minutes=1),
        )
    values.update(kwargs)
    document = DocumentFactory(batch=batch, **values)
    if status == Document.Status.QUEUED:
        reserve_quota(document)
    return document


def reserve_quota(document: Document) -> None:
    usage, _ = MonthlyUsage.objects.get_or_create(user=document.user, month=month_start())
    usage.documents += 1
    usage.save()
    Document.objects.filter(pk=document.pk).update(quota_month=month_start())


def documents_used(user) -> int:
    usage = MonthlyUsage.objects.filter(user=user, month=month_start()).first()
    return usage.documents if usage else 0


@pytest.fixture
def running_batch(alice) -> BatchProcess:
    """Alice's batch ten minutes in: 2 of 5 documents done, one in flight, two waiting."""
    batch = BatchFactory(
        user=alice,
        name=BATCH_NAME,
        status=BatchProcess.Status.PROCESSING,
        started_at=timezone.now() - timedelta(minutes=10),
    )
    add_document(batch, "paid.pdf", "completed")
    add_document(batch, "scan.pdf", "failed")
    add_document(batch, "in-flight.pdf", "processing")
    add_document(batch, "later-1.pdf", "queued")
    add_document(batch, "later-2.pdf", "queued")
    pipeline.batch_refresh(batch_id=batch.pk)
    return batch


@pytest.fixture
def finished_batch(alice) -> BatchProcess:
    """Alice's batch after the run: one document completed, two failed."""
    now = timezone.now()
    batch = BatchFactory(
        user=alice,
        name=BATCH_NAME,
        status=BatchProcess.Status.COMPLETED_WITH_ERRORS,
        started_at=now - timedelta(minutes=10),
        completed_at=now - timedelta(minutes=1),
    )
    add_document(batch, "march.pdf", "completed")
    add_document(batch, "timeout.pdf", "failed")
    add_document(batch, "overloaded.pdf", "failed")
    pipeline.batch_refresh(batch_id=batch.pk)
    return batch


def document(batch: BatchProcess, name: str) -> Document:
    return batch.documents.get(original_filename=name)


def state_of(batch: BatchProcess) -> dict[str, Any]:
    """Everything the controls could change: the batch, its documents and the month's quota."""
    row = BatchProcess.objects.filter(pk=batch.pk).values(
        "status", "completed_at", "processed_documents", "failed_documents", "updated_at"
    )
    documents = Document.objects.filter(batch_id=batch.pk).order_by("pk")
    return {
        "batch": row.get(),
        "documents": list(
            documents.values(
                "pk",
                "status",
                "attempts",
                "read_at",
                "text",
                "page_count",
                "result",
                "error_code",
                "error_message",
                "next_attempt_at",
                "quota_month",
                "completed_at",
                "updated_at",
            )
        ),
        "usage": list(MonthlyUsage.objects.order_by("pk").values("user_id", "month", "documents")),
    }


def text_of(response) -> str:
    text = re.sub(r"<[^>]+>", " ", response.content.decode())
    return " ".join(html.unescape(text).split())


def messages_of(response) -> list[tuple[str, str]]:
    """(level, text) of each message shown on the page."""
    found = re.findall(
        r'<div class="message message-(\w+)[^"]*"[^>]*><span>(.*?)</span>',
        response.content.decode(),
        re.S,
    )
    return [(level, " ".join(html.unescape(text).split())) for level, text in found]


ETA = re.compile(r"about [\w ]+ left")


def progress_root(response) -> str:
    """The opening tag of the element htmx swaps."""
    match = re.search(r'<div id="batch-progress"[^>]*>', response.content.decode())
    assert match, response.content.decode()[:500]
    return match.group(0)


# --- Access ---------------------------------------------------------------------------------------


def control_urls(batch: BatchProcess) -> dict[str, str]:
    done = document(batch, "paid.pdf")
    return {
        "progress": f"/dashboard/batches/{batch.pk}/progress/",
        "cancel": f"/dashboard/batches/{batch.pk}/cancel/",
        "retry": f"/dashboard/batches/{batch.pk}/retry/",
        "export-csv": f"/dashboard/batches/{batch.pk}/export/csv/",
        "export-json": f"/dashboard/batches/{batch.pk}/export/json/",
        "export-md": f"/dashboard/batches/{batch.pk}/export/md/",
        "export-xlsx": f"/dashboard/batches/{batch.pk}/export/xlsx/",
        "rerun": f"/dashboard/documents/{done.pk}/rerun/",
    }


CONTROLS = [
    ("progress", "get"),
    ("cancel", "post"),
    ("retry", "post"),
    ("export-csv", "get"),
    ("export-json", "get"),
    ("export-md", "get"),
    ("export-xlsx", "get"),
    ("rerun", "post"),
]


@pytest.mark.parametrize(("view", "method"), CONTROLS)
def test_an_anonymous_visitor_is_sent_to_sign_in_and_nothing_changes(
    client, running_batch, view, method
):
    url = control_urls(running_batch)[view]
    before = state_of(running_batch)

    response = getattr(client, method)(url)

    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={url}"
    assert state_of(running_batch) == before


@pytest.mark.parametrize(("view", "method"), CONTROLS)
def test_another_user_gets_404_for_alices_batch_and_nothing_changes(
    bob_client, running_batch, view, method
):
    url = control_urls(running_batch)[view]
    before = state_of(running_batch)

    response = getattr(bob_client, method)(url)

    assert response.status_code == 404
    assert not response.has_header("Content-Disposition")
    body = response.content.decode()
    for leaked in ("INV-001", "paid.pdf", "later-1.pdf", BATCH_NAME, html.escape(BATCH_NAME)):
        assert leaked not in body
    assert state_of(running_batch) == before


def test_another_users_follow_up_page_shows_no_message_about_alices_batch(
    bob_client, running_batch
):
    bob_client.post(f"/dashboard/batches/{running_batch.pk}/cancel/")

    assert messages_of(bob_client.get("/dashboard/")) == []


@pytest.mark.parametrize(
    ("view", "method"),
    [
        ("progress", "post"),
        ("progress", "delete"),
        ("cancel", "get"),
        ("cancel", "put"),
        ("retry", "get"),
        ("retry", "delete"),
        ("export-csv", "post"),
        ("export-xlsx", "delete"),
        ("rerun", "get"),
        ("rerun", "put"),
    ],
)
def test_a_wrong_method_is_405_and_changes_nothing(alice_client, running_batch, view, method):
    url = control_urls(running_batch)[view]
    before = state_of(running_batch)

    response = getattr(alice_client, method)(url)

    assert response.status_code == 405
    assert not response.has_header("Content-Disposition")
    assert state_of(running_batch) == before


@pytest.mark.parametrize(
    "url",
    [
        "/dashboard/batches/00000000-0000-0000-0000-000000000000/progress/",
        "/dashboard/batches/00000000-0000-0000-0000-000000000000/export/csv/",
    ],
)
def test_an_unknown_batch_is_404(alice_client, running_batch, url):
    assert alice_client.get(url).status_code == 404


@pytest.mark.parametrize("path", ["cancel", "retry"])
def test_controls_on_an_unknown_batch_are_404(alice_client, running_batch, path):
    before = state_of(running_batch)

    response = alice_client.post(f"/dashboard/batches/{uuid.uuid4()}/{path}/")

    assert response.status_code == 404
    assert state_of(running_batch) == before


def test_rerun_of_an_unknown_document_is_404(alice_client, running_batch):
    before = state_of(running_batch)

    response = alice_client.post(f"/dashboard/documents/{uuid.uuid4()}/rerun/")

    assert response.status_code == 404
    assert state_of(running_batch) == before


# --- Progress ---------------------------------------------------------------------------------


def test_the_progress_partial_shows_counts_per_state_percentage_and_eta(
    alice_client, running_batch
):
    response = alice_client.get(f"/dashboard/batches/{running_batch.pk}/progress/")

    assert response.status_code == 200
    body = response.content.decode()
    text = text_of(response)
    assert "<html" not in body  # a fragment for htmx to swap in, not a page
    for count in ("2 queued", "1 processing", "1 completed", "1 failed"):
        assert count in text
    assert "canceled" not in text
    assert "2 of 5 done" in text
    assert "40%" in text
    assert 'aria-valuenow="40"' in body
    # 2 done in 10 minutes, 3 to go: about 15 minutes more at the same pace.
    assert ETA.search(text).group(0) == "about 15 min left"
    for name in ("paid.pdf", "scan.pdf", "in-flight.pdf", "later-1.pdf", "later-2.pdf"):
        assert name in text


def test_the_progress_partial_polls_itself_while_the_batch_runs(alice_client, running_batch):
    url = f"/dashboard/batches/{running_batch.pk}/progress/"

    root = progress_root(alice_client.get(url))

    assert f'hx-get="{url}"' in root
    # Redrawn on each live event, and every 2 s while the WebSocket is closed (live.js).
    assert 'hx-trigger="every 2s, sheaf:event from:body"' in root
    assert 'hx-swap="outerHTML"' in root
    assert f'data-live="{running_batch.pk}"' in root


def test_the_batch_page_starts_the_polling_too(alice_client, running_batch):
    response = alice_client.get(f"/dashboard/batches/{running_batch.pk}/")

    root = progress_root(response)
    assert f'hx-get="/dashboard/batches/{running_batch.pk}/progress/"' in root
    assert 'hx-trigger="every 2s, sheaf:event from:body"' in root


def test_a_long_batch_shows_its_documents_a_page_at_a_time_and_polls_the_page_shown(
    alice_client, alice
):
    batch = BatchFactory(user=alice, status=BatchProcess.Status.PROCESSING)
    for n in range(60):
        add_document(batch, f"doc-{n:02}.pdf", "completed" if n < 55 else "queued")
    page_url = f"/dashboard/batches/{batch.pk}/"

    first = text_of(alice_client.get(page_url))
    assert "Documents and values 1\u201350 of 60" in first
    assert "55 of 60 done" in first  # counts cover the whole batch
    assert "doc-49.pdf" in first
    assert "doc-50.pdf" not in first

    second = alice_client.get(f"{page_url}?page=2")
    assert f'hx-get="{page_url}progress/?page=2"' in progress_root(second)
    text = text_of(second)
    assert "Documents and values 51\u201360 of 60" in text
    assert "doc-50.pdf" in text and "doc-59.pdf" in text
    assert "doc-49.pdf" not in text

    polled = text_of(alice_client.get(f"{page_url}progress/?page=2"))
    assert "doc-59.pdf" in polled and "doc-00.pdf" not in polled


def test_the_batch_page_counts_fields_with_a_value_missing_and_not_found_in_the_text(
    alice_client, alice
):
    def cell(value, verified):
        return {"value": value, "quote": value, "page": 1, "verified": verified}

    batch = BatchFactory(user=alice, status=BatchProcess.Status.PROCESSING)
    answers = [
        {"number": cell("INV-1", True), "total": cell("10.00", True)},
        {"number": cell("INV-2", True), "total": cell("99.00", False), "date": cell(None, False)},
    ]
    for text in ("Invoice INV-1 Total 10.00", "Invoice INV-2"):
        DocumentFactory(batch=batch, read_at=timezone.now(), text=text)
    for fields in answers:
        claim = pipeline.document_claim()
        result = {"engine": "local", "model": None, "fields": fields}
        assert pipeline.document_complete(claim=claim, result=result) == "completed"

    text = text_of(alice_client.get(f"/dashboard/batches/{batch.pk}/"))

    # 5 fields: 4 with a value (the date is missing), and one value's quote is not in the text,
    # whatever the engine claimed of it.
    assert "4 of 5 fields have a value, 1 missing" in text
    assert "3 found on the page, 1 not found in the text, 0 invalid" in text
    assert "% of values verified" not in text


def test_no_eta_is_shown_before_any_document_is_done(alice_client, alice):
    batch = BatchFactory(
        user=alice,
        status=BatchProcess.Status.PROCESSING,
        started_at=timezone.now() - timedelta(minutes=5),
    )
    add_document(batch, "one.pdf", "processing")
    add_document(batch, "two.pdf", "queued")

    text = text_of(alice_client.get(f"/dashboard/batches/{batch.pk}/progress/"))

    assert "0 of 2 done" in text
    assert "0%" in text
    assert not ETA.search(text)


def test_the_progress_partial_brings_the_page_headers_status_and_dates_along(
    alice_client, finished_batch
):
    """The title badge and the Started/Completed dates sit outside the polled block; the partial
    sends them out of band, so a batch that finishes while watched does not read "Processing"."""
    body = alice_client.get(f"/dashboard/batches/{finished_batch.pk}/progress/").content.decode()

    badge = re.search(r'<span id="batch-status"[^>]*hx-swap-oob="true"[^>]*>([^<]+)<', body)
    assert badge and badge.group(1) == "Completed with errors"
    details = re.search(
        r'<dl[^>]*id="batch-details"[^>]*hx-swap-oob="true"[^>]*>(.*?)</dl>', body, re.S
    )
    assert details
    dates = re.findall(r"<dt>(Started|Completed)</dt><dd><time", details.group(1))
    assert dates == ["Started", "Completed"]


def test_the_batch_page_renders_its_header_in_place_not_out_of_band(alice_client, running_batch):
    body = alice_client.get(f"/dashboard/batches/{running_batch.pk}/").content.decode()

    assert re.search(r'<h1 class="batch-title">[^<]*<span id="batch-status"[^>]*>Processing<', body)
    assert body.count('id="batch-status"') == 1
    assert body.count('id="batch-details"') == 1
    assert "hx-swap-oob" not in body


@pytest.mark.parametrize("page", ["progress/", ""])
def test_a_finished_batch_stops_polling_and_shows_no_eta(alice_client, finished_batch, page):
    response = alice_client.get(f"/dashboard/batches/{finished_batch.pk}/{page}")

    assert response.status_code == 200
    root = progress_root(response)
    assert "hx-get" not in root
    assert "hx-trigger" not in root
    assert "hx-trigger" not in response.content.decode()
    text = text_of(response)
    assert "3 of 3 done" in text
    assert "100%" in text
    assert not ETA.search(text)
    assert "Cancel batch" not in text
    assert "Retry 2 failed" in text


# --- Cancel -----------------------------------------------------------------------------------


def test_cancel_stops_the_queued_documents_and_the_batch(alice_client, alice, running_batch):
    assert documents_used(alice) == 2

    response = alice_client.post(f"/dashboard/batches/{running_batch.pk}/cancel/")

    assert response.status_code == 302
    assert response["Location"] == f"/dashboard/batches/{running_batch.pk}/"
    running_batch.refresh_from_db()
    assert running_batch.status == BatchProcess.Status.CANCELED
    assert running_batch.completed_at is not None
    statuses = dict(running_batch.documents.values_list("original_filename", "status"))
    assert statuses == {
        "paid.pdf": "completed",
        "scan.pdf": "failed",
        "in-flight.pdf": "processing",  # finishes on its own; the batch stays canceled
        "later-1.pdf": "canceled",
        "later-2.pdf": "canceled",
    }
    for name in ("later-1.pdf", "later-2.pdf"):
        assert document(running_batch, name).error_code == "canceled"
    assert documents_used(alice) == 0  # canceled documents give their quota back

    page = alice_client.get(response["Location"])
    assert messages_of(page) == [
        ("success", "Batch canceled; documents already being processed will finish.")
    ]
    text = text_of(page)
    assert "2 canceled" in text
    # What ran and what was canceled, never "5 of 5 done · 100%".
    assert "2 of 5 ran (1 completed, 1 failed) · 2 canceled before they ran" in text
    assert "100%" not in text
    assert "hx-trigger" not in progress_root(page)
    # A canceled batch is over: nothing offers a retry or a re-run that would be refused.
    assert "Retry" not in text and "Re-run" not in text
    later = document(running_batch, "later-1.pdf")
    assert "Replace the original" not in text_of(
        alice_client.get(f"/dashboard/documents/{later.pk}/")
    )


def test_a_second_cancel_shows_an_error_and_changes_nothing(alice_client, running_batch):
    alice_client.post(f"/dashboard/batches/{running_batch.pk}/cancel/", follow=True)
    before = state_of(running_batch)

    response = alice_client.post(f"/dashboard/batches/{running_batch.pk}/cancel/", follow=True)

    assert response.redirect_chain == [(f"/dashboard/batches/{running_batch.pk}/", 302)]
    assert messages_of(response) == [("error", f"Batch “{BATCH_NAME}” has already finished.")]
    assert 'role="alert"' in response.content.decode()
    assert state_of(running_batch) == before


def test_cancelling_a_finished_batch_shows_an_error_and_changes_nothing(
    alice_client, finished_batch
):
    before = state_of(finished_batch)

    response = alice_client.post(f"/dashboard/batches/{finished_batch.pk}/cancel/", follow=True)

    assert messages_of(response) == [("error", f"Batch “{BATCH_NAME}” has already finished.")]
    assert state_of(finished_batch) == before


# --- Retry ------------------------------------------------------------------------------------


def test_retry_requeues_only_the_failed_documents_and_reopens_the_batch(
    alice_client, alice, finished_batch
):
    assert documents_used(alice) == 0  # failed documents gave their quota back
    completed_before = (
        Document.objects.filter(pk=document(finished_batch, "march.pdf").pk).values().get()
    )

    response = alice_client.post(f"/dashboard/batches/{finished_batch.pk}/retry/", follow=True)

    assert response.redirect_chain == [(f"/dashboard/batches/{finished_batch.pk}/", 302)]
    assert messages_of(response) == [("success", "2 failed documents queued again.")]
    for name in ("timeout.pdf", "overloaded.pdf"):
        retried = document(finished_batch, name)
        assert retried.status == Document.Status.QUEUED
        assert retried.attempts == 0
        assert (retried.error_code, retried.error_message) == ("", "")
        assert retried.completed_at is None
        assert retried.next_attempt_at <= timezone.now()
    assert Document.objects.filter(pk=completed_before["id"]).values().get() == completed_before
    finished_batch.refresh_from_db()
    assert finished_batch.status == BatchProcess.Status.PROCESSING
    assert finished_batch.completed_at is None
    assert (finished_batch.processed_documents, finished_batch.failed_documents) == (1, 0)
    root = progress_root(response)
    assert (
        'hx-trigger="every 2s, sheaf:event from:body"' in root
    )  # the page follows the reopened batch again
    assert "2 queued" in text_of(response)
    assert documents_used(alice) == 2  # the retried documents count against the month again


def test_retry_leaves_failures_it_cannot_fix_and_says_how_to_fix_them(alice_client, finished_batch):
    add_document(
        finished_batch,
        "locked.pdf",
        "failed",
        error_code="encrypted",
        error_message="locked.pdf is a password-protected PDF.",
        error_kind=Document.ErrorKind.PERMANENT,
    )

    response = alice_client.post(f"/dashboard/batches/{finished_batch.pk}/retry/", follow=True)

    assert messages_of(response) == [
        (
            "success",
            "2 failed documents queued again. A retry cannot fix 1: locked.pdf (encrypted: "
            "remove the password and upload it again).",
        )
    ]
    assert document(finished_batch, "locked.pdf").status == Document.Status.FAILED


def test_retry_with_no_failed_documents_shows_an_error_and_changes_nothing(alice_client, alice):
    batch = BatchFactory(
        user=alice,
        name=BATCH_NAME,
        status=BatchProcess.Status.COMPLETED,
        started_at=timezone.now(),
        completed_at=timezone.now(),
    )
    add_document(batch, "march.pdf", "completed")
    before = state_of(batch)

    response = alice_client.post(f"/dashboard/batches/{batch.pk}/retry/", follow=True)

    assert messages_of(response) == [
        ("error", f"Batch “{BATCH_NAME}” has no failed documents to retry.")
    ]
    assert state_of(batch) == before


# --- Re-run -----------------------------------------------------------------------------------


def test_rerun_requeues_one_finished_document(alice_client, finished_batch):
    target = document(finished_batch, "march.pdf")
    served = target.result
    others_before = [row for row in state_of(finished_batch)["documents"] if row["pk"] != target.pk]

    response = alice_client.post(f"/dashboard/documents/{target.pk}/rerun/", follow=True)

    assert response.redirect_chain == [(f"/dashboard/batches/{finished_batch.pk}/", 302)]
    assert messages_of(response) == [("success", "march.pdf queued again.")]
    target.refresh_from_db()
    assert target.status == Document.Status.QUEUED
    assert target.attempts == 0
    # A one-document run: its values are served until the run finishes.
    assert target.run is not None and target.run.number == 2
    assert target.result == served
    assert target.completed_at is None
    others_after = [row for row in state_of(finished_batch)["documents"] if row["pk"] != target.pk]
    assert others_after == others_before
    finished_batch.refresh_from_db()
    assert finished_batch.status == BatchProcess.Status.PROCESSING
    assert finished_batch.completed_at is None


def test_rerun_of_a_failed_document_clears_its_error(alice_client, finished_batch):
    target = document(finished_batch, "timeout.pdf")

    alice_client.post(f"/dashboard/documents/{target.pk}/rerun/")

    target.refresh_from_db()
    assert (target.status, target.attempts, target.error_code) == ("queued", 0, "")


def test_rerun_of_a_document_still_in_flight_shows_an_error_and_changes_nothing(
    alice_client, running_batch
):
    target = document(running_batch, "in-flight.pdf")
    before = state_of(running_batch)

    response = alice_client.post(f"/dashboard/documents/{target.pk}/rerun/", follow=True)

    assert response.redirect_chain == [(f"/dashboard/batches/{running_batch.pk}/", 302)]
    assert messages_of(response) == [("error", "in-flight.pdf is still being processed.")]
    assert state_of(running_batch) == before


def test_the_batch_page_offers_rerun_only_for_finished_documents(alice_client, running_batch):
    body = alice_client.get(f"/dashboard/batches/{running_batch.pk}/").content.decode()

    for name, offered in [
        ("paid.pdf", True),
        ("scan.pdf", True),
        ("in-flight.pdf", False),
        ("later-1.pdf", False),
    ]:
        url = f"/dashboard/documents/{document(running_batch, name).pk}/rerun/"
        assert (url in body) is offered, name


# --- Export -----------------------------------------------------------------------------------


@pytest.fixture
def exported_batch(alice) -> BatchProcess:
    batch = BatchFactory(
        user=alice,
        name=BATCH_NAME,
        status=BatchProcess.Status.COMPLETED_WITH_ERRORS,
        started_at=timezone.now(),
        completed_at=timezone.now(),
    )
    add_document(batch, "march.pdf", "completed", result=result("INV-001", "2024-03-01", "120.00"))
    add_document(batch, "april.pdf", "completed", result=result("INV-002", "2024-04-02", "99.50"))
    add_document(batch, "scan.pdf", "failed")
    return batch


EXPECTED_ROWS = {
    # A number cell holds the number alone; its currency has a column of its own.
    "march.pdf": {
        "invoice number": "INV-001",
        "date": "2024-03-01",
        "total": "120.00",
        "total currency": "EUR",
    },
    "april.pdf": {
        "invoice number": "INV-002",
        "date": "2024-04-02",
        "total": "99.50",
        "total currency": "EUR",
    },
    "scan.pdf": {"invoice number": "", "date": "", "total": "", "total currency": ""},
}


def rows_from_csv(content: bytes) -> list[dict[str, str]]:
    assert content.startswith("\ufeff".encode())  # the BOM that tells Excel it is UTF-8
    return list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))


def rows_from_markdown(content: bytes) -> list[dict[str, str]]:
    """The report's summary table: the first run of table lines."""
    text = content.decode()
    table = text[text.index("\n| ") + 1 :].split("\n\n")[0]
    # Each line is "| " + " | ".join(cells) + " |"; a "|" inside a cell is escaped as "\\|".
    header, _rule, *rows = (line[2:-2].split(" | ") for line in table.splitlines())
    return [dict(zip(header, row, strict=True)) for row in rows]


def rows_from_xlsx(content: bytes) -> list[dict[str, str]]:
    workbook = openpyxl.load_workbook(io.BytesIO(content), read_only=True)
    header, *rows = (
        [_shown(cell) for cell in row] for row in workbook["Results"].iter_rows(values_only=True)
    )
    return [dict(zip(header, row, strict=True)) for row in rows]


def _shown(cell: object) -> str:
    """A typed XLSX cell as a spreadsheet formatted for dates and money shows it."""
    if cell is None:
        return ""
    if isinstance(cell, datetime):
        return cell.date().isoformat()
    if isinstance(cell, int | float) and not isinstance(cell, bool):
        return f"{cell:.2f}"
    return str(cell)


def rows_from_json(content: bytes) -> list[dict[str, str]]:
    rows = []
    for item in json.loads(content)["documents"]:
        fields = (item["result"] or {}).get("fields", {})
        row = {"filename": item["filename"], "status": item["status"]}
        for name in ("invoice number", "date", "total"):
            cell = fields.get(name) or {}
            row[name] = cell.get("value") or ""
        row["total currency"] = (fields.get("total") or {}).get("currency") or ""
        rows.append(row)
    return rows


@pytest.mark.parametrize(
    ("fmt", "content_type", "parse"),
    [
        ("csv", "text/csv; charset=utf-8", rows_from_csv),
        ("json", "application/json", rows_from_json),
        ("md", "text/markdown; charset=utf-8", rows_from_markdown),
        (
            "xlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            rows_from_xlsx,
        ),
    ],
)
def test_the_owner_downloads_the_results_as_an_attachment(
    alice_client, exported_batch, fmt, content_type, parse
):
    response = alice_client.get(f"/dashboard/batches/{exported_batch.pk}/export/{fmt}/")

    assert response.status_code == 200
    assert response["Content-Type"] == content_type
    assert response["Content-Disposition"] == (
        f'attachment; filename="alices-march-invoices-results.{fmt}"'
    )
    rows = parse(response.content)
    assert [row["filename"] for row in rows] == ["march.pdf", "april.pdf", "scan.pdf"]
    assert [row["status"] for row in rows] == ["completed", "completed", "failed"]
    for row in rows:
        expected = EXPECTED_ROWS[row["filename"]]
        assert {name: row[name] for name in expected} == expected, row["filename"]


def test_the_json_export_keeps_each_documents_error(alice_client, exported_batch):
    response = alice_client.get(f"/dashboard/batches/{exported_batch.pk}/export/json/")

    documents = {item["filename"]: item for item in json.loads(response.content)["documents"]}
    assert documents["scan.pdf"]["error"]["code"] == "provider_error"
    assert documents["march.pdf"]["error"] is None
    assert json.loads(response.content)["batch"]["name"] == BATCH_NAME


@pytest.mark.parametrize("fmt", ["pdf", "html", "CSV", "xls"])
def test_an_unknown_export_format_is_404(alice_client, exported_batch, fmt):
    response = alice_client.get(f"/dashboard/batches/{exported_batch.pk}/export/{fmt}/")

    assert response.status_code == 404
    assert not response.has_header("Content-Disposition")
    assert "INV-001" not in response.content.decode()


def test_the_batch_page_links_every_export_once_something_completed(alice_client, exported_batch):
    body = alice_client.get(f"/dashboard/batches/{exported_batch.pk}/").content.decode()

    for fmt in ("csv", "json", "md", "xlsx"):
        assert f'href="/dashboard/batches/{exported_batch.pk}/export/{fmt}/"' in body


# --- Results table ----------------------------------------------------------------------------


def results_table(response) -> tuple[list[str], list[list[tuple[str, str]]]]:
    """The results table's header cells, and each row's cells as (attributes, text), the
    total row last when there is one."""
    match = re.search(
        r'<table class="[^"]*\bresults\b[^"]*"[^>]*>(.*?)</table>', response.content.decode(), re.S
    )
    assert match, "no results table on the page"
    head, body = match.group(1).split("<tbody>")

    def text(cell: str) -> str:
        return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", cell)).split())

    header = [text(cell) for cell in re.findall(r"<th[^>]*>(.*?)</th>", head, re.S)]
    rows = [
        [
            (attrs, text(cell))
            for attrs, cell in re.findall(r"<t[hd]([^>]*)>(.*?)</t[hd]>", row, re.S)
        ]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)
    ]
    return header, rows


def files_listed(client, url: str, **params: str) -> list[str]:
    """The files the results table lists, in its order."""
    _header, rows = results_table(client.get(url, params))
    return [row[0][1].split(" ")[0] for row in rows if not row[0][1].startswith("Total")]


def invoice_batch(alice) -> BatchProcess:
    return BatchFactory(
        user=alice,
        status=BatchProcess.Status.COMPLETED_WITH_ERRORS,
        started_at=timezone.now(),
        completed_at=timezone.now(),
        fields=[
            {"name": "invoice number", "type": "string", "description": ""},
            {"name": "date", "type": "date", "description": ""},
            {"name": "total", "type": "number", "description": ""},
            {"name": "paid", "type": "boolean", "description": ""},
        ],
    )


def test_the_results_table_lists_every_document_with_its_values_and_marks_their_status(
    alice_client, alice
):
    batch = invoice_batch(alice)
    guessed_total = {"value": "99.00", "quote": "99,00", "page": 1, "status": "unverified"}
    paid = {"value": True, "quote": "Paid: yes", "page": 1, "verified": True}
    add_document(
        batch, "march.pdf", "completed", result=result("INV-001", "2024-03-01", "120.00", paid=paid)
    )
    add_document(
        batch,
        "guess.pdf",
        "completed",
        result=result("INV-002", None, None, total=guessed_total),  # no "paid" at all
    )
    add_document(batch, "scan.pdf", "failed")

    header, rows = results_table(alice_client.get(f"/dashboard/batches/{batch.pk}/"))

    assert header == [
        *("File", "Status", "Checks", "invoice number", "date", "total", "paid", "Actions")
    ]
    found = "✓ (found on its page in the document)"
    *documents, totals = rows
    shown = [[text for _attrs, text in row[1:]] for row in documents]
    assert shown == [
        [
            "Completed",
            "—",
            f"INV-001 {found}",
            f"2024-03-01 {found}",
            f"120.00 EUR {found}",
            f"yes {found}",
            "Re-run",
        ],
        [
            "Completed",
            "—",
            f"INV-002 {found}",
            "—",
            "99.00 ? (not found on its page in the document)",
            "—",
            "Re-run",
        ],
        # A failed document says why across its value columns.
        [
            "Failed",
            "provider_error scan.pdf: the extraction service did not answer (gave up "
            "after 3 attempts)",
            "Re-run",
        ],
    ]
    assert [row[0][1].split(" ")[0] for row in documents] == [
        *("march.pdf", "guess.pdf", "scan.pdf")
    ]
    total_cell = next(attrs for attrs, _text in rows[0] if 'data-label="total"' in attrs)
    assert "num" in total_cell  # numbers right-aligned
    assert totals[3][1] == "99.00 120.00 EUR"  # what is shown, whatever its status


def test_the_results_table_totals_each_number_field_per_currency_once_the_batch_is_done(
    alice_client, alice
):
    batch = invoice_batch(alice)
    add_document(batch, "a.pdf", "completed", result=result("A", None, "120.00"))
    add_document(batch, "b.pdf", "completed", result=result("B", None, "1000.5"))
    dollars = {"value": "7.25", "quote": "7.25", "page": 1, "verified": True, "currency": "USD"}
    add_document(batch, "c.pdf", "completed", result=result("C", None, None, total=dollars))
    add_document(batch, "d.pdf", "failed")

    _header, rows = results_table(alice_client.get(f"/dashboard/batches/{batch.pk}/"))

    totals = rows[-1]
    assert totals[0][1] == "Total of 4 documents"
    assert [text for _attrs, text in totals[1:]] == ["", "", "1,120.50 EUR 7.25 USD", "", ""]


def test_the_results_table_filters_documents_needing_review_and_failed_ones(alice_client, alice):
    batch = invoice_batch(alice)
    add_document(batch, "clean.pdf", "completed")
    doubtful = add_document(batch, "doubtful.pdf", "completed")
    Document.objects.filter(pk=doubtful.pk).update(count_unverified=1)
    add_document(batch, "broken.pdf", "failed")
    page = f"/dashboard/batches/{batch.pk}/"

    assert files_listed(alice_client, page) == ["clean.pdf", "doubtful.pdf", "broken.pdf"]
    assert files_listed(alice_client, page, show="review") == ["doubtful.pdf"]
    assert files_listed(alice_client, page, show="failed") == ["broken.pdf"]
    assert files_listed(alice_client, page, show="nonsense") == [
        *("clean.pdf", "doubtful.pdf", "broken.pdf")
    ]
    body = alice_client.get(page, {"show": "review", "q": "nothing-like-it"}).content.decode()
    assert "No document matches." in body


def test_the_results_table_searches_filenames_and_values_a_person_corrected(alice_client, alice):
    batch = invoice_batch(alice)
    add_document(batch, "march.pdf", "completed", result=result("INV-001", None, "1.00"))
    corrected = add_document(batch, "april.pdf", "completed", result=result("INV-002", None, None))
    corrected.reviews = {"invoice number": {"value": "Müller-77", "by": "alice", "at": "now"}}
    corrected.save(update_fields=["reviews"])
    page = f"/dashboard/batches/{batch.pk}/"

    assert files_listed(alice_client, page, q="MARCH") == ["march.pdf"]
    assert files_listed(alice_client, page, q="inv-00") == ["march.pdf", "april.pdf"]
    assert files_listed(alice_client, page, q="müller") == ["april.pdf"]
    assert files_listed(alice_client, page, q="INV-002") == ["april.pdf"]  # the machine's value


def test_the_results_table_sorts_by_a_number_field_with_missing_values_last(alice_client, alice):
    batch = invoice_batch(alice)
    add_document(batch, "ten.pdf", "completed", result=result("A", None, "10.00"))
    add_document(batch, "none.pdf", "completed", result=result("B", None, None))
    add_document(batch, "nine.pdf", "completed", result=result("C", None, "9.50"))
    add_document(batch, "hundred.pdf", "completed", result=result("D", None, "100"))
    page = f"/dashboard/batches/{batch.pk}/"

    assert files_listed(alice_client, page, sort="total") == [
        *("nine.pdf", "ten.pdf", "hundred.pdf", "none.pdf")
    ]
    assert files_listed(alice_client, page, sort="-total") == [
        *("hundred.pdf", "ten.pdf", "nine.pdf", "none.pdf")
    ]
    assert files_listed(alice_client, page, sort="file") == [
        *("hundred.pdf", "nine.pdf", "none.pdf", "ten.pdf")
    ]
    body = alice_client.get(page, {"sort": "total"}).content.decode()
    assert 'aria-sort="ascending"' in body
    assert 'href="?sort=-total#results"' in body  # the next click sorts the other way


def test_a_filtered_long_batch_keeps_its_filter_across_pages_and_polls(alice_client, alice):
    batch = BatchFactory(user=alice, status=BatchProcess.Status.PROCESSING)
    for n in range(60):
        add_document(batch, f"doc-{n:02}.pdf", "completed")
    page = f"/dashboard/batches/{batch.pk}/"

    body = alice_client.get(page, {"q": "doc"}).content.decode()

    assert 'href="?q=doc&amp;page=2#results"' in body
    assert f'hx-get="{page}progress/?q=doc"' in body


def test_the_results_table_waits_for_documents_and_exports_wait_for_a_completed_one(
    alice_client, alice
):
    batch = BatchFactory(user=alice, status=BatchProcess.Status.PROCESSING)
    add_document(batch, "waiting.pdf", "queued")

    response = alice_client.get(f"/dashboard/batches/{batch.pk}/")

    _header, rows = results_table(response)
    assert [text for _attrs, text in rows[0][1:3]] == ["Queued", "Waiting"]
    assert "/export/" not in response.content.decode()
