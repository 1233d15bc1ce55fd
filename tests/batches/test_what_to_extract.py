"""Defining what to extract on the upload page: the field editor's live check, field templates
(shipped and the user's own), and "try on one document"."""

from __future__ import annotations

import html
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import Submission
from accounts.selectors import user_usage
from batches.models import BatchProcess, FieldTemplate
from batches.services import batch_create
from batches.tasks import drain
from documents.models import Document
from extraction.fields import parse_fields
from notifications.models import Event
from tests.support.documents import invoice_upload

CHECK_URL = "/dashboard/fields/check/"
UPLOAD_URL = "/dashboard/batch-upload/"
TRIAL_URL = "/dashboard/batch-upload/try/"
TEMPLATES_URL = "/dashboard/templates/"


def page_text(response) -> str:
    text = re.sub(r"<[^>]+>", " ", response.content.decode())
    return " ".join(html.unescape(text).split())


def shipped_id(client, name: str) -> str:
    page = client.get(TEMPLATES_URL).content.decode()
    match = re.search(r'\?template=([0-9a-f-]{36})">' + re.escape(name) + "<", page)
    assert match, name
    return match.group(1)


# --- The field check -------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_check_reports_every_problem_of_the_fields_at_once(alice_client):
    text = "total:number\nTotal\nitems: table()\nwhen:datetime"
    answer = alice_client.post(CHECK_URL, {"fields": text}).json()
    assert answer["ok"] is False
    assert answer["fields"] is None
    assert answer["problems"] == [
        "Field 'items': a table needs at least one column.",
        "Field 'when': unknown type 'datetime'; use one of string, number, date, boolean, list, "
        "table.",
        "Field 'Total' is listed twice.",
    ]


@pytest.mark.django_db
def test_the_check_gives_fields_that_parse_and_their_text(alice_client):
    text = "total!:number -- with tax\nitems: table(description; amount:number)"
    answer = alice_client.post(CHECK_URL, {"fields": text}).json()
    assert answer == {
        "ok": True,
        "problems": [],
        "fields": parse_fields(text),
        "text": "total!:number -- with tax\nitems: table(description; amount:number)",
    }


@pytest.mark.django_db
def test_the_check_is_for_signed_in_users_by_post_only(client, alice_client):
    anonymous = client.post(CHECK_URL, {"fields": "total"})
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/accounts/login/")
    assert alice_client.get(CHECK_URL).status_code == 405


# --- Templates -------------------------------------------------------------------------------


@pytest.fixture
def alices_batch(alice) -> BatchProcess:
    return batch_create(
        user=alice,
        files=[invoice_upload()],
        prompt="The supplier's invoice details.",
        fields=parse_fields("invoice number!\ntotal:number -- with tax"),
        name="March invoices",
    )


@pytest.mark.django_db
def test_the_upload_page_offers_the_shipped_templates(alice_client):
    page = alice_client.get(UPLOAD_URL)
    text = page_text(page)
    assert "Start from a template: Invoice · Receipt · Bank statement" in text
    assert "Uses 1 of your 1,000 documents this month; not counted as a submission." in text


@pytest.mark.django_db
def test_a_template_fills_the_prompt_and_fields_of_the_upload_form(alice_client):
    template = shipped_id(alice_client, "Bank statement")
    page = alice_client.get(f"{UPLOAD_URL}?template={template}").content.decode()
    assert "The statement&#x27;s account, period, balances and every transaction." in page
    assert "closing balance!:number\ncurrency -- ISO 4217 code, e.g. EUR" in html.unescape(page)


@pytest.mark.django_db
def test_a_batch_is_saved_as_a_template_and_starts_a_new_batch(alice_client, alice, alices_batch):
    response = alice_client.post(
        f"/dashboard/batches/{alices_batch.pk}/save-template/", {"name": " Supplier  invoices "}
    )
    assert response.status_code == 302
    template = FieldTemplate.objects.get(user=alice)
    assert (template.name, template.prompt, template.fields) == (
        "Supplier invoices",
        "The supplier's invoice details.",
        alices_batch.fields,
    )
    assert "Saved as template “Supplier invoices”" in page_text(alice_client.get(response.url))
    upload = alice_client.get(UPLOAD_URL)
    assert "Bank statement · Supplier invoices" in page_text(upload)
    filled = alice_client.get(f"{UPLOAD_URL}?template={template.pk}").content.decode()
    assert "invoice number!\ntotal:number -- with tax</textarea>" in html.unescape(filled)


@pytest.mark.django_db
def test_a_second_template_of_the_same_name_is_refused(alice_client, alice, alices_batch):
    url = f"/dashboard/batches/{alices_batch.pk}/save-template/"
    alice_client.post(url, {"name": "Supplier invoices"})
    response = alice_client.post(url, {"name": "supplier INVOICES"}, follow=True)
    assert "You already have a template called “supplier INVOICES”" in page_text(response)
    assert FieldTemplate.objects.filter(user=alice).count() == 1


@pytest.mark.django_db
def test_another_users_batch_and_templates_are_404(bob_client, bob, alice, alices_batch):
    saved = bob_client.post(
        f"/dashboard/batches/{alices_batch.pk}/save-template/", {"name": "Stolen"}
    )
    assert saved.status_code == 404
    assert not FieldTemplate.objects.exists()
    alices = FieldTemplate.objects.create(user=alice, name="Mine", prompt="total", fields=[])
    assert bob_client.get(f"{UPLOAD_URL}?template={alices.pk}").status_code == 404
    assert bob_client.post(f"{TEMPLATES_URL}{alices.pk}/delete/").status_code == 404
    assert "Mine" not in page_text(bob_client.get(TEMPLATES_URL))
    assert FieldTemplate.objects.filter(pk=alices.pk).exists()


