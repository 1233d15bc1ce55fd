"""Scheduled batches (issue 18, part 5): `start_at` on the service, the API, the form and the
CLI. A batch told to start later stays queued, none of its documents is due (claims, /healthz,
the admin's "stalled" pass it over) until then, its quota and plan are taken at submission, and
it can be canceled before anything of it runs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError
from django.utils import timezone

from accounts.plans import PlanKey
from accounts.selectors import user_usage
from batches import pipeline
from batches.health import batch_health_problems, batches_with_health, queue_state
from batches.models import BatchProcess, Run
from batches.services import batch_create, batch_create_once
from batchsite.errors import Rejected
from documents.models import Document
from tests.batches.test_api import bearer_for, upload
from tests.batches.test_cli import batch
from tests.batches.test_upload import page_text, post_upload
from tests.support.documents import invoice_upload, report_upload

PROMPT = "invoice number, date and total"
BERLIN = ZoneInfo("Europe/Berlin")

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def offline(settings):
    settings.SHEAF_EXTRACTION_ENGINE = "auto"
    settings.ANTHROPIC_API_KEY = ""


def hours_ahead(hours: float) -> datetime:
    """A whole second `hours` from now, in Berlin time (any zone but UTC shows the offset is
    read)."""
    return (timezone.now() + timedelta(hours=hours)).replace(microsecond=0).astimezone(BERLIN)


def create(user, start_at, **submission) -> BatchProcess:
    return batch_create(
        user=user,
        files=[invoice_upload(), report_upload()],
        prompt=PROMPT,
        start_at=start_at,
        **submission,
    )


def refusal(user, start_at) -> str:
    with pytest.raises(Rejected) as caught:
        create(user, start_at)
    assert caught.value.code == "invalid_start_at"
    return str(caught.value)


@pytest.fixture
def scheduled(alice) -> BatchProcess:
    """Alice's two invoices, told to start tomorrow at this time."""
    return create(alice, hours_ahead(24).isoformat())


# --- The service's rules -------------------------------------------------------------------------


def test_a_batch_told_to_start_later_waits_queued_with_its_documents_due_then(alice):
    start = hours_ahead(3)

    created = create(alice, start.isoformat())

    created.refresh_from_db()
    assert created.start_at == start  # the same moment, kept in UTC
    assert created.start_at.utcoffset() == timedelta(0)
    assert created.status == "queued"
    assert created.waits_for_start
    assert set(created.documents.values_list("status", "next_attempt_at")) == {("queued", start)}


def test_a_time_without_a_zone_is_refused_and_nothing_is_stored(alice, media_files):
    naive = hours_ahead(3).replace(tzinfo=None).isoformat()

    message = refusal(alice, naive)

    assert f"start_at “{naive}” has no time zone" in message
    assert "2026-12-24T09:00:00+01:00" in message  # says how to write one
    assert BatchProcess.objects.count() == 0
    assert media_files() == []


def test_a_naive_datetime_from_python_is_refused_alike(alice):
    assert "has no time zone" in refusal(alice, datetime(2030, 1, 1, 9, 0))


def test_a_time_that_does_not_parse_says_so(alice):
    message = refusal(alice, "next tuesday at nine")

    assert "start_at “next tuesday at nine” is not an ISO 8601 date and time" in message


def test_a_past_time_means_now(alice):
    past = hours_ahead(-2).isoformat()

    created = create(alice, past)

    assert created.start_at is None
    assert not created.waits_for_start
    assert pipeline.document_claim() is not None  # due at once


def test_at_most_90_days_ahead(alice):
    message = refusal(alice, hours_ahead(24 * 90 + 1).isoformat())

    assert "is more than 90 days ahead; the latest start is" in message
    assert BatchProcess.objects.count() == 0
    assert create(alice, hours_ahead(24 * 90 - 1).isoformat()).waits_for_start


def test_every_problem_of_a_submission_is_said_at_once(alice):
    with pytest.raises(Rejected) as caught:
        create(alice, "2030-01-01T09:00", mode="turbo")

    assert {problem.code for problem in caught.value.problems} == {"invalid", "invalid_start_at"}


def test_quota_submission_and_plan_are_taken_at_submission(alice, settings):
    settings.SHEAF_PLAN_LIMITS = {"plus": {"documents_per_month": 3}}
    created = create(alice, hours_ahead(24).isoformat())

    usage = user_usage(alice)
    assert (usage.documents_this_month, usage.submissions_last_hour) == (2, 1)
    with pytest.raises(Rejected) as caught:  # the month has one document left, not two
        create(alice, hours_ahead(48).isoformat())
    assert caught.value.code == "quota_exceeded"

    alice.plan_override = PlanKey.FREE
    alice.save()
    claim = pipeline.document_claim(now=created.start_at + timedelta(seconds=1))
    claimed = BatchProcess.objects.get(pk=claim.batch_id)
    assert (claimed.pk, claimed.plan, claimed.priority) == (created.pk, "plus", created.priority)


