"""Every document's error is stored with its kind (`permanent`, `transient`, `critical`,
`gave_up`), and the API, the exports and the admin read the kind instead of guessing it from the
error code (issue 14, item 5)."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from accounts.services import api_key_create
from batches import pipeline, services
from batches.models import BatchProcess
from documents.models import Document
from extraction.contract import ErrorKind, ExtractionError
from tests.factories import BatchFactory, DocumentFactory

TRANSIENT = ExtractionError(
    "provider_error", "Claude is overloaded; will retry.", kind=ErrorKind.TRANSIENT
)
PERMANENT = ExtractionError("malformed", "a.pdf is not a readable PDF.")
CRITICAL = ExtractionError("provider_error", "Claude refused the account.", kind=ErrorKind.CRITICAL)


def _batch(n: int, **fields: object) -> BatchProcess:
    """A running batch of `n` read documents (all created first, so that failing one does
    not finish the batch before the next is claimed)."""
    batch = BatchFactory(**fields)
    for _ in range(n):
        DocumentFactory(batch=batch, read_at=timezone.now(), text="Total: 1")
    return batch


def _fail_next(error: ExtractionError) -> Document:
    claim = pipeline.document_claim()
    assert claim is not None
    pipeline.document_fail(claim=claim, error=error)
    return Document.objects.get(pk=claim.document_id)


@pytest.mark.django_db
def test_each_outcome_of_an_attempt_stores_the_kind_of_its_error(settings):
    settings.SHEAF_MAX_ATTEMPTS = 2
    _batch(3, engine="anthropic")

    permanent = _fail_next(PERMANENT)
    waiting = _fail_next(TRANSIENT)
    assert (permanent.status, permanent.error_kind) == ("failed", "permanent")
    assert (waiting.status, waiting.error_kind) == ("queued", "transient")

    # A second transient error spends the last attempt: the document gave up.
    Document.objects.filter(pk=waiting.pk).update(next_attempt_at=timezone.now())
    claim = pipeline.document_claim(document_ids=[waiting.pk])
    assert claim is not None
    assert pipeline.document_fail(claim=claim, error=TRANSIENT) == "failed"
    waiting.refresh_from_db()
    assert (waiting.error_code, waiting.error_kind) == ("provider_error", "gave_up")
    assert "gave up after 2 attempts" in waiting.error_message

    paused = _fail_next(CRITICAL)  # opens the engine's circuit
    assert (paused.status, paused.error_kind) == ("queued", "critical")


@pytest.mark.django_db
def test_a_success_after_a_failed_attempt_leaves_no_error():
    _batch(1)
    document = _fail_next(TRANSIENT)
    Document.objects.filter(pk=document.pk).update(next_attempt_at=timezone.now())
    claim = pipeline.document_claim()
    assert claim is not None

    pipeline.document_complete(claim=claim, result={"engine": "local", "model": None, "fields": {}})

    document.refresh_from_db()
    assert (document.error_code, document.error_kind, document.error) == ("", "", None)


@pytest.mark.django_db
def test_the_sweep_stores_transient_for_a_requeued_lease_and_gave_up_for_a_spent_one(settings):
    settings.SHEAF_MAX_ATTEMPTS = 2
    batch = BatchFactory()
    expired = timezone.now() - timedelta(minutes=1)
    common = {"status": "processing", "lease_token": "00000000-0000-4000-8000-000000000001"}
    again = DocumentFactory(batch=batch, attempts=1, lease_expires_at=expired, **common)
    common["lease_token"] = "00000000-0000-4000-8000-000000000002"
    spent = DocumentFactory(batch=batch, attempts=2, lease_expires_at=expired, **common)

    pipeline.sweep()

    again.refresh_from_db()
    spent.refresh_from_db()
    assert (again.status, again.error_code, again.error_kind) == ("queued", "timeout", "transient")
    assert (spent.status, spent.error_code, spent.error_kind) == ("failed", "timeout", "gave_up")


@pytest.mark.django_db
def test_the_api_shows_each_documents_error_with_its_kind(alice):
    batch = _batch(2, user=alice)
    failed = _fail_next(PERMANENT)
    waiting = _fail_next(TRANSIENT)
    services.batch_cancel(batch=batch)  # the waiting document is canceled
    _, secret = api_key_create(user=alice, name="tests")
    api = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")

    failed_body = api.get(f"/api/v1/documents/{failed.pk}/").json()
    canceled_body = api.get(f"/api/v1/documents/{waiting.pk}/").json()
    batch_body = api.get(f"/api/v1/batches/{batch.pk}/").json()

    assert failed_body["error"] == {
        "code": "malformed",
        "message": "a.pdf is not a readable PDF.",
        "kind": "permanent",
    }
    assert canceled_body["status"] == "canceled"
    assert canceled_body["error"] == {
        "code": "canceled",
        "message": "Canceled before it was processed.",
        "kind": None,  # canceled by its owner: not a failure of any kind
    }
    assert [d["error"]["kind"] for d in batch_body["documents"]] == ["permanent", None]


@pytest.mark.django_db
def test_the_admins_retry_says_how_many_had_failed_permanently(staff_client, alice, settings):
    settings.SHEAF_MAX_ATTEMPTS = 1
    batch = _batch(2, user=alice)
    _fail_next(PERMANENT)
    _fail_next(TRANSIENT)  # its only attempt: gave up

    response = staff_client.post(
        "/admin/batches/batchprocess/",
        {"action": "retry_failed", "_selected_action": [batch.pk]},
        follow=True,
    )

    assert (
        f"{batch.name}: 2 document(s) requeued (1 of them had failed permanently and will "
        "likely fail again)." in response.content.decode()
    )
    assert set(batch.documents.values_list("status", "error_kind")) == {("queued", "")}


def _cli_retry(batch: BatchProcess) -> tuple[str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    call_command("batch", "retry", str(batch.pk), stdout=stdout, stderr=stderr)
    return stdout.getvalue(), stderr.getvalue()


@pytest.mark.django_db
def test_the_clis_retry_leaves_permanent_failures_and_names_each_with_its_fix(alice, settings):
    settings.SHEAF_MAX_ATTEMPTS = 1
    batch = _batch(2, user=alice)
    locked = _fail_next(PERMANENT)
    overloaded = _fail_next(TRANSIENT)

    stdout, stderr = _cli_retry(batch)

    assert "1 failed document queued again" in stdout
    assert stderr.strip() == (
        f"not retried, a retry cannot fix it: {locked.original_filename} (malformed: "
        "upload a copy that opens)"
    )
    locked.refresh_from_db()
    overloaded.refresh_from_db()
    assert (locked.status, overloaded.status) == ("failed", "queued")

    # Only the permanent failure is left: nothing to retry, and nothing changes.
    _fail_next(PERMANENT)
    before = sorted(batch.documents.values_list("status", "error_code", "attempts"))
    with pytest.raises(CommandError, match="A retry cannot fix the failed documents"):
        _cli_retry(batch)
    assert sorted(batch.documents.values_list("status", "error_code", "attempts")) == before
