"""Results kept per run: the upload is run 1, each document's outcome has one row in it."""

from __future__ import annotations

import copy
from collections import Counter
from decimal import Decimal

import pytest
from django.core.files.base import ContentFile
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from batches import pipeline, services
from batches.models import BatchProcess, Run, RunResult
from batches.tasks import drain
from documents.models import Document, result_value_counts
from extraction.contract import ErrorKind, ExtractionError
from extraction.fields import parse_fields
from samples.invoices import invoice
from tests.batches.test_api import bearer_for, upload
from tests.batches.test_upload import created_batch, post_upload
from tests.factories import BatchFactory, DocumentFactory
from tests.support.documents import invoice_upload, invoice_uploads

RESULT = {
    "engine": "local",
    "model": None,
    "fields": {"total": {"value": 12.5, "quote": "12.50", "page": 1, "verified": True}},
}


def _queued(batch: BatchProcess) -> Document:
    return DocumentFactory(batch=batch, read_at=timezone.now(), text="Total: 12.50")


def _row(document: Document) -> RunResult:
    return RunResult.objects.get(document=document)


@pytest.mark.django_db
def test_an_api_upload_is_run_one_and_the_batch_shows_it(alice):
    client = bearer_for(alice)
    response = upload(client, invoice_uploads(2))
    assert response.status_code == 201, response.content

    batch = BatchProcess.objects.get(pk=response.json()["id"])
    assert response.json()["run"] == 1
    assert client.get(f"/api/v1/batches/{batch.pk}/").json()["run"] == 1
    assert [b["run"] for b in client.get("/api/v1/batches/").json()["results"]] == [1]
    run = Run.objects.get(batch=batch)
    assert batch.current_run == run
    assert (run.number, run.prompt, run.fields, run.engine) == (
        1,
        batch.extraction_prompt,
        batch.fields,
        batch.engine,
    )
    assert run.finished_at is None


@pytest.mark.django_db
def test_a_form_upload_is_run_one(alice_client, media_files):
    batch = created_batch(post_upload(alice_client, [invoice_upload()], fields="total:number"))

    assert batch.current_run is not None
    assert batch.current_run.number == 1
    assert (
        batch.current_run.fields
        == batch.fields
        == [{"name": "total", "type": "number", "description": ""}]
    )


@pytest.mark.django_db
def test_a_processed_documents_row_in_its_run_equals_its_result():
    batch = BatchFactory()
    document = _queued(batch)

    claim = pipeline.document_claim()
    pipeline.document_complete(claim=claim, result=RESULT, cost_usd=Decimal("0.02"), usage={"i": 5})

    document.refresh_from_db()
    row = _row(document)
    assert row.run == batch.current_run
    assert row.result == document.result == RESULT
    assert (row.values_total, row.values_found, row.values_verified) == (1, 1, 1)
    assert (row.cost_usd, row.usage) == (Decimal("0.02"), {"i": 5})
    run = Run.objects.get(pk=row.run_id)
    assert run.finished_at is not None  # its batch finished with this document
    assert run.cost_usd == Decimal("0.02")


@pytest.mark.django_db
def test_a_retry_of_a_failed_document_overwrites_its_row(settings):
    settings.SHEAF_MAX_ATTEMPTS = 1  # the transient error below gives up: a retry may fix it
    batch = BatchFactory()
    document = _queued(batch)
    error = ExtractionError(
        "provider_error", "no answer", kind=ErrorKind.TRANSIENT, cost_usd=Decimal("0.01")
    )
    pipeline.document_fail(claim=pipeline.document_claim(), error=error)
    failed = _row(document)
    assert failed.result is None
    assert failed.cost_usd == Decimal("0.01")
    batch.refresh_from_db()
    assert batch.current_run is not None and batch.current_run.finished_at is not None

    assert services.batch_retry_failed(batch=batch) == 1
    batch.current_run.refresh_from_db()
    assert batch.current_run.finished_at is None  # reopened with its batch
    pipeline.document_complete(claim=pipeline.document_claim(), result=RESULT)

    document.refresh_from_db()
    assert RunResult.objects.filter(document=document).count() == 1
    row = _row(document)
    assert row.pk == failed.pk
    assert row.result == document.result == RESULT
    assert row.cost_usd == document.cost_usd == Decimal("0.01")  # the failed attempt was paid


@pytest.mark.django_db
def test_the_batch_admin_page_shows_its_runs(staff_client, alice):
    batch = BatchFactory(user=alice, extraction_prompt="supplier and total")

    response = staff_client.get(f"/admin/batches/batchprocess/{batch.pk}/change/")

    assert response.status_code == 200
    body = response.content.decode()
    assert "Runs" in body
    assert "run 1 of" in body