@pytest.mark.django_db
def test_the_owner_deletes_their_template_but_not_a_shipped_one(alice_client, alice):
    mine = FieldTemplate.objects.create(user=alice, name="Mine", prompt="total", fields=[])
    response = alice_client.post(f"{TEMPLATES_URL}{mine.pk}/delete/", follow=True)
    assert "Template “Mine” deleted." in page_text(response)
    assert not FieldTemplate.objects.exists()
    invoice = shipped_id(alice_client, "Invoice")
    assert alice_client.post(f"{TEMPLATES_URL}{invoice}/delete/").status_code == 404
    assert "Invoice comes with Sheaf" in page_text(alice_client.get(TEMPLATES_URL))


@pytest.mark.django_db
def test_template_pages_need_a_user_and_the_right_method(client, alice_client, alices_batch):
    assert client.get(TEMPLATES_URL).status_code == 302
    assert alice_client.post(TEMPLATES_URL).status_code == 405
    save = f"/dashboard/batches/{alices_batch.pk}/save-template/"
    assert alice_client.get(save).status_code == 405
    assert alice_client.get(f"{TEMPLATES_URL}{alices_batch.pk}/delete/").status_code == 405


# --- Try on one document ---------------------------------------------------------------------


def post_trial(client, *files, fields: str = "invoice number\ntotal:number"):
    form = {"name": "", "description": "", "prompt": "The invoice.", "fields": fields}
    return client.post(TRIAL_URL, {**form, "mode": "standard", "files": list(files)})


@pytest.mark.django_db(transaction=True)
def test_a_try_extracts_one_document_and_shows_its_values(alice_client, alice, settings):
    settings.SHEAF_EXTRACTION_ENGINE = "local"
    response = post_trial(alice_client, invoice_upload("march.pdf"))
    assert response.status_code == 200
    document = Document.objects.get()
    assert "march.pdf : being extracted…" in page_text(response)
    assert f'hx-get="/dashboard/trials/{document.pk}/"' in response.content.decode()

    drain(budget_seconds=30)
    shown = alice_client.get(f"/dashboard/trials/{document.pk}/")
    text = page_text(shown)
    document.refresh_from_db()
    total = document.result["fields"]["total"]["value"]
    number = document.result["fields"]["invoice number"]["value"]
    assert "march.pdf : completed" in text
    assert f"invoice number {number} found" in text
    assert f"total {total} found" in text
    assert "hx-get" not in shown.content.decode()
    assert "This try counts as 1 of your 1,000 documents this month (1 used)" in text
    assert not Event.objects.exists()  # no batch.completed webhook or email


@pytest.mark.django_db
def test_a_try_is_one_document_of_the_month_and_no_submission(alice_client, alice):
    post_trial(alice_client, invoice_upload())
    batch = BatchProcess.objects.get()
    assert batch.is_trial
    assert (batch.name, batch.total_documents) == ("Try: invoice.pdf", 1)
    assert user_usage(alice).documents_this_month == 1
    assert not Submission.objects.exists()


@pytest.mark.django_db
def test_a_try_works_when_the_hours_submissions_are_used_up(alice_client, alice, settings):
    settings.SHEAF_PLAN_LIMITS = {"plus": {"submissions_per_hour": 1}}
    Submission.objects.create(user=alice)
    assert post_trial(alice_client, invoice_upload()).status_code == 200
    assert BatchProcess.objects.get().is_trial


@pytest.mark.django_db
def test_a_try_is_hidden_from_the_dashboard_and_the_api(alice_client, alice):
    post_trial(alice_client, invoice_upload("tried.pdf"))
    batch = BatchProcess.objects.get()
    assert "tried.pdf" not in page_text(alice_client.get("/dashboard/"))
    listed = alice_client.get("/api/v1/batches/").json()
    assert listed["count"] == 0
    assert alice_client.get(f"/api/v1/batches/{batch.pk}/").status_code == 404


@pytest.mark.django_db
def test_a_try_reports_every_problem_and_stores_nothing(alice_client, media_files):
    response = post_trial(
        alice_client, invoice_upload("a.pdf"), invoice_upload("b.pdf"), fields="a\na\nt: table()"
    )
    assert response.status_code == 400
    text = page_text(response)
    assert "Nothing was tried." in text
    assert "Field 'a' is listed twice." in text
    assert "a table needs at least one column." in text
    response = post_trial(alice_client, invoice_upload("a.pdf"), invoice_upload("b.pdf"))
    assert "Choose the one document to try the prompt on." in page_text(response)
    assert not BatchProcess.objects.exists()
    assert media_files() == []


@pytest.mark.django_db
def test_a_try_past_the_months_quota_is_refused(alice_client, alice, settings):
    settings.SHEAF_PLAN_LIMITS = {"plus": {"documents_per_month": 0}}
    response = post_trial(alice_client, SimpleUploadedFile("a.txt", b"Total: 12.00 EUR\n"))
    assert response.status_code == 400
    assert "so these 1 do not fit" in page_text(response)
    assert not BatchProcess.objects.exists()


@pytest.mark.django_db
def test_another_users_try_is_404_and_try_needs_a_user_and_post(client, alice_client, bob_client):
    post_trial(alice_client, invoice_upload())
    document = Document.objects.get()
    assert bob_client.get(f"/dashboard/trials/{document.pk}/").status_code == 404
    assert client.post(TRIAL_URL).status_code == 302
    assert alice_client.get(TRIAL_URL).status_code == 405
    assert alice_client.post(f"/dashboard/trials/{document.pk}/").status_code == 405
