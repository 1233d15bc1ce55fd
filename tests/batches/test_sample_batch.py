"""The newcomer's sample batch ("Try it with example invoices"): invoices Sheaf draws itself,
outside every plan limit and quota, on every plan, one at a time."""

from __future__ import annotations

import pytest

from accounts.models import MonthlyUsage, Submission
from accounts.selectors import user_effective_plan, user_usage
from accounts.services import limits_reserve_submission
from batches.models import BatchProcess
from batches.services import SAMPLE_INVOICES, batch_create, batch_retry_failed, batch_sample_create
from batches.tasks import drain
from batchsite.errors import Rejected
from documents.models import Document
from samples.invoices import Layout, invoice
from tests.support.documents import invoice_upload


@pytest.fixture
def offline(settings):
    settings.SHEAF_EXTRACTION_ENGINE = "local"


def free_user_at_every_limit(frank) -> None:
    """Frank (Free) has used the month's 50 documents and the hour's 3 submissions."""
    plan = user_effective_plan(frank).plan
    for documents in (48, 1, 1):
        limits_reserve_submission(user=frank, plan=plan, documents=documents)
    assert user_usage(frank).documents_this_month == plan.documents_per_month
    with pytest.raises(Rejected) as refused:
        batch_create(user=frank, files=[invoice_upload()], prompt="total")
    assert refused.value.problems[0].code == "quota_exceeded"


def test_a_free_user_at_every_limit_still_gets_a_sample_of_three_invoices(
    frank, offline, media_files
):
    free_user_at_every_limit(frank)

    batch, created = batch_sample_create(user=frank)

    assert created
    assert batch.is_sample and not batch.is_trial
    assert batch.status == BatchProcess.Status.QUEUED
    # Three documents where the Free plan allows one file per batch, none of them reserved.
    documents = list(batch.documents.order_by("original_filename"))
    assert len(documents) == len(SAMPLE_INVOICES) == 3
    assert {d.quota_month for d in documents} == {None}
    assert all(d.file.name.startswith(f"uploads/{frank.pk}/{batch.pk}/") for d in documents)
    assert len(media_files()) == 3
    assert MonthlyUsage.objects.get(user=frank).documents == 50
    assert Submission.objects.filter(user=frank).count() == 3
    assert batch.budget_usd is None
    assert [f["name"] for f in batch.fields][:3] == ["invoice number", "issue date", "due date"]


@pytest.mark.django_db(transaction=True)
def test_the_sample_is_extracted_to_the_values_its_invoices_say(frank, offline, media_files):
    batch, _ = batch_sample_create(user=frank)

    drain(budget_seconds=60)

    batch.refresh_from_db()
    assert batch.status == BatchProcess.Status.COMPLETED
    made = {
        one.filename: one.labels
        for one in (
            invoice(seed, language=language, layout=Layout(layout), serial=seed % 1000)
            for seed, language, layout in SAMPLE_INVOICES
        )
    }
    for document in batch.documents.all():
        labels = made[document.original_filename]
        fields = document.result["fields"]
        assert fields["invoice number"]["value"] == labels.invoice_number
        assert fields["issue date"]["value"] == labels.date
        assert fields["total"]["value"] == str(labels.total)
        assert fields["currency"]["value"] == labels.currency
    # Finishing gave nothing back: nothing was taken.
    assert user_usage(frank).documents_this_month == 0


def test_a_second_sample_is_the_first_one_until_it_is_deleted(frank, offline, media_files):
    first, _ = batch_sample_create(user=frank)

    again, created = batch_sample_create(user=frank)

    assert (again.pk, created) == (first.pk, False)
    assert BatchProcess.objects.filter(user=frank).count() == 1
    assert len(media_files()) == 3

    first.delete()
    third, created = batch_sample_create(user=frank)
    assert created and third.pk != first.pk


def test_each_user_has_a_sample_of_their_own(frank, alice, offline):
    franks, _ = batch_sample_create(user=frank)
    alices, created = batch_sample_create(user=alice)

    assert created
    assert alices.pk != franks.pk
    assert alices.user == alice


@pytest.mark.django_db(transaction=True)
def test_a_retry_of_the_sample_counts_as_any_batchs(frank, offline):
    batch, _ = batch_sample_create(user=frank)
    drain(budget_seconds=60)
    Document.objects.filter(batch=batch).update(
        status=Document.Status.FAILED, error_code="provider_error", error_kind="transient"
    )

    assert batch_retry_failed(batch=BatchProcess.objects.get(pk=batch.pk)) == 3

    assert user_usage(frank).documents_this_month == 3


# --- The dashboard's button -----------------------------------------------------------------------


def test_the_empty_dashboard_offers_the_sample_and_the_button_makes_it(
    frank_client, frank, offline
):
    body = frank_client.get("/dashboard/").content.decode()
    assert "Try it with example invoices" in body
    assert 'action="/dashboard/sample/"' in body

    response = frank_client.post("/dashboard/sample/", follow=True)

    batch = BatchProcess.objects.get(user=frank)
    assert response.redirect_chain == [(f"/dashboard/batches/{batch.pk}/", 302)]
    page = response.content.decode()
    assert "3 example invoices, not counted against your plan" in page
    assert "A sample batch" in page
    listing = frank_client.get("/dashboard/").content.decode()
    assert "Sample: example invoices" in listing
    assert "data-sample>Sample</span>" in listing
    assert "Try it with example invoices" not in listing


def test_the_sample_button_again_opens_the_same_sample(frank_client, frank, offline):
    frank_client.post("/dashboard/sample/")

    response = frank_client.post("/dashboard/sample/", follow=True)

    batch = BatchProcess.objects.get(user=frank)
    assert response.redirect_chain == [(f"/dashboard/batches/{batch.pk}/", 302)]
    assert "This is your sample batch: you have one at a time." in response.content.decode()


def test_the_sample_button_needs_a_signed_in_post(client, frank_client, frank):
    anonymous = client.post("/dashboard/sample/")
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/accounts/login/")

    assert frank_client.get("/dashboard/sample/").status_code == 405
    assert not BatchProcess.objects.exists()