def test_the_same_idempotency_key_with_another_start_is_another_request(alice):
    def send(start_at: str) -> tuple[BatchProcess, bool]:
        return batch_create_once(
            user=alice,
            idempotency_key="k1",
            files=[invoice_upload()],
            prompt=PROMPT,
            start_at=start_at,
        )

    tomorrow = hours_ahead(24).isoformat()
    first, _ = send(tomorrow)
    assert send(tomorrow) == (first, False)  # a retry gets the first batch

    with pytest.raises(Rejected) as caught:
        send(hours_ahead(48).isoformat())

    assert caught.value.code == "idempotency_mismatch"
    assert BatchProcess.objects.count() == 1


# --- Not due until it starts ---------------------------------------------------------------------


def test_it_is_not_claimed_before_its_start_and_is_after(scheduled):
    assert pipeline.document_claim() is None
    assert pipeline.document_claim(now=scheduled.start_at - timedelta(seconds=1)) is None
    scheduled.refresh_from_db()
    assert scheduled.status == "queued"

    claim = pipeline.document_claim(now=scheduled.start_at + timedelta(seconds=1))

    assert claim is not None and claim.batch_id == scheduled.pk
    scheduled.refresh_from_db()
    assert scheduled.status == "processing"
    assert not scheduled.waits_for_start


def test_a_runner_does_not_sit_waiting_for_a_batch_that_starts_tomorrow(scheduled):
    """`batch process` would otherwise wait a day; the schedule's drain takes it then."""
    assert pipeline.seconds_until_next_due() is None
    assert pipeline.seconds_until_next_due(batch_id=scheduled.pk) is None


def test_healthz_counts_it_as_scheduled_not_late(client, alice, settings):
    settings.SHEAF_HEALTH_MAX_QUEUE_AGE = 300
    # Submitted three days ago to start tomorrow: neither late nor due.
    created = create(alice, hours_ahead(24).isoformat())
    created.documents.update(created_at=timezone.now() - timedelta(days=3))

    response = client.get("/healthz")

    assert response.status_code == 200
    queue = response.json()["queue"]
    assert queue["status"] == "ok"
    assert (queue["depth"], queue["due"], queue["scheduled"]) == (2, 0, 2)
    assert queue["oldest_due_seconds"] is None
    assert queue_state().oldest_queued_seconds is None


def test_the_admin_health_does_not_call_it_stalled(alice, settings):
    settings.SHEAF_HEALTH_MAX_QUEUE_AGE = 300
    created = create(alice, hours_ahead(24).isoformat())
    created.documents.update(created_at=timezone.now() - timedelta(days=3))

    health = batches_with_health(BatchProcess.objects.filter(pk=created.pk)).get()

    assert batch_health_problems(health) == []
    assert health.oldest_due_at is None
    assert health.computed_status == "queued"


def test_once_started_its_documents_count_as_due_again(alice, settings):
    settings.SHEAF_HEALTH_MAX_QUEUE_AGE = 300
    created = create(alice, hours_ahead(1).isoformat())

    later = queue_state(now=created.start_at + timedelta(minutes=10))

    assert (later.due, later.scheduled) == (2, 0)
    assert later.oldest_due_seconds == 600.0


# --- Cancel and runs before it starts ------------------------------------------------------------


def test_cancel_before_it_starts_gives_the_quota_back_and_nothing_ever_runs(alice, scheduled):
    api = bearer_for(alice)

    response = api.post(f"/api/v1/batches/{scheduled.pk}/cancel/")

    assert response.status_code == 200
    assert response.json()["status"] == "canceled"
    assert response.json()["counts"]["canceled"] == 2
    assert user_usage(alice).documents_this_month == 0
    assert pipeline.document_claim(now=scheduled.start_at + timedelta(days=1)) is None
    assert set(scheduled.documents.values_list("status", "attempts")) == {("canceled", 0)}


def test_a_run_cannot_start_on_a_batch_that_waits_for_its_start(alice, scheduled):
    api = bearer_for(alice)

    response = api.post(
        f"/api/v1/batches/{scheduled.pk}/runs/",
        {"prompt": "invoice number"},
        content_type="application/json",
    )

    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "conflict"
    when = f"{scheduled.start_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    assert body["detail"] == (
        f"Batch “{scheduled.name}” has not started yet: it is scheduled for {when}. Start a run "
        "once it has finished, or cancel it and upload it again with the prompt and fields you "
        "want now."
    )
    assert list(Run.objects.filter(batch=scheduled).values_list("number", flat=True)) == [1]


# --- The API -------------------------------------------------------------------------------------


