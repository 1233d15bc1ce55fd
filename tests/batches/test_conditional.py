"""Polling that costs almost nothing (issue 19, part 4): the batch's API shape and the batch
page's progress partial answer `If-None-Match` with 304 while nothing they show changed, from one
query beyond authentication and the rate count, and with a new ETag whenever something did."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.files.base import ContentFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from batches import conditional, services
from batches.models import BatchProcess
from batches.pipeline.circuits import circuit_open
from batches.reviews import document_review
from batches.tasks import drain
from batchsite import release
from documents.models import Document
from extraction.fields import parse_fields
from samples.invoices import invoice
from tests.batches.test_api import bearer_for
from tests.factories import BatchFactory, DocumentFactory


def api_url(batch: BatchProcess) -> str:
    return f"/api/v1/batches/{batch.pk}/"


def partial_url(batch: BatchProcess) -> str:
    return f"/dashboard/batches/{batch.pk}/progress/"


def etag_of(client, url: str) -> str:
    if "/progress/" in url:
        client.get(url.split("progress/")[0])  # the page first, as a browser: its CSRF cookie
    response = client.get(url)
    assert response.status_code == 200, response.content
    return response["ETag"]


def upload(user, count: int = 2) -> BatchProcess:
    return services.batch_create(
        user=user,
        files=[ContentFile(invoice(n).pdf, name=f"{n}.pdf") for n in range(1, count + 1)],
        prompt="Extract the invoice's details.",
        fields=parse_fields("invoice number\ntotal:number"),
    )


@pytest.fixture
def finished_batch(alice) -> BatchProcess:
    batch = BatchFactory(user=alice, status=BatchProcess.Status.COMPLETED)
    DocumentFactory(
        batch=batch,
        status=Document.Status.COMPLETED,
        attempts=1,
        result={"engine": "local", "model": None, "fields": {"total": {"value": 12}}},
    )
    return batch


@pytest.mark.parametrize("url", [api_url, partial_url])
def test_an_unchanged_batch_answers_304_with_an_empty_body(alice, finished_batch, url):
    client = bearer_for(alice) if url is api_url else None
    if client is None:
        client = Client()
        client.force_login(alice)
        client.get(f"/dashboard/batches/{finished_batch.pk}/")  # the page sets its CSRF cookie

    first = client.get(url(finished_batch))
    again = client.get(url(finished_batch), HTTP_IF_NONE_MATCH=first["ETag"])

    assert first.status_code == 200 and first.content
    assert first["ETag"].startswith('W/"')
    assert "no-cache" in first["Cache-Control"] and "private" in first["Cache-Control"]
    assert "no-store" not in first["Cache-Control"]
    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == first["ETag"]
    stale = client.get(url(finished_batch), HTTP_IF_NONE_MATCH='W/"something-older"')
    assert stale.status_code == 200 and stale.content


def test_another_users_etag_poll_is_a_404(bob, finished_batch, alice):
    etag = etag_of(bearer_for(alice), api_url(finished_batch))

    response = bearer_for(bob).get(api_url(finished_batch), HTTP_IF_NONE_MATCH=etag)

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_an_api_304_costs_one_query_beyond_authentication_and_the_rate_count(alice, finished_batch):
    client = bearer_for(alice)
    etag = etag_of(client, api_url(finished_batch))
    # A method the view does not have: DRF authenticates and counts the request, then answers
    # 405 without touching the batch. That is the floor a 304 is measured against.
    with CaptureQueriesContext(connection) as floor:
        assert client.post(api_url(finished_batch)).status_code == 405
    with CaptureQueriesContext(connection) as poll:
        assert client.get(api_url(finished_batch), HTTP_IF_NONE_MATCH=etag).status_code == 304

    assert len(poll) == len(floor) + 1
    assert [q["sql"] for q in poll if "batches_batchprocess" in q["sql"]] == [poll[-1]["sql"]]


def test_a_304_still_counts_against_the_api_rate(alice, finished_batch, settings):
    settings.SHEAF_PLAN_LIMITS = {"plus": {"api_requests_per_minute": 3}}
    client = bearer_for(alice)
    etag = etag_of(client, api_url(finished_batch))

    answers = [
        client.get(api_url(finished_batch), HTTP_IF_NONE_MATCH=etag).status_code for _ in range(3)
    ]

    assert answers == [304, 304, 429]


def test_a_partial_304_costs_one_query_beyond_the_session(alice_client, finished_batch):
    etag = etag_of(alice_client, partial_url(finished_batch))
    with CaptureQueriesContext(connection) as floor:  # signed in, then refused: 405
        assert alice_client.post(partial_url(finished_batch)).status_code == 405
    with CaptureQueriesContext(connection) as poll:
        response = alice_client.get(partial_url(finished_batch), HTTP_IF_NONE_MATCH=etag)

    assert response.status_code == 304
    assert len(poll) == len(floor) + 1


def test_the_partials_page_and_sort_have_their_own_etags(alice_client, finished_batch):
    url = partial_url(finished_batch)

    etags = {etag_of(alice_client, url + query) for query in ("", "?page=2", "?sort=-file")}

    assert len(etags) == 3
    assert (
        alice_client.get(url + "?page=2", HTTP_IF_NONE_MATCH=etag_of(alice_client, url)).status_code
        == 200
    )


def test_a_new_session_does_not_get_a_copy_made_with_the_old_ones_csrf_tokens(
    alice, finished_batch
):
    old, new = Client(), Client()
    old.force_login(alice)
    new.force_login(alice)
    old.get(f"/dashboard/batches/{finished_batch.pk}/")  # sets its CSRF cookie
    new.get(f"/dashboard/batches/{finished_batch.pk}/")

    assert etag_of(old, partial_url(finished_batch)) != etag_of(new, partial_url(finished_batch))


def test_a_running_batch_gets_a_new_etag_as_its_eta_ages(alice):
    batch = BatchFactory(user=alice, status=BatchProcess.Status.PROCESSING)
    now = 1_800_000_000.0
    etag = conditional.batch_etag(user=alice, batch_id=batch.pk, now=now)

    assert conditional.batch_etag(user=alice, batch_id=batch.pk, now=now + 1) == etag
    later = now + conditional.CLOCK_SECONDS
    assert conditional.batch_etag(user=alice, batch_id=batch.pk, now=later) != etag
    batch.status = BatchProcess.Status.COMPLETED
    batch.save()
    finished = conditional.batch_etag(user=alice, batch_id=batch.pk, now=now)
    assert conditional.batch_etag(user=alice, batch_id=batch.pk, now=later + 3600) == finished


def test_canceling_a_batch_and_pausing_its_engine_give_new_etags(alice, settings):
    settings.SHEAF_EXTRACTION_ENGINE = "local"
    batch = upload(alice)
    client = bearer_for(alice)
    queued = etag_of(client, api_url(batch))

    circuit_open(engine=batch.engine, reason="credit exhausted")
    paused = client.get(api_url(batch), HTTP_IF_NONE_MATCH=queued)
    assert paused.status_code == 200 and paused.json()["paused_reason"]

    canceled = client.post(f"/api/v1/batches/{batch.pk}/cancel/")
    assert canceled.status_code == 200
    after = client.get(api_url(batch), HTTP_IF_NONE_MATCH=paused["ETag"])
    assert after.status_code == 200
    assert after.json()["status"] == "canceled"
    assert after.json()["counts"]["canceled"] == 2
    assert len({queued, paused["ETag"], after["ETag"]}) == 3


@pytest.mark.django_db(transaction=True)
def test_every_change_a_user_sees_gives_a_new_etag(alice, settings):
    """Documents completing, a review saved, a budget raised, a re-run and its documents, an
    earlier run kept: each answers the previous ETag with 200 and the change."""
    settings.SHEAF_EXTRACTION_ENGINE = "local"
    client = bearer_for(alice)
    batch = upload(alice)
    url = api_url(batch)
    seen = [etag_of(client, url)]

    def changed() -> dict:
        response = client.get(url, HTTP_IF_NONE_MATCH=seen[-1])
        assert response.status_code == 200, "a change answered 304"
        seen.append(response["ETag"])
        assert client.get(url, HTTP_IF_NONE_MATCH=seen[-1]).status_code == 304
        return response.json()

    drain(budget_seconds=120)
    assert changed()["counts"]["completed"] == 2

    document = batch.documents.order_by("original_filename").first()
    document_review(user=alice, document_id=document.pk, values={"total": 99})
    assert changed()["reviewed_documents"] == 1

    response = client.patch(url, {"budget_usd": "5.00"}, content_type="application/json")
    assert response.status_code == 200
    assert changed()["budget_usd"] == "5.00"

    started = client.post(
        f"{url}runs/", {"fields": "invoice number"}, content_type="application/json"
    )
    assert started.status_code == 201, started.content
    assert changed()["status"] == "processing"
    drain(budget_seconds=120)
    rerun = changed()
    assert (rerun["run"], rerun["status"]) == (2, "completed")

    assert client.post(f"{url}runs/1/keep/").status_code == 200
    kept = changed()
    assert kept["run"] == 1
    assert [field["name"] for field in kept["fields"]] == ["invoice number", "total"]
    assert len(set(seen)) == len(seen)
    assert Decimal(kept["budget_usd"]) == Decimal("5.00")


def test_a_malformed_id_or_a_trial_is_a_404_for_the_api(alice):
    client = bearer_for(alice)
    trial = BatchFactory(user=alice, is_trial=True, status=BatchProcess.Status.COMPLETED)

    assert client.get("/api/v1/batches/not-a-uuid/").status_code == 404
    assert client.get(api_url(trial)).status_code == 404


@pytest.mark.parametrize("url", [api_url, partial_url])
def test_after_a_deploy_an_unchanged_batch_is_sent_again(alice, finished_batch, monkeypatch, url):
    """The answer depends on the code that draws it: an ETag from before a deploy must not keep
    the old page's HTML (or the old API shape) in the client."""
    client = bearer_for(alice) if url is api_url else Client()
    if url is partial_url:
        client.force_login(alice)
    address = url(finished_batch)
    before = etag_of(client, address)
    assert client.get(address, HTTP_IF_NONE_MATCH=before).status_code == 304

    monkeypatch.setattr(conditional, "release", lambda: "the code of the next deploy")
    response = client.get(address, HTTP_IF_NONE_MATCH=before)

    assert response.status_code == 200 and response.content
    assert response["ETag"] != before


def test_a_source_file_gone_in_the_middle_of_a_deploy_still_gives_a_release():
    """The ETag's code digest reads every source file; one that vanished (or cannot be read)
    must not turn every poll into a 500."""
    gone = release.REPO / "templates" / "gone-in-the-middle-of-a-deploy.html"
    assert not gone.exists()

    assert release.digest([gone]) != release.digest([])
