"""Access rules and pages of the dashboard views."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from batches.models import BatchProcess
from batches.services import batch_create
from documents.models import Document
from extraction.fields import parse_fields
from tests.factories import BatchFactory
from tests.support.documents import INVOICE_PDF, invoice_upload, report_upload


@pytest.fixture
def alices_batch(alice) -> BatchProcess:
    """A real batch of Alice's, with two stored documents."""
    return batch_create(
        user=alice,
        files=[invoice_upload(), report_upload()],
        prompt="invoice number, date and total",
        name="Alice's March invoices",
    )


@pytest.fixture
def alices_document(alices_batch) -> Document:
    return alices_batch.documents.get(original_filename="invoice.pdf")


def urls_of(batch: BatchProcess, document: Document) -> dict[str, str]:
    return {
        "list": "/dashboard/",
        "upload": "/dashboard/batch-upload/",
        "detail": f"/dashboard/batches/{batch.pk}/",
        "delete": f"/dashboard/batches/{batch.pk}/delete/",
        "original": f"/dashboard/documents/{document.pk}/original/",
    }


def text_of(response) -> str:
    text = re.sub(r"<[^>]+>", " ", response.content.decode())
    return " ".join(html.unescape(text).split())


def assert_batch_intact(batch: BatchProcess, media_files) -> None:
    assert BatchProcess.objects.filter(pk=batch.pk).exists()
    assert batch.documents.count() == 2
    assert len(media_files()) == 2


# --- Anonymous visitors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("view", "method"),
    [
        ("list", "get"),
        ("upload", "get"),
        ("upload", "post"),
        ("detail", "get"),
        ("delete", "post"),
        ("original", "get"),
    ],
)
def test_an_anonymous_visitor_is_sent_to_sign_in_and_back(
    client, alices_batch, alices_document, media_files, view, method
):
    url = urls_of(alices_batch, alices_document)[view]

    response = getattr(client, method)(url)

    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={url}"
    assert_batch_intact(alices_batch, media_files)


# --- Another user ---------------------------------------------------------------------------------


def test_another_user_gets_404_for_someone_elses_batch_page(bob_client, alices_batch):
    response = bob_client.get(f"/dashboard/batches/{alices_batch.pk}/")

    assert response.status_code == 404
    assert "Alice's March invoices" not in response.content.decode()


def test_another_user_gets_404_deleting_someone_elses_batch_and_nothing_is_deleted(
    bob_client, alices_batch, media_files
):
    response = bob_client.post(f"/dashboard/batches/{alices_batch.pk}/delete/")

    assert response.status_code == 404
    assert_batch_intact(alices_batch, media_files)


def test_another_user_gets_404_downloading_someone_elses_original(bob_client, alices_document):
    response = bob_client.get(f"/dashboard/documents/{alices_document.pk}/original/")

    assert response.status_code == 404
    assert not response.has_header("Content-Disposition")
    assert INVOICE_PDF not in response.content


def test_another_users_dashboard_does_not_list_alices_batches(bob_client, bob, alices_batch):
    BatchFactory(user=bob, name="Bob's receipts")

    body = text_of(bob_client.get("/dashboard/"))

    assert "Bob's receipts" in body
    assert "Alice's March invoices" not in body


def test_an_unknown_batch_id_is_404(alice_client, alices_batch):
    response = alice_client.get("/dashboard/batches/00000000-0000-0000-0000-000000000000/")

    assert response.status_code == 404


# --- Wrong methods --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("view", "method"),
    [
        ("list", "post"),
        ("list", "delete"),
        ("upload", "put"),
        ("upload", "delete"),
        ("detail", "post"),
        ("detail", "delete"),
        ("delete", "get"),
        ("delete", "delete"),
        ("original", "post"),
    ],
)
def test_a_wrong_method_is_405_and_changes_nothing(
    alice_client, alices_batch, alices_document, media_files, view, method
):
    url = urls_of(alices_batch, alices_document)[view]

    response = getattr(alice_client, method)(url)

    assert response.status_code == 405
    assert_batch_intact(alices_batch, media_files)


# --- Batch list -----------------------------------------------------------------------------------


