"""The owner's email when a batch finishes: once per finish, from the outbox, opt-out honoured."""

from __future__ import annotations

import smtplib
from datetime import timedelta

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.utils import timezone

from batches import pipeline, services
from batches.models import BatchProcess
from notifications.models import Event
from notifications.services import DISPATCH_CLAIM, event_dispatch, notifications_sweep
from tests.notifications.conftest import (
    NOTIFYING,
    add_documents,
    discard_queued_notifications,
    run_documents,
    run_queued_notifications,
)

pytestmark = pytest.mark.django_db


def test_a_completed_batch_emails_its_owner_once_with_counts_and_a_link(
    alice, finished_batch, settings
):
    settings.SITE_URL = "https://sheaf.example.com"
    batch = finished_batch(alice, ["ok", "ok"], name="March invoices")

    run_queued_notifications()

    assert batch.status == BatchProcess.Status.COMPLETED
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["alice@example.com"]
    assert message.subject == "[Sheaf] Batch “March invoices” completed"
    assert "Documents: 2\nCompleted: 2\nFailed: 0" in message.body
    assert f"https://sheaf.example.com/dashboard/batches/{batch.pk}/" in message.body
    event = Event.objects.get(batch=batch, kind__in=NOTIFYING)
    assert event.kind == "batch.completed"
    assert event.emailed_at is not None and event.dispatched_at is not None


def test_completed_with_errors_is_batch_completed_and_the_counts_show_the_failures(
    alice, finished_batch
):
    batch = finished_batch(alice, ["ok", "fail", "ok"], name="Q1")

    run_queued_notifications()

    assert batch.status == BatchProcess.Status.COMPLETED_WITH_ERRORS
    event = Event.objects.get(batch=batch, kind="batch.completed")
    assert event.payload["data"]["batch"]["status"] == "completed_with_errors"
    assert event.payload["data"]["batch"]["counts"] == {
        "total": 3,
        "completed": 2,
        "failed": 1,
        "canceled": 0,
    }
    [message] = mail.outbox
    assert message.subject == "[Sheaf] Batch “Q1” completed with errors (1 of 3 failed)"
    assert "Completed: 2\nFailed: 1" in message.body
    assert "retry the failed documents" in message.body


def test_a_failed_batch_sends_batch_failed(alice, finished_batch):
    batch = finished_batch(alice, ["fail"], name="Scans")

    run_queued_notifications()

    assert batch.status == BatchProcess.Status.FAILED
    assert set(
        Event.objects.filter(batch=batch, kind__in=NOTIFYING).values_list("kind", flat=True)
    ) == {
        "batch.failed",
        "document.failed",
    }
    [message] = mail.outbox
    assert message.subject == "[Sheaf] Batch “Scans” failed"


def test_finishing_and_dispatching_twice_sends_one_email(alice, django_capture_on_commit_callbacks):
    from tests.factories import BatchFactory

    batch = BatchFactory(user=alice)
    add_documents(batch, 1)
    with django_capture_on_commit_callbacks(execute=True):
        run_documents(["ok"])
        pipeline.batch_refresh(batch_id=batch.pk)  # a second finisher
        pipeline.sweep()  # and the sweep's look at stuck batches
    event = Event.objects.get(batch=batch, kind__in=NOTIFYING)

    run_queued_notifications()
    assert event_dispatch(event_id=event.pk) is False
    notifications_sweep(now=timezone.now() + timedelta(hours=1))

    assert Event.objects.filter(batch=batch, kind__in=NOTIFYING).count() == 1
    assert len(mail.outbox) == 1


def test_a_worker_lost_after_commit_loses_nothing_the_sweep_sends_it(alice, finished_batch):
    batch = finished_batch(alice, ["ok"])
    assert discard_queued_notifications() == 1  # the dispatch task never ran
    assert mail.outbox == []

    assert notifications_sweep() == {"events": 1, "deliveries": 0, "forgotten": 0}
    notifications_sweep()

    assert len(mail.outbox) == 1
    assert Event.objects.get(batch=batch, kind__in=NOTIFYING).dispatched_at is not None


def test_a_dispatcher_holding_the_event_keeps_others_out_until_its_claim_runs_out(
    alice, finished_batch
):
    batch = finished_batch(alice, ["ok"])
    discard_queued_notifications()
    event = Event.objects.get(batch=batch, kind__in=NOTIFYING)
    now = timezone.now()
    Event.objects.filter(pk=event.pk).update(claimed_until=now + timedelta(minutes=5))

    assert event_dispatch(event_id=event.pk, now=now) is False
    assert notifications_sweep(now=now) == {"events": 0, "deliveries": 0, "forgotten": 0}
    assert mail.outbox == []
    assert notifications_sweep(now=now + timedelta(minutes=6))["events"] == 1
    assert len(mail.outbox) == 1