@pytest.mark.django_db(transaction=True)
def test_the_migration_makes_run_one_of_each_existing_batch_with_its_results():
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    # Documents name their run since documents 0014, which needs the runs of batches 0013.
    before = [node for node in latest if node[0] not in ("batches", "documents")] + [
        ("batches", "0009_runs"),
        ("documents", "0013_document_ocr_confidence"),
    ]
    executor.migrate(before)
    apps = executor.loader.project_state(before).apps
    users = apps.get_model("accounts", "User")
    batches = apps.get_model("batches", "BatchProcess")
    documents = apps.get_model("documents", "Document")
    user = users.objects.create(email="old@example.com")
    batch = batches.objects.create(
        user=user,
        name="old",
        extraction_prompt="total",
        fields=[{"name": "total", "type": "number", "description": ""}],
        plan="plus",
        priority=1,
        engine="local",
        status="completed_with_errors",
        completed_at=timezone.now(),
    )
    common = {"batch": batch, "user": user, "size": 1, "sha256": "0" * 64}
    done = documents.objects.create(
        **common,
        original_filename="a.pdf",
        status="completed",
        result=RESULT,
        values_total=1,
        values_found=1,
        values_verified=1,
        cost_usd=Decimal("0.03"),
    )
    failed = documents.objects.create(
        **common, original_filename="b.pdf", status="failed", error_code="malformed"
    )

    executor = MigrationExecutor(connection)
    executor.migrate(latest)

    migrated = BatchProcess.objects.get(pk=batch.pk)
    run = migrated.current_run
    assert run is not None
    assert (run.number, run.prompt, run.fields) == (1, "total", batch.fields)
    assert run.finished_at == batch.completed_at
    rows = {row.document_id: row for row in RunResult.objects.filter(run=run)}
    assert set(rows) == {done.pk, failed.pk}
    assert rows[done.pk].result == RESULT
    assert rows[done.pk].cost_usd == Decimal("0.03")
    assert rows[failed.pk].result is None
    assert Document.objects.get(pk=done.pk).result == RESULT
    assert {document.run_id for document in Document.objects.filter(batch=migrated)} == {run.pk}


@pytest.mark.django_db
def test_deleting_a_batch_deletes_its_runs_and_their_results():
    batch = BatchFactory()
    _queued(batch)
    pipeline.document_complete(claim=pipeline.document_claim(), result=RESULT)
    assert RunResult.objects.count() == 1
    batch.refresh_from_db()

    services.batch_delete(batch=batch)

    assert (Run.objects.count(), RunResult.objects.count()) == (0, 0)


@pytest.mark.django_db(transaction=True)
def test_a_rerun_of_one_document_replaces_its_outcome_everywhere(alice, settings):
    settings.SHEAF_EXTRACTION_ENGINE = "local"
    batch = services.batch_create(
        user=alice,
        files=[ContentFile(invoice(n).pdf, name=f"{n}.pdf") for n in (3, 4)],
        prompt="Extract the invoice's details.",
        fields=parse_fields("invoice number\ntotal:number"),
    )
    drain(budget_seconds=120)
    document = batch.documents.get(original_filename="3.pdf")
    extracted = document.result
    # What an earlier engine had made of it: a total its quote does not support. (Reviews are
    # kept apart from the result and outlive a re-run: tests/batches/test_reviews.py.)
    stale = copy.deepcopy(extracted)
    stale["fields"]["total"].update(value=1.0, quote="1.00", status="unverified", verified=False)
    stale_counts = result_value_counts(stale)
    Document.objects.filter(pk=document.pk).update(
        result=stale, **{f"count_{s}": n for s, n in stale_counts.statuses.items()}
    )
    RunResult.objects.filter(document=document).update(result=stale, values_verified=1)

    services.document_rerun(document=document)
    drain(budget_seconds=120)

    document.refresh_from_db()
    batch.refresh_from_db()
    assert batch.status == BatchProcess.Status.COMPLETED
    fields = document.result["fields"]
    assert fields["total"] == extracted["fields"]["total"]  # the engine's answer again
    assert fields["invoice number"] == extracted["fields"]["invoice number"]
    counts = result_value_counts(document.result)
    assert {s: getattr(document, f"count_{s}") for s in counts.statuses} == counts.statuses
    assert document.count_unverified == stale_counts.statuses["unverified"] - 1
    # A one-document run: run 2 extracted it and carried the other document over at no cost.
    assert batch.current_run.number == 2
    row = RunResult.objects.get(document=document, run=batch.current_run)
    assert not row.carried
    assert row.result == document.result
    other = RunResult.objects.get(run=batch.current_run, document__original_filename="4.pdf")
    assert other.carried and other.cost_usd is None
    assert (row.values_found, row.values_verified) == (counts.found, counts.verified)
    body = bearer_for(alice).get(f"/api/v1/batches/{batch.pk}/").json()
    every: Counter[str] = Counter()
    for each in batch.documents.all():
        every.update(result_value_counts(each.result).statuses)
    assert body["value_counts"] == dict(every)