def test_the_api_takes_start_at_and_shows_it(alice):
    api = bearer_for(alice)
    start = hours_ahead(5)

    response = upload(api, [invoice_upload()], start_at=start.isoformat())

    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "queued"
    assert datetime.fromisoformat(body["start_at"]) == start
    assert body["eta_seconds"] is None
    listed = api.get("/api/v1/batches/").json()["results"][0]
    assert datetime.fromisoformat(listed["start_at"]) == start
    assert upload(api, [invoice_upload()]).json()["start_at"] is None


@pytest.mark.parametrize(
    ("start_at", "message"),
    [
        ("2030-01-01T09:00", "has no time zone"),
        ("tomorrow", "is not an ISO 8601 date and time"),
        ("2099-01-01T09:00:00Z", "is more than 90 days ahead"),
        ("", "start_at is empty: leave it out to start at once"),
    ],
)
def test_the_api_refuses_a_bad_start_at_with_400(alice, media_files, start_at, message):
    response = upload(bearer_for(alice), [invoice_upload()], start_at=start_at)

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_start_at"
    assert message in body["detail"]
    assert "problems" not in body  # listed only when there are several
    assert BatchProcess.objects.count() == 0
    assert media_files() == []


# --- The upload form and the pages ---------------------------------------------------------------


def test_the_form_reads_the_time_in_the_zone_sent_with_it(alice_client, alice):
    start = hours_ahead(30)
    local = start.strftime("%Y-%m-%dT%H:%M")  # what a datetime-local input sends

    response = post_upload(
        alice_client, [invoice_upload()], start_at=local, start_at_zone="Europe/Berlin"
    )

    created = BatchProcess.objects.get()
    assert response.status_code == 302
    assert created.start_at == start.replace(second=0)
    page = page_text(alice_client.get(f"/dashboard/batches/{created.pk}/"))
    when = f"{created.start_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    assert f"Batch “invoice” is queued to start at {when}." in page
    assert f"Start at {when} (1 day, 5 hours from now)" in page
    assert f"Scheduled: starts 1 day, 5 hours from now ({when}); nothing is processed" in page
    listing = page_text(alice_client.get("/dashboard/"))
    assert "Queued starts 1 day, 5 hours from now" in listing


def test_the_form_without_a_chosen_zone_reads_utc(alice_client):
    """The page preselects UTC; start-at.js replaces it with the browser's zone."""
    page = alice_client.get("/dashboard/batch-upload/").content.decode()
    assert '<option value="UTC" selected>' in page
    assert "data-browser-zone" in page
    start = hours_ahead(30).astimezone(UTC)

    post_upload(
        alice_client,
        [invoice_upload()],
        start_at=start.strftime("%Y-%m-%dT%H:%M"),
        start_at_zone="UTC",
    )

    assert BatchProcess.objects.get().start_at == start.replace(second=0)


def test_the_form_says_what_is_wrong_with_the_start(alice_client, media_files):
    too_far = hours_ahead(24 * 91).strftime("%Y-%m-%dT%H:%M")

    response = post_upload(
        alice_client, [invoice_upload()], start_at=too_far, start_at_zone="Europe/Berlin"
    )

    assert response.status_code == 400
    text = page_text(response)
    assert "Start at : start_at “" in text  # in the summary at the top, linked to the field
    assert "is more than 90 days ahead" in text
    assert f'value="{too_far}"' in response.content.decode()  # kept to correct
    assert 'value="Europe/Berlin" selected' in response.content.decode()
    assert BatchProcess.objects.count() == 0
    assert media_files() == []


def test_the_form_without_a_start_starts_at_once(alice_client):
    post_upload(alice_client, [invoice_upload()], start_at="", start_at_zone="UTC")

    assert BatchProcess.objects.get().start_at is None


# --- The CLI -------------------------------------------------------------------------------------


def test_cli_create_takes_start_at_and_monitor_shows_it(alice, tmp_path):
    path = tmp_path / "invoice.pdf"
    path.write_bytes(invoice_upload().read())
    start = hours_ahead(6)
    when = f"{start.astimezone(UTC):%Y-%m-%d %H:%M} UTC"

    output = batch(
        "create", "--user", alice.email, "--prompt", PROMPT, "--start-at", start.isoformat(),
        str(path),
    )  # fmt: skip

    created = BatchProcess.objects.get(pk=uuid.UUID(output.stdout.strip()))
    assert created.start_at == start
    assert f"engine local; starts {when}." in output.stderr
    assert f"queued (starts {when})" in batch("monitor", "--once").stdout
    assert Document.objects.get().next_attempt_at == start


def test_cli_create_refuses_a_start_without_a_zone(alice, tmp_path):
    path = tmp_path / "invoice.pdf"
    path.write_bytes(invoice_upload().read())

    with pytest.raises(CommandError) as caught:
        batch(
            "create", "--user", alice.email, "--prompt", PROMPT, "--start-at", "2030-01-01T09:00",
            str(path),
        )  # fmt: skip

    assert "invalid_start_at: start_at “2030-01-01T09:00” has no time zone" in str(caught.value)
    assert BatchProcess.objects.count() == 0
