"""Re-runs with changes (issue 18): a batch runs again on the text already read, with a new
prompt or fields; the new run is served once it finishes, each value says what changed, an older
run can be kept again, reviewed values are the ground truth a run is scored against."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command

from accounts.models import MonthlyUsage, Submission
from batches import pipeline, services
from batches.models import BatchProcess, Run, RunResult
from batches.reviews import document_review
from batches.tasks import drain
from documents.models import Document
from extraction.fields import parse_fields
from notifications.models import Event
from samples.invoices import invoice
from tests.batches.test_anthropic_engine import ACME, GLOBEX, MESSAGES, fake  # noqa: F401
from tests.batches.test_api import bearer_for

FIELDS = "invoice number\ntotal:number"
WITH_DATE = "invoice number\ntotal:number\ninvoice date:date"


@pytest.fixture
def finished(alice, settings) -> BatchProcess:
    """Three invoices extracted by the offline engine, run 1 finished."""
    settings.SHEAF_EXTRACTION_ENGINE = "local"
    batch = services.batch_create(
        user=alice,
        files=[ContentFile(invoice(n).pdf, name=f"{n}.pdf") for n in (1, 2, 3)],
        prompt="Extract the invoice's details.",
        fields=parse_fields(FIELDS),
    )
    drain(budget_seconds=120)
    batch.refresh_from_db()
    assert batch.status == BatchProcess.Status.COMPLETED
    return batch


def acme_extracted(user) -> BatchProcess:
    """One text invoice extracted by (fake) Claude."""
    batch = services.batch_create(
        user=user,
        files=[ContentFile(ACME.encode(), name="acme.txt")],
        prompt="invoice number, total",
        fields=parse_fields(FIELDS),
    )
    drain(budget_seconds=45)
    return batch


def _start(client, batch, **body):
    return client.post(f"/api/v1/batches/{batch.pk}/runs/", body, content_type="application/json")


def _values(client, batch) -> dict[str, dict]:
    body = client.get(f"/api/v1/batches/{batch.pk}/").json()
    return {
        d["filename"]: {name: cell["value"] for name, cell in d["result"]["fields"].items()}
        for d in body["documents"]
    }


@pytest.mark.django_db(transaction=True)
def test_a_field_added_to_a_finished_batch_runs_on_the_text_read_and_shows_what_changed(
    alice, finished
):
    client = bearer_for(alice)
    before = _values(client, finished)
    read_at = dict(finished.documents.values_list("pk", "read_at"))
    used = MonthlyUsage.objects.get(user=alice).documents
    submissions = Submission.objects.filter(user=alice).count()

    response = _start(client, finished, fields=WITH_DATE)

    assert response.status_code == 201, response.content
    run = response.json()
    assert (run["number"], run["status"], run["current"]) == (2, "running", False)
    assert run["asked"] == ["invoice date"]
    # Until the run finishes, the batch serves run 1; a second run is refused meanwhile.
    assert client.get(f"/api/v1/batches/{finished.pk}/").json()["run"] == 1
    assert _values(client, finished) == before
    again = client.post(f"/api/v1/batches/{finished.pk}/runs/", {}, content_type="application/json")
    assert again.status_code == 409
    assert again.json()["code"] == "conflict"

    drain(budget_seconds=120)

    batch = client.get(f"/api/v1/batches/{finished.pk}/").json()
    assert (batch["status"], batch["run"]) == ("completed", 2)
    after = _values(client, finished)
    for filename, values in before.items():
        assert {name: after[filename][name] for name in values} == values  # kept as they were
        assert after[filename]["invoice date"]  # the new field, found in each invoice
    # Nothing was read again; each document counted once more, the run as one submission.
    assert dict(finished.documents.values_list("pk", "read_at")) == read_at
    assert MonthlyUsage.objects.get(user=alice).documents == used + 3
    assert Submission.objects.filter(user=alice).count() == submissions + 1
    # The batch finished (and notified) once more, naming the run it now serves.
    finishes = Event.objects.filter(batch=finished, kind="batch.completed").order_by("created_at")
    assert [
        (e.payload["data"]["batch"]["finish"], e.payload["data"]["batch"]["run"]) for e in finishes
    ] == [
        (1, 1),
        (2, 2),
    ]

    runs = client.get(f"/api/v1/batches/{finished.pk}/runs/").json()
    assert [(r["number"], r["status"], r["current"]) for r in runs] == [
        (1, "finished", False),
        (2, "finished", True),
    ]
    assert runs[1]["changes"] == {"same": 6, "changed": 0, "new": 3, "lost": 0}
    diff = client.get(f"/api/v1/batches/{finished.pk}/runs/2/diff/").json()
    assert (diff["run"], diff["against"], diff["counts"]) == (2, 1, runs[1]["changes"])
    changes = {
        (d["filename"], v["field"]): (v["change"], v["before"], v["after"])
        for d in diff["documents"]
        for v in d["values"]
    }
    assert changes[("1.pdf", "invoice date")] == ("new", None, after["1.pdf"]["invoice date"])
    assert changes[("1.pdf", "total")][0] == "same"


@pytest.mark.django_db(transaction=True)
def test_keeping_the_earlier_run_serves_its_values_again(alice, finished):
    client = bearer_for(alice)
    before = _values(client, finished)
    client.post(
        f"/api/v1/batches/{finished.pk}/runs/",
        {"prompt": "Only the invoice number.", "fields": "invoice number"},
        content_type="application/json",
    )
    drain(budget_seconds=120)
    assert {tuple(values) for values in _values(client, finished).values()} == {("invoice number",)}

    response = client.post(f"/api/v1/batches/{finished.pk}/runs/1/keep/")

    assert response.status_code == 200, response.content
    assert response.json()["current"] is True
    body = client.get(f"/api/v1/batches/{finished.pk}/").json()
    assert (body["run"], body["prompt"], body["status"]) == (
        1,
        "Extract the invoice's details.",
        "completed",
    )
    assert [f["name"] for f in body["fields"]] == ["invoice number", "total"]
    assert _values(client, finished) == before
    assert client.get(f"/api/v1/batches/{finished.pk}/runs/9/diff/").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_a_review_outlives_a_rerun_and_scores_each_run(alice, finished):
    client = bearer_for(alice)
    document = finished.documents.get(original_filename="1.pdf")
    machine_total = document.result["fields"]["total"]["value"]
    document_review(
        user=alice, document_id=document.pk, values={"total": "1.00"}, confirmed=["invoice number"]
    )

    # Tried on the reviewed documents first: one document, scored, never current.
    response = client.post(
        f"/api/v1/batches/{finished.pk}/runs/", {"trial": True}, content_type="application/json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["documents"] == 1
    drain(budget_seconds=120)

    runs = {r["number"]: r for r in client.get(f"/api/v1/batches/{finished.pk}/runs/").json()}
    assert runs[2]["trial"] and not runs[2]["current"] and runs[1]["current"]
    for number in (1, 2):
        score = runs[number]["score"]
        assert score["documents"] == 1
        assert score["fields"]["invoice number"] == {"compared": 1, "correct": 1, "rate": 1.0}
        assert score["fields"]["total"] == {"compared": 1, "correct": 0, "rate": 0.0}
        assert score["disagreements"] == [
            {
                "document": str(document.pk),
                "filename": "1.pdf",
                "field": "total",
                "expected": "1.00",
                "extracted": machine_total,
            }
        ]
    batch = client.get(f"/api/v1/batches/{finished.pk}/").json()
    assert (batch["status"], batch["run"]) == ("completed", 1)
    assert {d["status"] for d in batch["documents"]} == {"completed"}
    # A trial cannot be kept.
    assert client.post(f"/api/v1/batches/{finished.pk}/runs/2/keep/").status_code == 409

    # The whole batch again: the person's value still wins, the machine's stays beside it.
    client.post(f"/api/v1/batches/{finished.pk}/runs/", {}, content_type="application/json")
    drain(budget_seconds=120)
    shown = client.get(f"/api/v1/documents/{document.pk}/").json()["result"]["fields"]["total"]
    assert shown["review"]["value"] == "1.00"
    assert shown["value"] == machine_total


@pytest.mark.django_db(transaction=True)
def test_canceling_a_rerun_goes_back_to_the_batch_as_it_was(alice, finished):
    client = bearer_for(alice)
    before = client.get(f"/api/v1/batches/{finished.pk}/").json()
    used = MonthlyUsage.objects.get(user=alice).documents
    _start(client, finished, fields=WITH_DATE)

    response = client.post(f"/api/v1/batches/{finished.pk}/cancel/")

    assert response.status_code == 200, response.content
    after = client.get(f"/api/v1/batches/{finished.pk}/").json()
    assert (after["status"], after["run"]) == ("completed", 1)
    assert [(d["status"], d["result"]) for d in after["documents"]] == [
        (d["status"], d["result"]) for d in before["documents"]
    ]
    assert MonthlyUsage.objects.get(user=alice).documents == used  # nothing was sent
    run = Run.objects.get(batch=finished, number=2)
    assert run.canceled_at is not None
    drain(budget_seconds=30)
    assert not RunResult.objects.filter(run=run).exists()


@pytest.mark.django_db(transaction=True)
def test_claude_is_asked_only_the_new_field(alice, fake):  # noqa: F811
    batch = services.batch_create(
        user=alice,
        files=[
            ContentFile(text.encode(), name=name)
            for name, text in (("acme.txt", ACME), ("globex.txt", GLOBEX))
        ],
        prompt="invoice number, total",
        fields=parse_fields("invoice number\ntotal:number"),
    )
    drain(budget_seconds=45)
    first_cost = {d.pk: d.cost_usd for d in batch.documents.all()}
    asked_before = len(fake.requests)

    call_command("batch", "rerun", str(batch.pk), "--fields", FIELDS + "\nissue date:date")
    drain(budget_seconds=45)

    schemas = [
        next(t for t in r.body["tools"] if "input_schema" in t)["input_schema"]
        for r in fake.requests[asked_before:]
        if r.path == MESSAGES and r.method == "POST"
    ]
    assert len(schemas) == 2
    for schema in schemas:
        text = json.dumps(schema)
        assert "issue date" in text and "invoice number" not in text and "total" not in text
    batch.refresh_from_db()
    assert batch.current_run.number == 2
    for document in batch.documents.all():
        fields = document.result["fields"]
        assert fields["invoice number"]["value"] and fields["total"]["value"]
        assert fields["issue date"]["value"] in ("2024-03-01", "2024-04-02")
        assert document.cost_usd > first_cost[document.pk]  # the new field's call, paid
    run2 = RunResult.objects.filter(run=batch.current_run)
    assert all(row.cost_usd and row.cost_usd > 0 for row in run2)


@pytest.mark.django_db(transaction=True)
def test_the_cli_lists_reruns_and_keeps_runs(alice, finished, capsys):
    call_command("batch", "rerun", str(finished.pk), "--fields", WITH_DATE)
    drain(budget_seconds=120)
    capsys.readouterr()

    call_command("batch", "runs", str(finished.pk))
    out = capsys.readouterr().out
    assert "2" in out and "current" in out and "3 new" in out

    call_command("batch", "keep", str(finished.pk), "1")
    finished.refresh_from_db()
    assert finished.current_run.number == 1
    assert Document.objects.filter(batch=finished).first().result["fields"].keys() == {
        "invoice number",
        "total",
    }


@pytest.mark.django_db(transaction=True)
def test_a_rerun_reading_a_reviewed_value_differently_keeps_the_review_and_asks_again(
    alice,
    fake,  # noqa: F811
    client,
):
    batch = acme_extracted(alice)
    document = batch.documents.get()
    # The person corrects the total and confirms the number; nothing else needs them.
    document_review(
        user=alice,
        document_id=document.pk,
        values={"total": "1200.00"},
        confirmed=["invoice number"],
    )
    batch.refresh_from_db()
    assert services_queue(batch) == []

    # The next run reads another total (and the same number): the review stands, the document
    # is back in the review queue, its page says so.
    fake.fabricate = {"total": ("1,243.50", "Total: 1,234.50 EUR")}
    call_command("batch", "rerun", str(batch.pk), "--prompt", "The total due.", "--fields", FIELDS)
    drain(budget_seconds=45)
    document.refresh_from_db()
    assert document.result["disagreements"] == ["total"]
    total = (
        bearer_for(alice)
        .get(f"/api/v1/documents/{document.pk}/")
        .json()["result"]["fields"]["total"]
    )
    assert (total["review"]["value"], total["value"]) == ("1200.00", "1243.50")
    assert services_queue(batch) == [document.pk]
    client.force_login(alice)
    page = client.get(f"/dashboard/documents/{document.pk}/").content.decode()
    assert "Run 2 read 1243.50" in page and "disagrees" in page

    # Keeping their value settles it.
    client.post(
        f"/dashboard/documents/{document.pk}/review/",
        {"field": "total", "action": "save", "value": "1200.00"},
    )
    document.refresh_from_db()
    assert "disagreements" not in document.result
    assert document.reviews["total"]["value"] == "1200.00"
    assert services_queue(batch) == []
    assert "disagreements" not in RunResult.objects.get(run__number=2, document=document).result


def services_queue(batch: BatchProcess) -> list:
    from batches.selectors import batch_review_queue

    return batch_review_queue(batch=BatchProcess.objects.get(pk=batch.pk))


@pytest.mark.django_db(transaction=True)
def test_the_rerun_form_says_what_is_wrong_and_starts_nothing(alice, bob, finished, client):
    client.force_login(alice)
    url = f"/dashboard/batches/{finished.pk}/runs/"

    bad = client.post(url, {"prompt": "Extract the invoice's details.", "fields": "items: table("})
    assert bad.status_code == 400
    assert "items" in bad.content.decode() and "Re-run with changes" in bad.content.decode()
    empty = client.post(url, {"prompt": " ", "fields": FIELDS})
    assert empty.status_code == 400
    assert Run.objects.filter(batch=finished).count() == 1

    assert client.get(f"/dashboard/batches/{finished.pk}/runs/2/").status_code == 404
    client.force_login(bob)
    assert client.post(url, {"prompt": "x", "fields": FIELDS}).status_code == 404
    assert client.get(f"/dashboard/batches/{finished.pk}/runs/1/").status_code == 404
    assert client.post(f"/dashboard/batches/{finished.pk}/runs/1/keep/").status_code == 404
    assert Run.objects.filter(batch=finished).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_rerun_reuses_only_results_read_with_its_own_prompt_and_fields(
    alice,
    fake,  # noqa: F811
):
    first, second = acme_extracted(alice), acme_extracted(alice)  # the second reuses the first
    assert second.documents.get().reused_from_id == first.documents.get().pk
    calls = fake.count(MESSAGES)
    used = MonthlyUsage.objects.get(user=alice).documents

    # A new prompt: the earlier batch's result was read with the old one, so it is not reused.
    call_command("batch", "rerun", str(second.pk), "--prompt", "The total due.", "--fields", FIELDS)
    drain(budget_seconds=45)
    assert fake.count(MESSAGES) == calls + 1
    assert "reused_from" not in second.documents.get().result
    assert MonthlyUsage.objects.get(user=alice).documents == used + 1

    # The same change on the first batch reuses that result: no call, no document counted.
    call_command("batch", "rerun", str(first.pk), "--prompt", "The total due.", "--fields", FIELDS)
    drain(budget_seconds=45)
    assert fake.count(MESSAGES) == calls + 1
    reused = first.documents.get()
    assert reused.result["reused_from"] == str(second.documents.get().pk)
    assert MonthlyUsage.objects.get(user=alice).documents == used + 1


@pytest.mark.django_db(transaction=True)
def test_a_call_in_flight_when_a_rerun_is_canceled_is_still_counted_as_spent(alice, fake):  # noqa: F811
    batch = acme_extracted(alice)
    document = batch.documents.get()
    cost_before = document.cost_usd
    assert cost_before > 0
    call_command("batch", "rerun", str(batch.pk), "--fields", WITH_DATE)
    claim = pipeline.document_claim(known={})
    assert claim is not None and claim.document_id == document.pk

    # The re-run is canceled while Claude answers; the answer arrives after, paid for.
    services.batch_cancel(batch=BatchProcess.objects.get(pk=batch.pk))
    outcome = pipeline.document_complete(
        claim=claim,
        result={"fields": {"invoice date": {"value": "2024-03-01"}}},
        cost_usd=Decimal("0.0125"),
        usage={"input_tokens": 900, "output_tokens": 40},
    )

    assert outcome == "lost"
    document.refresh_from_db()
    assert "invoice date" not in document.result["fields"]  # the run was canceled
    assert document.cost_usd == cost_before + Decimal("0.0125")
    assert document.usage["output_tokens"] > 40
    shown = bearer_for(alice).get(f"/api/v1/batches/{batch.pk}/").json()
    assert Decimal(str(shown["cost"]["actual_usd"])) == document.cost_usd