def make_batch(user, name: str, *, minutes_ago: int, status: str = "queued") -> BatchProcess:
    batch = BatchFactory(user=user, name=name, status=status)
    created = timezone.now() - timedelta(minutes=minutes_ago)
    BatchProcess.objects.filter(pk=batch.pk).update(created_at=created)
    return batch


def test_the_dashboard_lists_the_users_batches_newest_first(alice_client, alice, bob):
    make_batch(alice, "Oldest run", minutes_ago=30)
    make_batch(alice, "Newest run", minutes_ago=1)
    make_batch(alice, "Middle run", minutes_ago=10)
    make_batch(bob, "Bob's private run", minutes_ago=5)

    response = alice_client.get("/dashboard/")

    assert response.status_code == 200
    body = text_of(response)
    positions = [body.index(name) for name in ("Newest run", "Middle run", "Oldest run")]
    assert positions == sorted(positions)
    assert "Bob's private run" not in body


def test_the_dashboard_filters_by_status(alice_client, alice):
    make_batch(alice, "Finished run", minutes_ago=3, status="completed")
    make_batch(alice, "Broken run", minutes_ago=2, status="failed")
    make_batch(alice, "Waiting run", minutes_ago=1, status="queued")

    body = text_of(alice_client.get("/dashboard/?status=failed"))

    assert "Broken run" in body
    assert "Finished run" not in body
    assert "Waiting run" not in body


def test_an_unknown_status_filter_shows_every_batch(alice_client, alice):
    make_batch(alice, "Finished run", minutes_ago=2, status="completed")
    make_batch(alice, "Waiting run", minutes_ago=1, status="queued")

    response = alice_client.get("/dashboard/?status=exploded")

    assert response.status_code == 200
    body = text_of(response)
    assert "Finished run" in body
    assert "Waiting run" in body


def test_a_status_with_no_batches_says_so(alice_client, alice):
    make_batch(alice, "Waiting run", minutes_ago=1, status="queued")

    body = text_of(alice_client.get("/dashboard/?status=canceled"))

    assert "No batches with this status" in body
    assert "Waiting run" not in body


def test_the_dashboard_shows_twenty_batches_a_page(alice_client, alice):
    for n in range(25):
        make_batch(alice, f"Report {n:02d}", minutes_ago=100 - n)  # Report 24 is the newest

    first = text_of(alice_client.get("/dashboard/"))
    second = text_of(alice_client.get("/dashboard/?page=2"))

    assert [n for n in range(25) if f"Report {n:02d}" in first] == list(range(5, 25))
    assert [n for n in range(25) if f"Report {n:02d}" in second] == list(range(5))
    assert "Page 1 of 2" in first
    assert "Page 2 of 2" in second


def test_a_new_user_sees_an_empty_dashboard_inviting_an_upload(frank_client):
    response = frank_client.get("/dashboard/")

    assert response.status_code == 200
    assert "No batches yet" in text_of(response)
    assert 'href="/dashboard/batch-upload/"' in response.content.decode()


# --- Upload page ----------------------------------------------------------------------------------


def files_input(response) -> str:
    inputs = re.findall(r'<input[^>]*name="files"[^>]*>', response.content.decode())
    assert len(inputs) == 1, inputs
    return inputs[0]


@pytest.mark.parametrize("client_fixture", ["frank_client", "alice_client", "grace_client"])
def test_the_upload_page_opens_for_every_plan(request, client_fixture):
    response = request.getfixturevalue(client_fixture).get("/dashboard/batch-upload/")

    assert response.status_code == 200
    assert 'type="file"' in files_input(response)
    for field in ("name", "description", "prompt", "fields", "mode"):
        assert f'name="{field}"' in response.content.decode()


@pytest.mark.parametrize(
    ("api_key", "says"),
    [
        ("", "offline engine: finds each field beside its label"),
        ("sk-ant-test", "Claude (Anthropic) reads each document"),
    ],
)
def test_the_upload_page_says_which_engine_will_read_the_documents_and_how(
    alice_client, settings, api_key, says
):
    settings.SHEAF_EXTRACTION_ENGINE = "auto"
    settings.ANTHROPIC_API_KEY = api_key

    text = text_of(alice_client.get("/dashboard/batch-upload/"))

    assert says in text
    if not api_key:
        assert "No language model" in text