def test_an_email_server_that_is_down_is_tried_again_by_the_sweep(alice, finished_batch, settings):
    batch = finished_batch(alice, ["ok"])
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 1  # nothing listens there

    with pytest.raises(OSError):
        run_queued_notifications()
    assert Event.objects.get(batch=batch, kind__in=NOTIFYING).dispatched_at is None

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    notifications_sweep(now=timezone.now() + DISPATCH_CLAIM + timedelta(seconds=1))
    assert len(mail.outbox) == 1


class RefusingBackend(BaseEmailBackend):
    """A mail server that refuses the recipient (a mailbox that no longer exists)."""

    def send_messages(self, messages):
        raise smtplib.SMTPRecipientsRefused({m.to[0]: (550, b"no such user") for m in messages})


def test_a_refused_recipient_is_final_and_does_not_hold_the_event(alice, finished_batch, settings):
    batch = finished_batch(alice, ["ok"])
    settings.EMAIL_BACKEND = "tests.notifications.test_email.RefusingBackend"

    run_queued_notifications()

    event = Event.objects.get(batch=batch, kind__in=NOTIFYING)
    assert event.dispatched_at is not None
    assert notifications_sweep(now=timezone.now() + DISPATCH_CLAIM * 2)["events"] == 0


def test_a_retry_reopens_the_batch_and_its_new_finish_notifies_again(
    alice, finished_batch, django_capture_on_commit_callbacks
):
    batch = finished_batch(alice, ["ok", "fail"], name="Retry me")
    run_queued_notifications()

    with django_capture_on_commit_callbacks(execute=True):
        # A retry of a permanent failure, as staff may force from the admin.
        services.batch_retry_failed(batch=batch, include_permanent=True)
        run_documents(["ok"])
    run_queued_notifications()

    batch.refresh_from_db()
    assert batch.status == BatchProcess.Status.COMPLETED
    assert batch.finish_seq == 2
    keys = sorted(
        Event.objects.filter(batch=batch, kind="batch.completed").values_list("key", flat=True)
    )
    assert keys == [f"batch:{batch.pk}:finish:1", f"batch:{batch.pk}:finish:2"]
    assert [m.subject for m in mail.outbox] == [
        "[Sheaf] Batch “Retry me” completed with errors (1 of 2 failed)",
        "[Sheaf] Batch “Retry me” completed",
    ]


def test_a_canceled_batch_sends_nothing(alice, django_capture_on_commit_callbacks):
    from tests.factories import BatchFactory

    batch = BatchFactory(user=alice)
    add_documents(batch, 2)
    with django_capture_on_commit_callbacks(execute=True):
        services.batch_cancel(batch=batch)
    run_queued_notifications()

    batch.refresh_from_db()
    assert batch.status == BatchProcess.Status.CANCELED
    assert not Event.objects.filter(batch=batch, kind__in=NOTIFYING).exists()
    assert mail.outbox == []


def test_an_owner_who_turned_emails_off_gets_none(alice, finished_batch):
    alice.notify_batch_email = False
    alice.save()
    batch = finished_batch(alice, ["ok"])

    run_queued_notifications()

    event = Event.objects.get(batch=batch, kind__in=NOTIFYING)
    assert event.dispatched_at is not None and event.emailed_at is None
    assert mail.outbox == []


def test_the_settings_page_turns_batch_emails_off_and_on(alice, alice_client):
    page = alice_client.get("/settings/").content.decode()
    assert 'name="notify_batch_email" checked' in page

    response = alice_client.post("/settings/notifications/", {})
    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.notify_batch_email is False
    page = alice_client.get("/settings/").content.decode()
    assert 'name="notify_batch_email" checked' not in page
    assert "No more emails when batches finish." in page

    alice_client.post("/settings/notifications/", {"notify_batch_email": "on"})
    alice.refresh_from_db()
    assert alice.notify_batch_email is True


def test_the_notification_setting_needs_a_login_and_a_post(client, alice_client):
    anonymous = client.post("/settings/notifications/", {"notify_batch_email": "on"})
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/accounts/login/")
    assert alice_client.get("/settings/notifications/").status_code == 405
