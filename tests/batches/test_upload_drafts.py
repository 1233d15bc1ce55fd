"""Upload drafts (batches/drafts.py): the upload page sends each chosen file on its own into a
draft, a refused file is refused alone, and the form then makes the batch of the draft's files.
A draft counts for nothing until submitted, and expires with its files after a day."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from accounts.models import MonthlyUsage
from accounts.selectors import user_usage
from accounts.services import api_key_create, user_delete
from batches.drafts import MAX_DRAFTS_PER_USER, draft_file_add
from batches.models import BatchProcess, DraftFile, UploadDraft
from batches.pipeline.recovery import sweep
from documents.models import Document
from tests.batches.test_upload import PROMPT, UPLOAD_URL, page_text, pdf_of_size
from tests.support.documents import HTML_PAGE, INVOICE_PDF, invoice_uploads

pytestmark = pytest.mark.django_db

FILES_URL = "/dashboard/batch-upload/files/"


def send(client: Client, file: SimpleUploadedFile, draft: str = ""):
    data: dict[str, object] = {"file": file}
    if draft:
        data["draft"] = draft
    return client.post(FILES_URL, data)


def pdf(name: str) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, INVOICE_PDF, content_type="application/pdf")


def text(name: str) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, f"Invoice number: {name}\nTotal: 10.00 EUR\n".encode())


def draft_of(client: Client, *files: SimpleUploadedFile) -> str:
    draft = ""
    for file in files:
        response = send(client, file, draft)
        assert response.status_code == 201, response.content.decode()
        draft = response.json()["draft"]
    return draft


def submit(client: Client, draft: str, **data: str):
    form = {"name": "", "description": "", "prompt": PROMPT, "fields": "", "mode": "standard"}
    return client.post(UPLOAD_URL, {**form, **data, "draft": draft})


def listed_files(response) -> list[str]:
    """The files the upload page lists as kept in the draft."""
    return re.findall(r'data-draft-file="\d+" data-name="([^"]*)"', response.content.decode())


def test_a_file_sent_to_a_draft_is_kept_under_a_uuid_and_counts_for_nothing(
    alice_client, alice, media_files
):
    response = send(alice_client, pdf("March invoice.pdf"))

    assert response.status_code == 201
    body = response.json()
    kept = DraftFile.objects.get()
    assert body == {
        "draft": str(kept.draft_id),
        "file": {"id": kept.pk, "filename": "March invoice.pdf", "size": len(INVOICE_PDF)},
    }
    assert kept.draft.user == alice
    assert (kept.content_type, kept.size) == ("application/pdf", len(INVOICE_PDF))
    assert re.fullmatch(
        rf"uploads/{alice.pk}/drafts/{kept.draft_id}/[0-9a-f-]{{36}}\.pdf", kept.file.name
    )
    assert [p.read_bytes() for p in media_files()] == [INVOICE_PDF]
    # No batch, no document, no quota, no submission of the hour.
    assert BatchProcess.objects.count() == 0
    assert Document.objects.count() == 0
    assert not MonthlyUsage.objects.exists()
    usage = user_usage(alice)
    assert (usage.documents_this_month, usage.submissions_last_hour) == (0, 0)


def test_drafts_are_in_no_list_count_or_api(alice_client, alice):
    draft_of(alice_client, pdf("a.pdf"), pdf("b.pdf"))
    _, secret = api_key_create(user=alice, name="tests")
    api = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")

    assert api.get("/api/v1/batches/").json()["count"] == 0
    assert api.get("/api/v1/me/").json()["usage"] == {
        "documents_this_month": 0,
        "submissions_last_hour": 0,
    }
    dashboard = page_text(alice_client.get("/dashboard/"))
    assert "a.pdf" not in dashboard
    assert "0 of 1,000 documents used this month" in page_text(alice_client.get(UPLOAD_URL))


@pytest.mark.parametrize(
    ("name", "content", "code", "message"),
    [
        (
            "invoice.pdf",
            HTML_PAGE,
            "unsupported_type",
            "invoice.pdf has a .pdf name but its content is not PDF.",
        ),
        (
            "x.pdf.html",
            INVOICE_PDF,
            "unsupported_type",
            "x.pdf.html: .html files are not supported; upload PDF, CSV",
        ),
        ("empty.txt", b"", "empty_file", "empty.txt is empty."),
        (
            "big.pdf",
            pdf_of_size(2 * 1024 * 1024 + 1),
            "file_too_large",
            "big.pdf is 2.0\xa0MB; your plan allows files up to 2.0\xa0MB.",
        ),
    ],
)
def test_a_refused_file_gets_its_code_and_reason_and_nothing_is_stored(
    alice_client, media_files, settings, name, content, code, message
):
    settings.SHEAF_PLAN_LIMITS = {"plus": {"max_file_size": 2 * 1024 * 1024}}

    response = send(alice_client, SimpleUploadedFile(name, content))

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == code
    assert body["detail"].startswith(message)
    assert not UploadDraft.objects.exists()
    assert media_files() == []


def test_a_refused_file_leaves_the_draft_with_the_files_already_in_it(alice_client, media_files):
    draft = draft_of(alice_client, pdf("a.pdf"))

    refused = send(alice_client, SimpleUploadedFile("b.pdf", HTML_PAGE), draft)

    assert refused.status_code == 400
    assert refused.json()["code"] == "unsupported_type"
    assert list(DraftFile.objects.values_list("original_filename", flat=True)) == ["a.pdf"]
    assert len(media_files()) == 1


def test_a_draft_holds_no_more_files_than_the_plan_takes_in_a_batch(
    alice_client, media_files, settings
):
    settings.SHEAF_PLAN_LIMITS = {"plus": {"files_per_batch": 2}}
    draft = draft_of(alice_client, pdf("a.pdf"), pdf("b.pdf"))

    third = send(alice_client, pdf("c.pdf"), draft)

    assert third.status_code == 400
    assert third.json() == {
        "code": "too_many_files",
        "detail": "Your Plus plan allows 2 files per batch; this submission has 3 (one too many "
        "starts at c.pdf).",
    }
    assert DraftFile.objects.count() == 2
    assert len(media_files()) == 2


def test_another_users_draft_does_not_exist_for_them(alice_client, bob_client, media_files):
    draft = draft_of(alice_client, pdf("a.pdf"))
    kept = DraftFile.objects.get()

    added = send(bob_client, pdf("b.pdf"), draft)
    removed = bob_client.delete(f"{FILES_URL}{kept.pk}/")
    submitted = submit(bob_client, draft)

    assert added.status_code == 404
    assert added.json()["code"] == "not_found"
    assert removed.status_code == 404
    assert submitted.status_code == 400
    assert "The files uploaded for this batch are no longer kept" in page_text(submitted)
    assert list(DraftFile.objects.all()) == [kept]
    assert len(media_files()) == 1
    assert BatchProcess.objects.count() == 0


def test_anonymous_requests_are_sent_to_sign_in_and_store_nothing(client, alice, media_files):
    added = client.post(FILES_URL, {"file": pdf("a.pdf")})
    removed = client.delete(f"{FILES_URL}1/")

    assert added.status_code == 302
    assert added["Location"].startswith("/accounts/login/")
    assert removed.status_code == 302
    assert not UploadDraft.objects.exists()
    assert media_files() == []


def test_the_draft_endpoints_answer_only_their_methods(alice_client):
    draft_of(alice_client, pdf("a.pdf"))
    kept = DraftFile.objects.get()

    assert alice_client.get(FILES_URL).status_code == 405
    assert alice_client.delete(FILES_URL).status_code == 405
    assert alice_client.get(f"{FILES_URL}{kept.pk}/").status_code == 405
    assert alice_client.post(f"{FILES_URL}{kept.pk}/").status_code == 405
    assert DraftFile.objects.count() == 1


def test_removing_a_file_deletes_it_from_the_draft_and_from_storage(
    alice_client, media_files, django_capture_on_commit_callbacks
):
    draft_of(alice_client, pdf("a.pdf"), text("b.txt"))
    first = DraftFile.objects.get(original_filename="a.pdf")

    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.delete(f"{FILES_URL}{first.pk}/")

    assert response.status_code == 204
    assert list(DraftFile.objects.values_list("original_filename", flat=True)) == ["b.txt"]
    assert [p.suffix for p in media_files()] == [".txt"]


def test_submitting_makes_the_batch_of_the_draft_in_order_and_deletes_the_draft(
    alice_client, alice, media_files, django_capture_on_commit_callbacks
):
    draft = draft_of(alice_client, text("one.txt"), pdf("two.pdf"), text("three.txt"))

    with django_capture_on_commit_callbacks(execute=True):
        response = submit(alice_client, draft, name="March")

    batch = BatchProcess.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/dashboard/batches/{batch.pk}/"
    assert batch.name == "March"
    documents = list(batch.documents.order_by("created_at", "id"))
    assert sorted(d.original_filename for d in documents) == ["one.txt", "three.txt", "two.pdf"]
    # The order of arrival is the batch's order (its default name comes from the first file).
    page = page_text(alice_client.get(f"/dashboard/batches/{batch.pk}/"))
    assert page.index("one.txt") < page.index("two.pdf") < page.index("three.txt")
    assert not UploadDraft.objects.exists()
    assert not DraftFile.objects.exists()
    stored = media_files()
    assert len(stored) == 3
    assert all(f"uploads/{alice.pk}/{batch.pk}/" in str(p) for p in stored)
    assert user_usage(alice).documents_this_month == 3


def test_an_unnamed_batch_from_a_draft_is_named_after_its_first_file(alice_client):
    draft = draft_of(alice_client, text("first.txt"), text("second.txt"))

    submit(alice_client, draft)

    assert BatchProcess.objects.get().name == "first and 1 more"


def test_quota_is_checked_when_the_draft_is_submitted_and_a_refusal_keeps_the_draft(
    alice_client, alice, media_files, settings
):
    settings.SHEAF_PLAN_LIMITS = {"plus": {"documents_per_month": 1}}
    # A draft may hold more files than the month has left: it reserves nothing.
    draft = draft_of(alice_client, pdf("a.pdf"), pdf("b.pdf"))

    refused = submit(alice_client, draft)

    assert refused.status_code == 400
    shown = page_text(refused)
    assert "No batch was started; the files you chose are kept below." in shown
    assert "Your Plus plan includes 1 document a month; 0 are used and 1 left" in shown
    assert listed_files(refused) == ["a.pdf", "b.pdf"]
    assert f'name="draft" value="{draft}"' in refused.content.decode()
    assert DraftFile.objects.filter(draft_id=draft).count() == 2
    assert len(media_files()) == 2
    assert BatchProcess.objects.count() == 0
    assert not MonthlyUsage.objects.exists()

    settings.SHEAF_PLAN_LIMITS = {"plus": {"documents_per_month": 2}}
    again = submit(alice_client, draft)

    assert again.status_code == 302
    assert BatchProcess.objects.get().documents.count() == 2


def test_the_hours_submissions_are_checked_at_submission_not_while_drafting(alice_client, settings):
    settings.SHEAF_PLAN_LIMITS = {"plus": {"submissions_per_hour": 1}}
    first = draft_of(alice_client, pdf("a.pdf"))
    second = draft_of(alice_client, pdf("b.pdf"))
    assert submit(alice_client, first).status_code == 302

    refused = submit(alice_client, second)

    assert refused.status_code == 400
    assert "Your Plus plan allows 1 batch submission an hour" in page_text(refused)
    assert listed_files(refused) == ["b.pdf"]
    assert BatchProcess.objects.count() == 1


def test_a_form_error_keeps_the_draft_so_no_file_is_chosen_again(alice_client, media_files):
    draft = draft_of(alice_client, pdf("a.pdf"), text("b.txt"))

    refused = submit(alice_client, draft, prompt="")

    assert refused.status_code == 400
    shown = page_text(refused)
    assert "The files you chose are kept below." in shown
    assert "Browsers do not keep chosen files" not in shown
    assert listed_files(refused) == ["a.pdf", "b.txt"]
    assert DraftFile.objects.count() == 2
    assert len(media_files()) == 2


def test_a_draft_is_submitted_once(alice_client):
    draft = draft_of(alice_client, pdf("a.pdf"))
    assert submit(alice_client, draft).status_code == 302

    again = submit(alice_client, draft)

    assert again.status_code == 400
    assert "The files uploaded for this batch are no longer kept" in page_text(again)
    assert BatchProcess.objects.count() == 1


def test_the_one_request_upload_still_works_beside_drafts(alice_client, media_files):
    files = invoice_uploads(2)
    form = {"prompt": PROMPT, "fields": "", "mode": "standard", "files": files}

    response = alice_client.post(UPLOAD_URL, form)

    assert response.status_code == 302
    assert BatchProcess.objects.get().documents.count() == 2
    assert not UploadDraft.objects.exists()


def test_the_sweep_deletes_a_draft_a_day_old_with_its_files(
    alice, media_files, django_capture_on_commit_callbacks
):
    old = draft_file_add(user=alice, draft_id=None, file=pdf("old.pdf")).draft
    UploadDraft.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=1))
    fresh = draft_file_add(user=alice, draft_id=None, file=text("fresh.txt")).draft

    with django_capture_on_commit_callbacks(execute=True):
        sweep(now=timezone.now() + timedelta(seconds=1))

    assert list(UploadDraft.objects.all()) == [fresh]
    assert list(DraftFile.objects.values_list("original_filename", flat=True)) == ["fresh.txt"]
    assert [p.suffix for p in media_files()] == [".txt"]


def test_an_expired_draft_cannot_be_added_to_or_submitted(alice_client, alice):
    draft = draft_of(alice_client, pdf("a.pdf"))
    UploadDraft.objects.update(created_at=timezone.now() - timedelta(days=1, seconds=1))

    added = send(alice_client, pdf("b.pdf"), draft)
    submitted = submit(alice_client, draft)

    assert added.status_code == 404
    assert "no longer kept" in added.json()["detail"]
    assert submitted.status_code == 400
    assert "no longer kept" in page_text(submitted)
    assert BatchProcess.objects.count() == 0


def test_starting_a_draft_past_the_limit_deletes_the_oldest(alice, media_files):
    drafts = [
        draft_file_add(user=alice, draft_id=None, file=text(f"{n}.txt")).draft
        for n in range(MAX_DRAFTS_PER_USER + 1)
    ]

    assert set(UploadDraft.objects.all()) == set(drafts[1:])


def test_deleting_the_account_deletes_its_drafts_and_their_files(
    alice, bob, media_files, django_capture_on_commit_callbacks
):
    draft_file_add(user=alice, draft_id=None, file=pdf("a.pdf"))
    bobs = draft_file_add(user=bob, draft_id=None, file=pdf("b.pdf"))

    with django_capture_on_commit_callbacks(execute=True):
        user_delete(user=alice, confirm_email=alice.email)

    assert list(DraftFile.objects.all()) == [bobs]
    assert [str(p).split("/uploads/")[1].split("/")[0] for p in media_files()] == [str(bob.pk)]


def test_the_upload_page_points_the_script_at_the_draft_endpoint(alice_client):
    body = alice_client.get(UPLOAD_URL).content.decode()

    assert f'data-draft-url="{FILES_URL}"' in body
    assert 'type="hidden" name="draft"' in body
    assert listed_files(alice_client.get(UPLOAD_URL)) == []
