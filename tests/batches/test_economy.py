"""The economy lane: Growth batches sent through Anthropic's Message Batches API (the fake)."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from batches import pipeline, selectors, services
from batches.models import BatchProcess, EconomySubmission
from batches.pipeline import economy
from documents.models import Document
from extraction.claude import engine as claude_engine
from extraction.claude.pricing import Usage, cost_of
from extraction.contract import ErrorKind, ExtractionError
from tests.support import economy_crash
from tests.support.cluster import REPO, cluster_env, wait_for
from tests.support.documents import blank_pdf
from tests.support.fake_anthropic import FAKE_API_KEY, FakeAnthropic


@pytest.fixture
def claude(settings):
    with FakeAnthropic() as fake:
        settings.ANTHROPIC_API_KEY = FAKE_API_KEY
        settings.ANTHROPIC_BASE_URL = fake.base_url
        settings.SHEAF_EXTRACTION_ENGINE = "anthropic"
        settings.SHEAF_RETRY_BASE_SECONDS = 0
        yield fake


def _economy_batch(user, count: int) -> BatchProcess:
    files = [
        ContentFile(f"Invoice number: INV-{n}\nTotal: {n}0.00 EUR\n".encode(), name=f"inv-{n}.txt")
        for n in range(count)
    ]
    return services.batch_create(
        user=user,
        files=files,
        prompt="invoice number, total",
        fields=[
            {"name": "invoice number", "type": "string", "description": ""},
            {"name": "total", "type": "number", "description": ""},
        ],
        mode="economy",
    )


def _process_all() -> None:
    while (claim := pipeline.document_claim()) is not None:
        pipeline.document_process(claim=claim)


@pytest.mark.django_db
def test_an_economy_batch_completes_through_message_batches_at_half_the_price(grace, claude):
    batch = _economy_batch(grace, 3)

    _process_all()  # read, then wait for the message batch
    assert set(batch.documents.values_list("status", flat=True)) == {"processing"}
    pipeline.sweep()  # submits, and (the fake ends batches at once) collects

    assert claude.count("/v1/messages") == 0
    assert claude.count("/v1/messages/batches", method="POST") == 1
    sent = claude.requests[0].body["requests"]
    assert {r["custom_id"] for r in sent} == {d.pk.hex for d in batch.documents.all()}
    batch.refresh_from_db()
    assert batch.status == BatchProcess.Status.COMPLETED
    for document in batch.documents.all():
        number = document.original_filename.removeprefix("inv-").removesuffix(".txt")
        assert document.result["fields"]["invoice number"]["value"] == f"INV-{number}"
        assert document.result["fields"]["total"]["verified"] is True
        usage = Usage(**document.usage)
        assert document.cost_usd == cost_of(usage, model="claude-haiku-4-5", batch_discount=True)
        assert document.cost_usd < cost_of(usage, model="claude-haiku-4-5")


@pytest.mark.django_db
def test_errored_and_expired_economy_results_fall_back_to_the_standard_path(grace, claude):
    batch = _economy_batch(grace, 3)
    first, second, third = batch.documents.order_by("original_filename")
    claude.batch_outcomes = {first.pk.hex: "expired", second.pk.hex: "errored"}

    _process_all()
    pipeline.sweep()

    first.refresh_from_db()
    assert first.status == Document.Status.QUEUED
    assert "Economy lane: expired" in first.error_message
    _process_all()  # the standard path, one Messages call each

    assert claude.count("/v1/messages") == 2
    statuses = dict(batch.documents.values_list("original_filename", "status"))
    assert set(statuses.values()) == {"completed"}
    third.refresh_from_db()
    assert third.cost_usd < Decimal(1)
    first.refresh_from_db()
    assert first.attempts == 1  # the economy round trip spent no attempt


@pytest.mark.django_db
def test_the_economy_lane_waits_while_the_provider_batch_is_running(grace, claude):
    claude.batch_polls = 5  # "in_progress" for the next five looks
    batch = _economy_batch(grace, 2)

    _process_all()
    pipeline.sweep()
    pipeline.sweep()

    assert claude.count("/v1/messages/batches", method="POST") == 1  # sent once, not again
    assert set(batch.documents.values_list("status", flat=True)) == {"processing"}
    for _ in range(5):
        pipeline.sweep()
    batch.refresh_from_db()
    assert batch.status == BatchProcess.Status.COMPLETED


def _unfit_batch_answer(custom_id: str) -> dict[str, object]:
    """A batch result that succeeded (and was billed) but does not fit the schema."""
    return {
        "type": "succeeded",
        "message": {
            "id": f"msg_{custom_id}",
            "type": "message",
            "role": "assistant",
            "model": "claude-haiku-4-5",
            "content": [
                {"type": "tool_use", "id": "toolu_1", "name": "record_extraction", "input": {}}
            ],
            "stop_reason": "tool_use",
            "stop_sequence": None,
            "usage": {"input_tokens": 1000, "output_tokens": 100},
        },
    }


@pytest.mark.django_db
def test_an_unusable_batch_answer_is_paid_for_and_its_cost_stays_with_the_document(grace, claude):
    batch = _economy_batch(grace, 1)
    document = batch.documents.get()
    claude.batch_outcomes = {document.pk.hex: _unfit_batch_answer(document.pk.hex)}

    _process_all()
    pipeline.sweep()  # the batch answer does not fit: back to the standard path

    document.refresh_from_db()
    assert document.status == Document.Status.QUEUED
    assert "Economy lane: invalid answer" in document.error_message
    half_price = cost_of(Usage(1000, 100), model="claude-haiku-4-5", batch_discount=True)
    assert document.cost_usd == half_price == Decimal("0.000750")
    _process_all()

    document.refresh_from_db()
    assert document.status == Document.Status.COMPLETED
    standard = Usage(
        document.usage["input_tokens"] - 1000,
        document.usage["output_tokens"] - 100,
        document.usage["cache_creation_input_tokens"],
        document.usage["cache_read_input_tokens"],
    )
    assert document.cost_usd == half_price + cost_of(standard, model="claude-haiku-4-5")
    assert selectors.batch_costs(batch=batch).actual_usd == document.cost_usd


# --- Exactly one paid submission, however the worker dies (issue 14) ----------------------------


def _submit_in_a_worker_that_dies(claude: FakeAnthropic, step: str) -> None:
    """`economy_submit` in a child process that dies at `step` (tests/support/economy_crash.py)."""
    env = cluster_env(
        ANTHROPIC_API_KEY=FAKE_API_KEY,
        ANTHROPIC_BASE_URL=claude.base_url,
        SHEAF_EXTRACTION_ENGINE="anthropic",
    )
    child = subprocess.run(  # noqa: S603 - this interpreter, our own module, a fixed step
        [sys.executable, "-m", "tests.support.economy_crash", step],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == economy_crash.KILLED, child.stderr


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("step", economy_crash.STEPS)
def test_a_worker_killed_at_any_step_of_an_economy_submission_pays_once(grace, claude, step):
    batch = _economy_batch(grace, 3)
    _process_all()  # read, then wait for the message batch
    posts = "/v1/messages/batches"
    if step == "in_flight":
        claude.script(path=posts, method="POST", delay=1.0)  # answers after the worker died
    claude.batch_polls = 1  # each batch runs through one more look, so recovery has to wait

    _submit_in_a_worker_that_dies(claude, step)
    sent_before_recovery = claude.count(posts, method="POST")
    assert sent_before_recovery == (0 if step in ("marked", "recorded") else 1)
    # The recovery runs once the dead worker's request can no longer be on its way.
    assert wait_for(lambda: all(r.status for r in claude.requests), timeout=10)
    later = timezone.now() + timedelta(hours=1)
    for _ in range(4):
        pipeline.sweep(now=later)

    assert claude.count(posts, method="POST") == 1  # one paid submission, never two
    sent = [custom_id for b in claude.batches.values() for custom_id in b["custom_ids"]]
    assert sorted(sent) == sorted(d.pk.hex for d in batch.documents.all())
    batch.refresh_from_db()
    assert batch.status == BatchProcess.Status.COMPLETED
    assert set(batch.documents.values_list("status", flat=True)) == {"completed"}
    assert not EconomySubmission.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_lost_submission_waits_for_the_providers_batch_instead_of_sending_again(grace, claude):
    batch = _economy_batch(grace, 2)
    _process_all()
    claude.batch_polls = 3  # the provider's batch is still running for three looks
    _submit_in_a_worker_that_dies(claude, "sent")
    later = timezone.now() + timedelta(hours=1)

    pipeline.sweep(now=later)
    pipeline.sweep(now=later)

    # Its requests cannot be seen in a running batch: nothing is sent again meanwhile.
    assert claude.count("/v1/messages/batches", method="POST") == 1
    assert all(d.provider_batch_id.startswith(pipeline.SUBMITTING) for d in batch.documents.all())
    pipeline.sweep(now=later)
    pipeline.sweep(now=later)
    [provider_batch] = claude.batches
    assert set(batch.documents.values_list("provider_batch_id", "status")) == {
        (provider_batch, "completed")
    }
    assert claude.count("/v1/messages/batches", method="POST") == 1


@pytest.mark.django_db(transaction=True)
def test_marks_left_by_a_version_without_submission_records_are_reconciled_too(grace, claude):
    batch = _economy_batch(grace, 2)
    _process_all()
    _submit_in_a_worker_that_dies(claude, "sent")
    # As an earlier Sheaf left a crash: marked documents, and no record of the submission.
    EconomySubmission.objects.all().delete()
    batch.documents.update(updated_at=timezone.now() - timedelta(minutes=20))

    for _ in range(3):
        pipeline.sweep()

    assert claude.count("/v1/messages/batches", method="POST") == 1
    assert set(batch.documents.values_list("status", flat=True)) == {"completed"}
    assert not EconomySubmission.objects.exists()


# --- Reviewed defects ---------------------------------------------------------------------------


def _batch_costs_of(claude: FakeAnthropic, document: Document) -> list[Decimal]:
    """What each of the provider's batches charged for `document`'s request."""
    costs = []
    for provider_batch in claude.batches.values():
        for item in provider_batch["results"]:
            if item["custom_id"] == document.pk.hex and item["result"]["type"] == "succeeded":
                usage = item["result"]["message"]["usage"]
                paid = Usage(
                    usage["input_tokens"],
                    usage["output_tokens"],
                    usage.get("cache_creation_input_tokens") or 0,
                    usage.get("cache_read_input_tokens") or 0,
                )
                costs.append(cost_of(paid, model="claude-haiku-4-5", batch_discount=True))
    return costs


@pytest.mark.django_db
def test_a_rerun_economy_document_is_sent_in_a_new_batch_and_each_batch_is_paid_once(grace, claude):
    batch = _economy_batch(grace, 1)
    document = batch.documents.get()
    _process_all()
    pipeline.sweep()
    document.refresh_from_db()
    first_batch = document.provider_batch_id
    assert document.status == Document.Status.COMPLETED

    services.document_rerun(document=document)
    _process_all()
    pipeline.sweep()
    pipeline.sweep()  # a second look must not read either batch again

    document.refresh_from_db()
    assert document.status == Document.Status.COMPLETED
    assert claude.count("/v1/messages/batches", method="POST") == 2
    assert document.provider_batch_id not in ("", first_batch)
    paid = _batch_costs_of(claude, document)
    assert len(paid) == 2
    assert document.cost_usd == sum(paid)


@pytest.mark.django_db
def test_a_heartbeat_that_copied_the_token_before_the_deferral_keeps_the_days_lease(grace, claude):
    batch = _economy_batch(grace, 1)
    claim = pipeline.document_claim()
    assert pipeline.document_process(claim=claim) == "deferred"

    # The runner's heartbeat renews the tokens it copied while the document was in flight.
    pipeline.document_renew_leases(tokens=[claim.lease_token])

    document = batch.documents.get()
    assert document.lease_expires_at > timezone.now() + pipeline.ECONOMY_LEASE - timedelta(hours=1)


@pytest.mark.django_db
def test_a_batch_upload_ends_by_its_deadline_however_slowly_it_trickles(claude, settings):
    settings.SHEAF_ANTHROPIC_TIMEOUT_SECONDS = 1
    # Every write makes progress, so no single read or write ever times out.
    # Fast enough that no single write waits a second, so that only the deadline ends it;
    # unbounded, it would take six.
    claude.upload_bytes_per_second = 6_000_000
    params = {
        "model": "claude-haiku-4-5",
        "max_tokens": 16,
        "messages": [{"role": "user", "content": "x" * 36_000_000}],
    }
    started = time.monotonic()

    with pytest.raises(ExtractionError) as failed:
        claude_engine.AnthropicEngine().submit_batch([("one", params)])

    # Within the twice-the-timeout the economy lane's grace counts on (plus scheduling).
    assert time.monotonic() - started < 2 * settings.SHEAF_ANTHROPIC_TIMEOUT_SECONDS + 1.5
    assert failed.value.kind == ErrorKind.TRANSIENT  # whether it was made is not known here
    assert claude.batches == {}
    assert economy._submit_grace() >= timedelta(
        seconds=2 * settings.SHEAF_ANTHROPIC_TIMEOUT_SECONDS
    )


def _mixed_economy_batch(user, files: dict[str, bytes]) -> BatchProcess:
    return services.batch_create(
        user=user,
        files=[ContentFile(content, name=name) for name, content in files.items()],
        prompt="invoice number, total",
        fields=[
            {"name": "invoice number", "type": "string", "description": ""},
            {"name": "total", "type": "number", "description": ""},
        ],
        mode="economy",
    )


def _invoice_text(n: int, padding: int = 0) -> bytes:
    return f"Invoice number: INV-{n}\nTotal: {n}0.00 EUR\n{'.' * padding}\n".encode()


@pytest.mark.django_db
def test_a_scan_the_provider_cannot_take_fails_alone_and_the_others_are_sent(
    grace, claude, settings
):
    # The provider's page limit is the point, not OCR's: OCR of one of the blank scan's pages,
    # not of 30, before the limit refuses it (13 s less).
    settings.SHEAF_OCR_MAX_PAGES = 1
    batch = _mixed_economy_batch(
        grace,
        {
            "inv-1.txt": _invoice_text(1),
            "scan.pdf": blank_pdf(claude_engine.PDF_MAX_PAGES + 1),
            "inv-2.txt": _invoice_text(2),
        },
    )
    _process_all()

    pipeline.sweep()

    statuses = dict(batch.documents.values_list("original_filename", "status"))
    assert statuses == {"inv-1.txt": "completed", "scan.pdf": "failed", "inv-2.txt": "completed"}
    scan = batch.documents.get(original_filename="scan.pdf")
    assert scan.error_code == "too_large"
    assert f"at most {claude_engine.PDF_MAX_PAGES}" in scan.error_message
    assert scan.provider_batch_id == ""
    [sent] = claude.batches.values()
    assert len(sent["custom_ids"]) == 2
    assert not EconomySubmission.objects.exists()
    batch.refresh_from_db()
    assert batch.status == BatchProcess.Status.COMPLETED_WITH_ERRORS


@pytest.mark.django_db
def test_chunks_stay_under_the_providers_batch_size(grace, claude, monkeypatch):
    padding = 40_000
    batch = _mixed_economy_batch(
        grace, {f"inv-{n}.txt": _invoice_text(n, padding) for n in range(3)}
    )
    # Two documents' requests fit in a batch, three do not (the provider refuses it, 413).
    monkeypatch.setattr(economy, "ECONOMY_MAX_BYTES", int(2.5 * padding))
    claude.max_batch_bytes = int(2.5 * padding)
    _process_all()

    pipeline.sweep()
    pipeline.sweep()

    assert [len(b["custom_ids"]) for b in claude.batches.values()] == [2, 1]
    assert claude.count("/v1/messages/batches", method="POST", status=413) == 0
    assert set(batch.documents.values_list("status", flat=True)) == {"completed"}
    assert claude.count("/v1/messages") == 0


@pytest.mark.django_db
def test_a_request_too_large_for_any_batch_goes_to_the_standard_path(grace, claude, monkeypatch):
    batch = _mixed_economy_batch(
        grace, {"small.txt": _invoice_text(1), "large.txt": _invoice_text(2, 60_000)}
    )
    monkeypatch.setattr(economy, "ECONOMY_MAX_BYTES", 50_000)
    _process_all()

    pipeline.sweep()

    large = batch.documents.get(original_filename="large.txt")
    assert (large.status, large.provider_batch_id) == ("queued", pipeline.FALLBACK)
    assert "too large for a message batch" in large.error_message
    _process_all()
    assert set(batch.documents.values_list("status", flat=True)) == {"completed"}
    [sent] = claude.batches.values()
    assert sent["custom_ids"] == [batch.documents.get(original_filename="small.txt").pk.hex]
    assert claude.count("/v1/messages") == 1


@pytest.mark.django_db
def test_a_node_without_the_key_still_sweeps_and_processes_other_batches(grace, claude, settings):
    claude.batch_polls = 5  # the sent batch keeps running
    sent = _economy_batch(grace, 1)
    _process_all()
    pipeline.sweep()
    waiting = _economy_batch(grace, 1)
    _process_all()  # read and deferred, not sent yet
    requests_before = len(claude.requests)
    # A node of the cluster configured without the key, for its local-engine batches.
    settings.ANTHROPIC_API_KEY = ""
    settings.SHEAF_EXTRACTION_ENGINE = "local"
    local = _economy_batch(grace, 1)
    assert local.engine == "local"

    pipeline.sweep()
    _process_all()

    local.refresh_from_db()
    assert local.status == BatchProcess.Status.COMPLETED
    assert sent.documents.get().provider_batch_id in claude.batches
    assert waiting.documents.get().provider_batch_id == ""  # not marked: nothing to send it
    assert not EconomySubmission.objects.exists()
    assert len(claude.requests) == requests_before


@pytest.mark.django_db
def test_a_document_requeued_while_its_chunk_was_picked_is_not_marked(grace, claude, monkeypatch):
    batch = _economy_batch(grace, 2)
    _process_all()
    expired, kept = batch.documents.order_by("original_filename")
    intend = economy._intend
    marked_after_intend: list[str] = []

    def intend_after_a_requeue(**kwargs):
        # Another node's sweep requeues a document whose lease expired, just after this
        # sweep picked the chunk.
        Document.objects.filter(pk=expired.pk).update(
            status=Document.Status.QUEUED, lease_token=None, lease_expires_at=None
        )
        submission = intend(**kwargs)
        marked_after_intend.extend(
            Document.objects.filter(provider_batch_id__startswith=pipeline.SUBMITTING)
            .order_by("original_filename")
            .values_list("original_filename", flat=True)
        )
        return submission

    monkeypatch.setattr(economy, "_intend", intend_after_a_requeue)

    assert pipeline.economy_submit() == 1

    assert marked_after_intend == [kept.original_filename]
    [provider_batch] = claude.batches.values()
    assert provider_batch["custom_ids"] == [kept.pk.hex]
    expired.refresh_from_db()
    assert (expired.status, expired.provider_batch_id) == ("queued", "")


@pytest.mark.django_db
def test_a_recovery_that_read_a_submission_before_its_requests_were_stored_releases_nothing(
    grace, claude, monkeypatch
):
    batch = _economy_batch(grace, 2)
    _process_all()
    record_requests = economy._record_requests

    def slow_submitter(**kwargs):
        # Past PREPARE_GRACE, a recovery reads the row (no requests stored: presumed dead);
        # the submitter, only slow, stores its requests and sends before the recovery acts.
        stale = EconomySubmission.objects.get(pk=kwargs["submission"].pk)
        recorded = record_requests(**kwargs)
        assert economy._reconcile(stale) == 0
        return recorded

    monkeypatch.setattr(economy, "_record_requests", slow_submitter)

    assert pipeline.economy_submit() == 2

    [provider_batch] = claude.batches
    assert set(batch.documents.values_list("provider_batch_id", flat=True)) == {provider_batch}
    later = timezone.now() + timedelta(hours=1)
    for _ in range(2):
        pipeline.sweep(now=later)
    assert claude.count("/v1/messages/batches", method="POST") == 1
    assert set(batch.documents.values_list("status", flat=True)) == {"completed"}


@pytest.mark.django_db
@pytest.mark.parametrize("status", [400, 413])
def test_a_submission_the_provider_refuses_goes_to_the_standard_path(grace, claude, status):
    batch = _economy_batch(grace, 2)
    _process_all()
    claude.script(status=status, path="/v1/messages/batches", method="POST")

    pipeline.sweep()

    for document in batch.documents.all():
        assert (document.status, document.provider_batch_id) == ("queued", pipeline.FALLBACK)
        assert "the batch was refused" in document.error_message
    assert not EconomySubmission.objects.exists()
    later = timezone.now() + timedelta(hours=1)
    pipeline.sweep(now=later)
    _process_all()

    assert claude.count("/v1/messages/batches", method="POST") == 1  # never sent again
    assert claude.count("/v1/messages") == 2
    assert set(batch.documents.values_list("status", "attempts")) == {("completed", 1)}


@pytest.mark.django_db
def test_a_server_error_at_submission_is_not_taken_for_a_refusal(grace, claude):
    batch = _economy_batch(grace, 2)
    _process_all()
    # Whatever it says, a 5xx does not show that no batch was made.
    claude.script(
        status=500, path="/v1/messages/batches", method="POST", headers={"x-should-retry": "false"}
    )

    pipeline.sweep()

    assert all(d.provider_batch_id.startswith(pipeline.SUBMITTING) for d in batch.documents.all())
    later = timezone.now() + timedelta(hours=1)
    pipeline.sweep(now=later)  # reconciled: nothing was made, so it is sent again
    pipeline.sweep(now=later)
    assert claude.count("/v1/messages/batches", method="POST") == 2
    assert set(batch.documents.values_list("status", flat=True)) == {"completed"}
    assert claude.count("/v1/messages") == 0


@pytest.mark.django_db
def test_a_batch_whose_results_are_gone_sends_its_documents_to_the_standard_path(grace, claude):
    claude.batch_polls = 1  # still running at the first look
    batch = _economy_batch(grace, 2)
    _process_all()
    pipeline.sweep()
    [provider_batch] = claude.batches
    # Archived meanwhile: the provider no longer knows it.
    claude.script(status=404, path=f"/v1/messages/batches/{provider_batch}*", method="GET")

    pipeline.sweep()

    for document in batch.documents.all():
        assert (document.status, document.provider_batch_id) == ("queued", pipeline.FALLBACK)
        assert "its batch cannot be read" in document.error_message
    _process_all()
    assert set(batch.documents.values_list("status", flat=True)) == {"completed"}
    assert claude.count("/v1/messages") == 2


@pytest.mark.django_db
def test_an_economy_document_whose_lease_ran_out_goes_to_the_standard_path(grace, claude):
    claude.batch_polls = 1000  # the provider's batch never answers
    batch = _economy_batch(grace, 1)
    _process_all()
    pipeline.sweep()
    document = batch.documents.get()
    assert document.provider_batch_id in claude.batches

    expired = document.lease_expires_at + timedelta(seconds=1)
    pipeline.sweep(now=expired)
    claim = pipeline.document_claim(now=expired)
    assert claim is not None
    pipeline.document_process(claim=claim)

    document.refresh_from_db()
    assert document.status == Document.Status.COMPLETED
    assert document.provider_batch_id == pipeline.FALLBACK
    assert document.attempts == 1  # the economy round spent none
    assert claude.count("/v1/messages") == 1


@pytest.mark.django_db(transaction=True)
def test_a_running_batch_made_after_a_submission_could_have_been_sent_does_not_hold_it(
    grace, claude
):
    claude.batch_polls = 1000
    batch = _economy_batch(grace, 2)
    _process_all()
    _submit_in_a_worker_that_dies(claude, "recorded")  # requests stored, nothing sent
    # Hours ago, as far as the submission knows; now someone else's batch of two requests
    # is running on the account.
    EconomySubmission.objects.update(
        created_at=timezone.now() - timedelta(hours=3),
        reconcile_after=timezone.now() - timedelta(hours=2),
    )
    unrelated = claude_engine.AnthropicEngine().submit_batch(
        [(f"other{n}", _tiny_params()) for n in range(2)]
    )

    pipeline.sweep()

    [ours] = set(claude.batches) - {unrelated}
    wanted = sorted(d.pk.hex for d in batch.documents.all())
    assert sorted(claude.batches[ours]["custom_ids"]) == wanted
    assert set(batch.documents.values_list("provider_batch_id", flat=True)) == {ours}


def _tiny_params() -> dict[str, object]:
    return {
        "model": "claude-haiku-4-5",
        "max_tokens": 16,
        "messages": [{"role": "user", "content": "Hello"}],
    }
