"""Budgets (#18 part 3): a batch stops being dispatched when what it spent plus what it has in
flight reaches its budget, says so with the figures, tells its owner once, and resumes when the
budget is raised, with nothing lost or run twice."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from accounts.plans import all_plans
from accounts.services import api_key_create
from batches import pipeline, selectors, services
from batches.health import batches_with_health, queue_state
from batches.models import BatchProcess, RunResult
from batches.tasks import drain
from documents.models import Document
from notifications.models import Event, WebhookDelivery, WebhookEndpoint
from tests.batches.test_pipeline import claims_at_once
from tests.factories import BatchFactory, DocumentFactory
from tests.notifications.conftest import receiver, run_queued_notifications  # noqa: F401
from tests.support.engines import PricedEngine

PROMPT = "invoice number, total"
DRAIN_BUDGET = 60


@pytest.fixture
def priced(settings):
    """New batches use an engine whose every call costs (and is estimated at) $1.00."""
    settings.SHEAF_EXTRA_ENGINES = {"priced": "tests.support.engines.PricedEngine"}
    settings.SHEAF_EXTRACTION_ENGINE = "priced"
    settings.SHEAF_CONCURRENCY = 1
    PricedEngine.calls.clear()
    yield PricedEngine
    PricedEngine.calls.clear()


def _files(*names: str) -> list[ContentFile]:
    return [
        ContentFile(f"Invoice number: {name}\nTotal: {n}.00 EUR\n".encode(), name=name)
        for n, name in enumerate(names, start=1)
    ]


def _statuses(batch: BatchProcess) -> dict[str, str]:
    return dict(batch.documents.values_list("original_filename", "status"))


def bearer(user) -> Client:
    _, secret = api_key_create(user=user, name="tests")
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}")


# --- The pipeline -----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_batch_stops_at_its_budget_and_resumes_when_raised_running_each_document_once(
    alice, priced
):
    names = [f"inv-{n}.txt" for n in range(5)]
    batch = services.batch_create(
        user=alice, files=_files(*names), prompt=PROMPT, budget_usd=Decimal("3.00")
    )

    drain(budget_seconds=DRAIN_BUDGET)

    batch.refresh_from_db()
    statuses = _statuses(batch)
    assert sorted(statuses.values()) == ["completed"] * 3 + ["queued"] * 2
    assert batch.status == BatchProcess.Status.PROCESSING
    assert batch.paused_reason == "budget reached: $3.00 spent and $0.00 in flight of $3.00"
    assert batch.budget_paused_at is not None
    assert selectors.documents_waiting(batch_id=batch.pk).count() == 0
    assert sum(priced.calls.values()) == 3

    drain(budget_seconds=DRAIN_BUDGET)  # a paused batch is not dispatched
    assert sum(priced.calls.values()) == 3
    assert _statuses(batch) == statuses

    assert services.batch_budget_set(batch=batch, budget_usd=Decimal("10.00")).paused_reason == ""
    drain(budget_seconds=DRAIN_BUDGET)

    batch.refresh_from_db()
    assert batch.status == BatchProcess.Status.COMPLETED
    assert (batch.paused_reason, batch.budget_paused_at) == ("", None)
    documents = list(batch.documents.all())
    assert {d.status for d in documents} == {Document.Status.COMPLETED}
    assert [d.attempts for d in documents] == [1] * 5  # the pause gave its attempt back
    assert dict(priced.calls) == {str(d.pk): 1 for d in documents}
    assert sorted(d.cost_usd for d in documents) == [Decimal("1.00")] * 5
    rows = RunResult.objects.filter(run=batch.current_run)
    assert rows.count() == 5 and {row.status for row in rows} == {"completed"}
    assert Event.objects.filter(batch=batch, kind="batch.paused").count() == 1
    assert Event.objects.filter(batch=batch, kind="batch.completed").count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_cost_of_a_failed_attempt_counts_against_the_budget(alice, priced):
    batch = services.batch_create(
        user=alice,
        files=_files("broken.txt", "a.txt", "b.txt"),
        prompt=PROMPT,
        budget_usd=Decimal("2.00"),
    )

    drain(budget_seconds=DRAIN_BUDGET)

    batch.refresh_from_db()
    assert _statuses(batch) == {"broken.txt": "failed", "a.txt": "completed", "b.txt": "queued"}
    assert batch.documents.get(original_filename="broken.txt").cost_usd == Decimal("1.00")
    assert batch.paused_reason == "budget reached: $2.00 spent and $0.00 in flight of $2.00"


def _budgeted_batch(user, *, budget: str, documents: int = 3) -> BatchProcess:
    batch = BatchFactory(user=user, engine="priced", budget_usd=Decimal(budget))
    for _ in range(documents):
        DocumentFactory(
            batch=batch,
            read_at=timezone.now(),
            text="Total: 1",
            estimated_cost_usd=Decimal("1.00"),
        )
    return batch


@pytest.mark.django_db(transaction=True)
def test_workers_claiming_at_once_overshoot_the_budget_by_at_most_one_estimate(alice, priced):
    batch = _budgeted_batch(alice, budget="1.50", documents=8)
    DocumentFactory.create_batch(2, batch=BatchFactory(user=alice), read_at=timezone.now())

    claims = claims_at_once(6)

    budgeted = [c for c in claims if c is not None and c.batch_id == batch.pk]
    # $0 + $1.00 in flight < $1.50 admits a second; $2.00 in flight reaches it.
    assert len(budgeted) == 2
    # A worker the budget turned away took the other batch's documents instead.
    assert len([c for c in claims if c is not None and c.batch_id != batch.pk]) == 2
    in_flight = batch.documents.filter(status=Document.Status.PROCESSING)
    assert sorted(d.in_flight_usd for d in in_flight) == [Decimal("1.00")] * 2
    batch.refresh_from_db()
    assert batch.paused_reason == "budget reached: $0.00 spent and $2.00 in flight of $1.50"
    queued = batch.documents.filter(status=Document.Status.QUEUED)
    assert queued.count() == 6 and {d.attempts for d in queued} == {0}
    assert {d.lease_token for d in queued} == {None}
    assert {d.started_at for d in queued} == {None}


@pytest.mark.django_db
def test_documents_of_a_paused_batch_are_neither_due_nor_stalled_until_it_resumes(
    alice, client, priced
):
    batch = _budgeted_batch(alice, budget="1.00", documents=1)
    long_ago = timezone.now() - timedelta(hours=2)
    Document.objects.filter(batch=batch).update(next_attempt_at=long_ago, created_at=long_ago)
    Document.objects.filter(batch=batch).update(cost_usd=Decimal("1.00"))  # as if paid before
    assert pipeline.document_claim() is None  # refused: the batch pauses

    body = client.get("/healthz").json()
    assert body["status"] == "ok"
    assert (body["queue"]["due"], body["queue"]["paused"]) == (0, 1)
    assert body["queue"]["oldest_due_seconds"] is None
    [health] = batches_with_health(BatchProcess.objects.filter(pk=batch.pk))
    assert health.oldest_due_at is None and not health.issue_stalled

    services.batch_budget_set(batch=batch, budget_usd=Decimal("5.00"))

    assert queue_state().due == 1
    response = client.get("/healthz")
    assert response.status_code == 503 and response.json()["queue"]["status"] == "fail"
    [health] = batches_with_health(BatchProcess.objects.filter(pk=batch.pk))
    assert health.issue_stalled


@pytest.mark.django_db(transaction=True)
def test_a_pause_emails_the_owner_and_sends_batch_paused_once(alice, priced, receiver):  # noqa: F811
    endpoint = WebhookEndpoint.objects.create(
        user=alice, url=receiver.url(), events=["batch.paused"], secret="whsec_test"
    )
    batch = _budgeted_batch(alice, budget="1.00", documents=3)
    batch.name = "April invoices"
    batch.save()
    claim = pipeline.document_claim()
    pipeline.document_complete(claim=claim, result={"fields": {}}, cost_usd=Decimal("1.00"))
    assert pipeline.document_claim() is None
    assert pipeline.document_claim() is None  # nothing due: no second pause
    # Lowered below what was spent: it stays paused, with the new figures, and says nothing.
    services.batch_budget_set(batch=batch, budget_usd=Decimal("0.50"))

    run_queued_notifications()

    batch.refresh_from_db()
    assert batch.paused_reason == "budget reached: $1.00 spent and $0.00 in flight of $0.50"
    [event] = Event.objects.filter(batch=batch, kind="batch.paused")
    assert event.payload["data"]["batch"]["paused_reason"] == (
        "budget reached: $1.00 spent and $0.00 in flight of $1.00"
    )
    [message] = mail.outbox
    assert message.to == ["alice@example.com"]
    assert message.subject == "[Sheaf] Batch “April invoices” paused: budget reached"
    assert "$1.00 spent and $0.00 in flight of $1.00" in message.body
    assert f"/dashboard/batches/{batch.pk}/" in message.body
    [delivery] = WebhookDelivery.objects.filter(endpoint=endpoint)
    assert delivery.status == WebhookDelivery.Status.DELIVERED
    [received] = receiver.requests
    assert received.headers["Sheaf-Event"] == "batch.paused"


# --- API, form, CLI, plans --------------------------------------------------------------------


@pytest.mark.django_db
def test_the_api_takes_a_budget_on_upload_and_shows_it(alice, settings):
    settings.SHEAF_EXTRACTION_ENGINE = "local"
    response = bearer(alice).post(
        "/api/v1/batches/",
        {"prompt": PROMPT, "budget_usd": "5", "files": _files("a.txt")},
    )

    assert response.status_code == 201, response.json()
    assert response.json()["budget_usd"] == "5.00"
    assert BatchProcess.objects.get(pk=response.json()["id"]).budget_usd == Decimal("5.00")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("value", "detail"),
    [
        ("-1", "above 0"),
        ("0", "above 0"),
        ("abc", "valid number"),
        ("1.005", "whole cents"),
        ("2000000", "at most"),
    ],
)
def test_a_bad_budget_is_a_400_invalid_and_changes_nothing(alice, value, detail):
    batch = BatchFactory(user=alice, budget_usd=Decimal("5.00"))

    response = bearer(alice).patch(
        f"/api/v1/batches/{batch.pk}/", {"budget_usd": value}, content_type="application/json"
    )

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert detail in response.json()["detail"]
    batch.refresh_from_db()
    assert batch.budget_usd == Decimal("5.00")


@pytest.mark.django_db
def test_patch_below_what_was_spent_is_taken_but_the_batch_stays_paused(alice, priced):
    batch = _budgeted_batch(alice, budget="1.00", documents=2)
    claim = pipeline.document_claim()
    pipeline.document_complete(claim=claim, result={"fields": {}}, cost_usd=Decimal("1.00"))
    assert pipeline.document_claim() is None
    api = bearer(alice)

    lower = api.patch(
        f"/api/v1/batches/{batch.pk}/", {"budget_usd": "0.50"}, content_type="application/json"
    )
    assert lower.status_code == 200
    assert lower.json()["budget_usd"] == "0.50"
    assert lower.json()["paused_reason"] == (
        "budget reached: $1.00 spent and $0.00 in flight of $0.50"
    )
    assert pipeline.document_claim() is None

    raised = api.patch(
        f"/api/v1/batches/{batch.pk}/", {"budget_usd": 3}, content_type="application/json"
    )
    assert raised.status_code == 200
    assert (raised.json()["budget_usd"], raised.json()["paused_reason"]) == ("3.00", "")
    claim = pipeline.document_claim()
    assert claim is not None and claim.batch_id == batch.pk


@pytest.mark.django_db
def test_patch_null_removes_the_budget(alice):
    batch = BatchFactory(user=alice, budget_usd=Decimal("5.00"))
    response = bearer(alice).patch(
        f"/api/v1/batches/{batch.pk}/", {"budget_usd": None}, content_type="application/json"
    )
    assert response.status_code == 200 and response.json()["budget_usd"] is None
    batch.refresh_from_db()
    assert batch.budget_usd is None


@pytest.mark.django_db
def test_patch_of_another_users_batch_is_404_anonymous_401_and_put_405(alice, bob, client):
    batch = BatchFactory(user=alice, budget_usd=Decimal("5.00"))
    url = f"/api/v1/batches/{batch.pk}/"
    data = {"budget_usd": "50"}

    other = bearer(bob).patch(url, data, content_type="application/json")
    anonymous = client.patch(url, data, content_type="application/json")
    put = bearer(alice).put(url, data, content_type="application/json")

    assert (other.status_code, other.json()["code"]) == (404, "not_found")
    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "not_authenticated")
    assert put.status_code == 405
    batch.refresh_from_db()
    assert batch.budget_usd == Decimal("5.00")


@pytest.mark.django_db
def test_a_plan_default_budget_applies_when_none_is_given(alice, settings):
    settings.SHEAF_EXTRACTION_ENGINE = "local"
    settings.SHEAF_PLAN_LIMITS = {"plus": {"default_budget_usd": 20}}

    defaulted = services.batch_create(user=alice, files=_files("a.txt"), prompt=PROMPT)
    chosen = services.batch_create(
        user=alice, files=_files("b.txt"), prompt=PROMPT, budget_usd=Decimal("2.50")
    )
    me = bearer(alice).get("/api/v1/me/").json()

    assert defaulted.budget_usd == Decimal("20.00")
    assert chosen.budget_usd == Decimal("2.50")
    assert me["limits"]["default_budget_usd"] == "20.00"


@pytest.mark.parametrize("value", [-5, 0, "lots", True])
def test_a_bad_plan_default_budget_is_refused_at_startup(settings, value):
    settings.SHEAF_PLAN_LIMITS = {"growth": {"default_budget_usd": value}}
    with pytest.raises(ImproperlyConfigured, match="default_budget_usd"):
        all_plans()


@pytest.mark.django_db
def test_the_upload_form_takes_a_budget(alice_client, settings):
    settings.SHEAF_EXTRACTION_ENGINE = "local"
    response = alice_client.post(
        "/dashboard/batch-upload/",
        {"prompt": PROMPT, "mode": "standard", "budget_usd": "7.5", "files": _files("a.txt")},
    )
    assert response.status_code == 302
    assert BatchProcess.objects.get().budget_usd == Decimal("7.50")

    refused = alice_client.post(
        "/dashboard/batch-upload/",
        {"prompt": PROMPT, "mode": "standard", "budget_usd": "-1", "files": _files("b.txt")},
    )
    assert refused.status_code == 400
    assert "greater than or equal to 0.01" in refused.content.decode()
    assert BatchProcess.objects.count() == 1


@pytest.mark.django_db
def test_the_cli_creates_a_batch_with_a_budget_and_raises_it(alice, settings, tmp_path, capsys):
    settings.SHEAF_EXTRACTION_ENGINE = "local"
    path = tmp_path / "a.txt"
    path.write_text("Invoice number: 7\nTotal: 3.00 EUR\n")

    call_command(
        "batch", "create", "--user", alice.email, "--prompt", PROMPT, "--budget-usd", "2.5", path
    )
    batch = BatchProcess.objects.get()
    assert batch.budget_usd == Decimal("2.50")
    assert "budget $2.50" in capsys.readouterr().err

    call_command("batch", "budget", str(batch.pk), "12")
    batch.refresh_from_db()
    assert batch.budget_usd == Decimal("12.00")
    assert "budget $12.00" in capsys.readouterr().out

    with pytest.raises(CommandError, match="above 0"):
        call_command("batch", "budget", str(batch.pk), "-1")
    call_command("batch", "budget", str(batch.pk), "none")
    batch.refresh_from_db()
    assert batch.budget_usd is None


@pytest.mark.django_db
def test_the_batch_page_shows_the_pause_and_raises_the_budget(
    alice, alice_client, bob_client, client, priced
):
    batch = _budgeted_batch(alice, budget="1.00", documents=2)
    claim = pipeline.document_claim()
    pipeline.document_complete(claim=claim, result={"fields": {}}, cost_usd=Decimal("1.00"))
    assert pipeline.document_claim() is None
    page = f"/dashboard/batches/{batch.pk}/"
    url = f"{page}budget/"

    shown = alice_client.get(page).content.decode()
    assert "budget reached: $1.00 spent and $0.00 in flight of $1.00" in shown
    assert f'action="{url}"' in shown
    assert bob_client.post(url, {"budget_usd": "9"}).status_code == 404
    assert client.post(url, {"budget_usd": "9"}).status_code == 302  # to the login page
    assert alice_client.get(url).status_code == 405
    refused = alice_client.post(url, {"budget_usd": "-2"}, follow=True).content.decode()
    assert "Budget: Ensure this value is greater than or equal to 0.01." in refused
    batch.refresh_from_db()
    assert batch.budget_usd == Decimal("1.00") and batch.budget_paused_at is not None

    done = alice_client.post(url, {"budget_usd": "9"}, follow=True).content.decode()

    assert "Budget set to $9.00." in done
    assert "budget reached" not in done
    batch.refresh_from_db()
    assert (batch.budget_usd, batch.paused_reason, batch.budget_paused_at) == (
        Decimal("9.00"),
        "",
        None,
    )