def test_a_free_user_sees_one_file_picker_and_a_way_to_upgrade(frank_client):
    response = frank_client.get("/dashboard/batch-upload/")

    assert "multiple" not in files_input(response)
    body = response.content.decode()
    assert re.search(r'<a href="/pricing/">[^<]*Plus[^<]*</a>', body)
    assert "One file per submission" in text_of(response)
    assert "0 of 50 documents used this month" in text_of(response)


@pytest.mark.parametrize(
    ("client_fixture", "limits"),
    [
        ("alice_client", "Up to 25 files per batch, 25 MB per file"),
        ("grace_client", "Up to 100 files per batch, 50 MB per file"),
    ],
)
def test_a_paying_user_sees_a_multiple_file_picker_and_their_limits(
    request, client_fixture, limits
):
    response = request.getfixturevalue(client_fixture).get("/dashboard/batch-upload/")

    assert "multiple" in files_input(response)
    assert limits in text_of(response)
    assert "See what Plus adds" not in text_of(response)


# --- Batch page -----------------------------------------------------------------------------------


def test_the_batch_page_shows_the_batch_and_its_documents(alice_client, alices_batch):
    response = alice_client.get(f"/dashboard/batches/{alices_batch.pk}/")

    assert response.status_code == 200
    body = text_of(response)
    assert "Alice's March invoices" in body
    assert "invoice number, date and total" in body
    assert "invoice.pdf" in body
    assert "report.pdf" in body
    for document in alices_batch.documents.all():
        assert f"/dashboard/documents/{document.pk}/original/" in response.content.decode()


def test_the_batch_page_shows_table_and_required_fields_and_their_text_to_copy(alice_client, alice):
    fields = (
        "invoice number!\n"
        "line items: table(description; quantity:number; amount:number) -- one row per line"
    )
    batch = batch_create(
        user=alice, files=[invoice_upload()], prompt="the lines", fields=parse_fields(fields)
    )

    response = alice_client.get(f"/dashboard/batches/{batch.pk}/")

    body = text_of(response)
    assert "invoice number string required" in body
    assert "line items table ( description ; quantity :number; amount :number) — one row" in body
    shown = re.search(r"<pre data-fields-text>(.*?)</pre>", response.content.decode(), re.S)
    assert shown is not None
    assert parse_fields(html.unescape(shown[1])) == batch.fields


# --- Download of the original ---------------------------------------------------------------------


def test_the_owner_downloads_the_original_bytes_under_the_original_name(
    alice_client, alices_document
):
    response = alice_client.get(f"/dashboard/documents/{alices_document.pk}/original/")

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == INVOICE_PDF
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="invoice.pdf"'


def test_a_non_ascii_original_name_survives_the_download(alice_client, alice):
    name = "Übersicht-Rechnung-№42-日本.pdf"
    batch = batch_create(user=alice, files=[invoice_upload(name)], prompt="total")

    response = alice_client.get(f"/dashboard/documents/{batch.documents.get().pk}/original/")

    assert response.status_code == 200
    assert response["Content-Disposition"] == (
        "attachment; filename*=utf-8''%C3%9Cbersicht-Rechnung-%E2%84%9642-%E6%97%A5%E6%9C%AC.pdf"
    )
    assert b"".join(response.streaming_content) == INVOICE_PDF


def test_an_original_whose_file_is_gone_is_404(alice_client, alices_document):
    alices_document.file.delete(save=False)

    response = alice_client.get(f"/dashboard/documents/{alices_document.pk}/original/")

    assert response.status_code == 404


# --- Delete ---------------------------------------------------------------------------------------


def test_the_owner_deletes_a_batch_with_its_documents_and_files(
    alice_client, alices_batch, media_files, django_capture_on_commit_callbacks
):
    make_batch(alices_batch.user, "Kept run", minutes_ago=1)
    assert len(media_files()) == 2

    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(f"/dashboard/batches/{alices_batch.pk}/delete/")

    assert response.status_code == 302
    assert response["Location"] == "/dashboard/"
    assert not BatchProcess.objects.filter(pk=alices_batch.pk).exists()
    assert not Document.objects.filter(batch_id=alices_batch.pk).exists()
    assert media_files() == []
    assert BatchProcess.objects.filter(name="Kept run").exists()
    body = text_of(alice_client.get(response["Location"]))
    assert "Batch “Alice's March invoices” and its files were deleted." in body
    assert "Kept run" in body
