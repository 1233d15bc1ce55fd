"""Notifications when batches finish: a transactional outbox, owner emails, outgoing webhooks.

The outbox functions (`outbox_batch_finished`, `outbox_documents_failed`) are called inside the
transaction that changes the state, so an event exists exactly when the change committed; the
event's unique key makes a second write of the same finish impossible. After commit a task
dispatches the event (email, one delivery row per subscribed endpoint), and a schedule sweeps up
any event or delivery a crashed worker left behind. Dispatch and delivery claim their row with a
conditional UPDATE, so running either twice sends nothing twice.
"""

from __future__ import annotations

import json
import logging
import secrets
import smtplib
import time
import uuid
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from accounts.selectors import user_effective_plan
from batches.models import BatchProcess
from batchsite.errors import Rejected
from batchsite.metrics import observe_event_delivery
from documents.models import Document
from notifications import egress, live
from notifications.models import (
    DEFAULT_WEBHOOK_EVENTS,
    SUBSCRIBABLE_EVENTS,
    Event,
    EventKind,
    WebhookDelivery,
    WebhookEndpoint,
)
from notifications.selectors import (
    webhook_delivery_get_for_user,
    webhook_endpoint_get_for_user,
)
from notifications.signing import signature_header

logger = logging.getLogger(__name__)

EMAIL_KINDS = (EventKind.BATCH_COMPLETED, EventKind.BATCH_FAILED, EventKind.BATCH_PAUSED)
# A dispatcher that died holding an event lets it go after this; the sweep then retries it.
# Longer than a django-q2 task may run (its timeout), so a live dispatcher is never overtaken.
DISPATCH_CLAIM = timedelta(minutes=10)
# One delivery attempt (DNS, connect, a slow answer) ends long before this.
DELIVERY_LEASE = timedelta(minutes=3)
MAX_DELIVERY_ATTEMPTS = 6
RETRY_BASE_SECONDS = 30
RETRY_MAX_SECONDS = 3600
MAX_ENDPOINTS = 10
SWEEP_EVENTS = 100
SWEEP_DELIVERIES = 500


def batch_url(batch_id: uuid.UUID | str) -> str:
    return settings.SITE_URL + reverse("batch_detail", kwargs={"batch_id": batch_id})


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# --- Outbox --------------------------------------------------------------------------------------


def outbox_batch_finished(*, batch_id: uuid.UUID) -> Event | None:
    """Record that a batch has just finished; call it in the transaction that finished it.

    `completed` and `completed_with_errors` are `batch.completed` (the counts show the failures),
    `failed` is `batch.failed`; a canceled batch, or a try on one document (the upload page shows
    its values), notifies nobody. The event's key is the batch's
    finish number, so the same finish cannot be recorded twice.
    """
    batch = (
        BatchProcess.objects.filter(pk=batch_id, is_trial=False)
        .select_related("current_run")
        .first()
    )
    if batch is None or batch.status not in (
        BatchProcess.Status.COMPLETED,
        BatchProcess.Status.COMPLETED_WITH_ERRORS,
        BatchProcess.Status.FAILED,
    ):
        return None
    kind = (
        EventKind.BATCH_FAILED
        if batch.status == BatchProcess.Status.FAILED
        else EventKind.BATCH_COMPLETED
    )
    by_status = dict(
        Document.objects.filter(batch_id=batch_id)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    counts = {
        "total": sum(by_status.values()),
        **{s: by_status.get(s, 0) for s in ("completed", "failed", "canceled")},
    }
    logger.info("batch %s finished (%s, finish %d)", batch.pk, batch.status, batch.finish_seq)
    return _record_batch(
        batch,
        kind=kind,
        key=f"finish:{batch.finish_seq}",
        finish=batch.finish_seq,
        # The run whose values the batch now serves (a re-run finishes the batch again).
        run=batch.current_run.number if batch.current_run else None,
        counts=counts,
        created_at=_iso(batch.created_at),
        completed_at=_iso(batch.completed_at),
    )


def outbox_batch_paused(*, batch_id: uuid.UUID) -> Event | None:
    """Record that a batch's budget has just paused it; call it in the transaction that paused
    it. The pause's time is in the key, so one pause is recorded once."""
    batch = BatchProcess.objects.filter(
        pk=batch_id, is_trial=False, budget_paused_at__isnull=False
    ).first()
    if batch is None or batch.budget_paused_at is None:
        return None
    return _record_batch(
        batch,
        kind=EventKind.BATCH_PAUSED,
        key=f"paused:{batch.budget_paused_at.isoformat()}",
        paused_reason=batch.paused_reason,
        budget_usd=str(batch.budget_usd) if batch.budget_usd is not None else None,
        paused_at=_iso(batch.budget_paused_at),
    )


def outbox_documents_failed(*, document_ids: list[uuid.UUID], failed_at: datetime) -> int:
    """Record `document.failed` for those of `document_ids` that failed for good at `failed_at`;
    call it in the transaction that failed them. Returns how many events were recorded."""
    documents = Document.objects.filter(
        pk__in=document_ids,
        status=Document.Status.FAILED,
        completed_at=failed_at,
        batch__is_trial=False,
    ).select_related("batch")
    recorded = 0
    for document in documents:
        data = {
            "document": {
                "id": str(document.pk),
                "filename": document.original_filename,
                "status": document.status,
                "attempts": document.attempts,
                "error": document.error,
                "failed_at": _iso(document.completed_at),
            },
            "batch": {
                "id": str(document.batch_id),
                "name": document.batch.name,
                "url": batch_url(document.batch_id),
            },
        }
        event = _record(
            kind=EventKind.DOCUMENT_FAILED,
            key=f"document:{document.pk}:failed:{failed_at.isoformat()}",
            user_id=document.user_id,
            batch_id=document.batch_id,
            document_id=document.pk,
            data=data,
        )
        recorded += event is not None
    return recorded


def outbox_batch_started(*, batch_id: uuid.UUID, run: int | None = None) -> Event | None:
    """Record that a batch (or a re-run of it, `run`) started; call it in the transaction that
    moved it to processing."""
    batch = BatchProcess.objects.filter(pk=batch_id, is_trial=False).first()
    if batch is None:
        return None
    run = run or 1
    return _record_batch(
        batch,
        kind=EventKind.BATCH_STARTED,
        key=f"started:{run}",
        run=run,
        total=batch.total_documents,
        started_at=_iso(batch.started_at),
    )


def outbox_batch_progress(*, batch_id: uuid.UUID, counts: dict[str, int]) -> Event | None:
    """Record a running batch's progress (`counts` of its documents: total, open, completed,
    failed); called where its counters are refreshed, at most once a second."""
    batch = BatchProcess.objects.filter(pk=batch_id, is_trial=False).first()
    if batch is None:
        return None
    from batches.selectors import batch_costs, batch_progress

    progress = batch_progress(batch=batch)
    return _record_batch(
        batch,
        kind=EventKind.BATCH_PROGRESS,
        key=f"progress:{timezone.now().isoformat()}",
        counts={
            "total": counts["total"],
            "queued": progress.queued,
            "processing": progress.processing,
            "completed": counts["completed"],
            "failed": counts["failed"],
        },
        percent=progress.percent,
        eta_seconds=progress.eta_seconds,
        cost_usd=str(batch_costs(batch=batch).actual_usd),
    )


def outbox_document_completed(
    *, document: Document, statuses: dict[str, int], completed_at: datetime
) -> Event | None:
    """Record that a document was extracted, with its values' count per status; call it in the
    transaction that stored the result."""
    data = {
        "document": {
            "id": str(document.pk),
            "filename": document.original_filename,
            "status": Document.Status.COMPLETED,
            "values": statuses,
            "completed_at": _iso(completed_at),
        },
        "batch": {"id": str(document.batch_id)},
    }
    return _record(
        kind=EventKind.DOCUMENT_COMPLETED,
        key=f"document:{document.pk}:completed:{completed_at.isoformat()}",
        user_id=document.user_id,
        batch_id=document.batch_id,
        document_id=document.pk,
        data=data,
    )


def outbox_batch_state(*, batch_id: uuid.UUID, kind: str, reason: str = "") -> Event | None:
    """Record `batch.canceled` or `batch.resumed` (with why it had paused: `reason`); call it in
    the transaction that changed the batch."""
    batch = BatchProcess.objects.filter(pk=batch_id, is_trial=False).first()
    if batch is None:
        return None
    extra = {"resumed_from": reason} if kind == EventKind.BATCH_RESUMED else {}
    now = timezone.now()
    return _record_batch(
        batch, kind=kind, key=f"{kind.removeprefix('batch.')}:{now.isoformat()}", **extra
    )


def _record_batch(batch: BatchProcess, *, kind: str, key: str, **fields: Any) -> Event | None:
    """An event about `batch`: `data.batch` is its id, name, status and page's url with
    `fields`; its key `batch:<id>:<key>`."""
    data = {
        "batch": {
            "id": str(batch.pk),
            "name": batch.name,
            "status": batch.status,
            **fields,
            "url": batch_url(batch.pk),
        }
    }
    return _record(
        kind=kind,
        key=f"batch:{batch.pk}:{key}",
        user_id=batch.user_id,
        batch_id=batch.pk,
        document_id=None,
        data=data,
    )


def _record(
    *,
    kind: str,
    key: str,
    user_id: int,
    batch_id: uuid.UUID,
    document_id: uuid.UUID | None,
    data: dict[str, Any],
) -> Event | None:
    """One event, in the caller's transaction. Dispatched after commit (email, webhooks) only
    when something is to be sent; the rest (progress, completions nobody subscribed to) are
    there for live clients, marked dispatched at once."""
    now = timezone.now()
    payload = {"type": kind, "created_at": now.isoformat(), "data": data}
    sent = kind in EMAIL_KINDS or kind in DEFAULT_WEBHOOK_EVENTS or _subscribed(user_id, kind)
    try:
        with transaction.atomic():  # a savepoint: a duplicate must not spoil the caller's work
            event = _event_insert(
                kind=kind,
                key=key,
                user_id=user_id,
                batch_id=batch_id,
                document_id=document_id,
                payload=payload,
                dispatched_at=None if sent else now,
            )
    except IntegrityError:
        logger.warning("notification %s was already recorded", key)
        return None
    if sent:
        transaction.on_commit(partial(_enqueue_dispatch, event.pk))
    if settings.CHANNEL_LAYERS:
        transaction.on_commit(partial(live.PUBLISHER.publish, event))
    return event


# A transaction-level advisory lock (PostgreSQL) on the event log; any number will do that no
# other lock of Sheaf's uses.
EVENT_LOG_LOCK = 0x5EAF_0001


def _event_insert(**fields: Any) -> Event:
    """Insert an event, one transaction at a time, in the order of their ids.

    PostgreSQL hands out ids when rows are inserted, not when they commit: two transactions
    recording events at once could commit id 8 before id 7, and a client that resumes after 8
    (`last_event_id`, or a log reader that read up to 8) would never be sent 7. EVENT_LOG_LOCK,
    taken before the insert and held to the end of its transaction, makes ids commit in order.
    So that a holder never
    waits for a row lock that a transaction waiting here could hold: every caller records its
    events last in its transaction (after its other writes), and the rows an event refers to
    (batch, document) are locked FOR NO KEY UPDATE, never FOR UPDATE, which the insert's
    foreign-key checks (FOR KEY SHARE) would wait for. SQLite has one writer at a time."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [EVENT_LOG_LOCK])
    return Event.objects.create(**fields)


# Which event kinds each user's webhook endpoints take, as a worker last read them: the frequent
# kinds (a completion per document) ask it for every event. An endpoint made or changed shows
# here within SUBSCRIPTIONS_FOR seconds.
SUBSCRIPTIONS_FOR = 5.0
_subscriptions: dict[int, tuple[float, frozenset[str]]] = {}


def _subscribed(user_id: int, kind: str) -> bool:
    known = _subscriptions.get(user_id)
    if known is None or known[0] < time.monotonic():
        kinds = frozenset(
            kind
            for events in WebhookEndpoint.objects.filter(user_id=user_id).values_list(
                "events", flat=True
            )
            for kind in events
        )
        known = (time.monotonic() + SUBSCRIPTIONS_FOR, kinds)
        _subscriptions[user_id] = known
    return kind in known[1]


def _enqueue_dispatch(event_id: int) -> None:
    from notifications.tasks import enqueue_event_dispatch

    enqueue_event_dispatch(event_id)


def _enqueue_delivery(delivery_id: int) -> None:
    from notifications.tasks import enqueue_webhook_delivery

    enqueue_webhook_delivery(delivery_id)


# --- Dispatch ------------------------------------------------------------------------------------


def _claimable_events(now: datetime) -> Any:
    return Event.objects.filter(dispatched_at__isnull=True).filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    )


def event_dispatch(*, event_id: int, now: datetime | None = None) -> bool:
    """Send an event's email and create its webhook deliveries, once. False when another
    dispatcher holds it or it was dispatched already.

    Webhooks go first, so a mail server that is down or refuses the owner never holds them
    back. A mail server that is down raises; the claim then runs out and the sweep tries
    again (the deliveries are not created twice). A refused recipient is final. Only a crash
    between sending and noting it can repeat the email.
    """
    now = now or timezone.now()
    if not _claimable_events(now).filter(pk=event_id).update(claimed_until=now + DISPATCH_CLAIM):
        return False
    event = Event.objects.select_related("user").get(pk=event_id)
    for delivery_id in _deliveries_create(event, now=now):
        _enqueue_delivery(delivery_id)
    if event.kind in EMAIL_KINDS and event.emailed_at is None:
        try:
            sent = _email_owner(event)
        except smtplib.SMTPRecipientsRefused:
            logger.warning("notification %s: the mail server refused %s", event.pk, event.user)
            sent = True  # asking again would be refused again
        if sent:
            Event.objects.filter(pk=event.pk).update(emailed_at=timezone.now())
    Event.objects.filter(pk=event.pk).update(dispatched_at=timezone.now(), claimed_until=None)
    return True


def _email_owner(event: Event) -> bool:
    """Tell the batch's owner it finished or its budget paused it (unless they turned batch
    emails off). True when sent."""
    user: User = event.user
    if not user.is_active or not user.notify_batch_email:
        return False
    batch = event.payload["data"]["batch"]
    name = batch["name"]
    if event.kind == EventKind.BATCH_PAUSED:
        subject = f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}Batch “{name}” paused: budget reached"
        body = render_to_string(
            "notifications/batch_paused_email.txt",
            {"batch": batch, "settings_url": _settings_url()},
        )
        return _send(to=user.email, subject=subject, body=body)
    counts = batch["counts"]
    if batch["status"] == BatchProcess.Status.FAILED:
        outcome = "failed"
    elif counts["failed"]:
        outcome = f"completed with errors ({counts['failed']} of {counts['total']} failed)"
    else:
        outcome = "completed"
    subject = f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}Batch “{name}” {outcome}"
    body = render_to_string(
        "notifications/batch_finished_email.txt",
        {"batch": batch, "counts": counts, "outcome": outcome, "settings_url": _settings_url()},
    )
    return _send(to=user.email, subject=subject, body=body)


def _send(*, to: str, subject: str, body: str) -> bool:
    message = EmailMessage(
        subject=subject,
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
        headers={"Auto-Submitted": "auto-generated"},
    )
    message.send()
    return True


def _settings_url() -> str:
    return settings.SITE_URL + reverse("settings") + "#notifications"


def _deliveries_create(event: Event, *, now: datetime) -> list[int]:
    """One pending delivery per endpoint of the owner subscribed to the event (Plus and Growth
    only); the unique (endpoint, event) pair keeps a repeat from adding any."""
    if not user_effective_plan(event.user).plan.webhooks:
        return []
    endpoints = [
        e for e in WebhookEndpoint.objects.filter(user_id=event.user_id) if event.kind in e.events
    ]
    WebhookDelivery.objects.bulk_create(
        [WebhookDelivery(endpoint=e, event=event, next_attempt_at=now) for e in endpoints],
        ignore_conflicts=True,
    )
    return list(
        WebhookDelivery.objects.filter(
            event=event, status=WebhookDelivery.Status.PENDING
        ).values_list("pk", flat=True)
    )


# --- Webhook deliveries --------------------------------------------------------------------------


def webhook_body(event: Event) -> bytes:
    """What a receiver gets: ``{"id", "type", "created_at", "data"}`` as compact JSON."""
    return json.dumps(event.body, separators=(",", ":"), ensure_ascii=False).encode()


def retry_delay(attempts: int) -> timedelta:
    """30 s after the first failed attempt, doubling, at most an hour."""
    return timedelta(seconds=min(RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0), RETRY_MAX_SECONDS))


def webhook_delivery_attempt(*, delivery_id: int, now: datetime | None = None) -> str | None:
    """Try one due delivery: a 2xx marks it delivered; a URL refused for its address fails it at
    once; anything else is recorded and retried with backoff until MAX_DELIVERY_ATTEMPTS. None
    when it was not due or someone else holds it.
    """
    now = now or timezone.now()
    claimed = WebhookDelivery.objects.filter(
        pk=delivery_id, status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now
    ).update(attempts=F("attempts") + 1, next_attempt_at=now + DELIVERY_LEASE)
    if not claimed:
        return None
    delivery = (
        WebhookDelivery.objects.select_related("endpoint", "event").filter(pk=delivery_id).first()
    )
    if delivery is None:
        return None  # its endpoint was deleted a moment ago
    body = webhook_body(delivery.event)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Sheaf-Webhooks/1",
        "Sheaf-Event": delivery.event.kind,
        "Sheaf-Delivery": str(delivery.pk),
        "Sheaf-Signature": signature_header(
            secret=delivery.endpoint.secret, timestamp=int(time.time()), body=body
        ),
    }
    response_status: int | None = None
    error = ""
    final = False
    try:
        response_status = egress.post(delivery.endpoint.url, body=body, headers=headers)
    except (egress.Unresolved, egress.SendFailed) as exc:
        error = str(exc)  # the name may resolve, the endpoint may answer, on a later attempt
    except egress.Refused as exc:
        # The URL reaches an address webhooks may not call: every retry would be refused the
        # same way (or, worse, probe the address again), so the delivery fails now.
        error, final = f"{exc} Not retried.", True
    # Under this attempt only: a stale attempt must not overwrite a later one's outcome.
    held = WebhookDelivery.objects.filter(
        pk=delivery.pk, status=WebhookDelivery.Status.PENDING, attempts=delivery.attempts
    )
    if response_status is not None and 200 <= response_status < 300:
        delivered_at = timezone.now()
        if held.update(
            status=WebhookDelivery.Status.DELIVERED,
            response_status=response_status,
            error="",
            next_attempt_at=None,
            delivered_at=delivered_at,
        ) and (delivery.delivered_at is None):  # a redelivery's lag is no event's
            lag = delivered_at - delivery.event.created_at
            observe_event_delivery(lag.total_seconds(), "webhook")
        return WebhookDelivery.Status.DELIVERED
    if response_status is not None:
        error = f"The endpoint answered HTTP {response_status}" + (
            " (redirects are not followed)." if 300 <= response_status < 400 else "."
        )
    give_up = final or delivery.attempts >= MAX_DELIVERY_ATTEMPTS
    status = WebhookDelivery.Status.FAILED if give_up else WebhookDelivery.Status.PENDING
    held.update(
        status=status,
        response_status=response_status,
        error=error,
        next_attempt_at=None if give_up else now + retry_delay(delivery.attempts),
    )
    return status


# --- Recovery ------------------------------------------------------------------------------------


def notifications_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Dispatch events nobody dispatched (the worker died after commit, or the email server was
    down), queue deliveries whose retry is due, and forget old events that notified nobody."""
    now = now or timezone.now()
    dispatched = 0
    pending = _claimable_events(now).order_by("created_at").values_list("pk", flat=True)
    for event_id in list(pending[:SWEEP_EVENTS]):
        try:
            # Claims start now, not when this sweep started: a slow sweep (the mail server
            # crawling) must not hand out claims that have already run out.
            dispatched += event_dispatch(event_id=event_id, now=max(now, timezone.now()))
        except Exception:
            logger.exception("notification %s: dispatch failed; the sweep will try again", event_id)
    due = WebhookDelivery.objects.filter(
        status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now
    ).order_by("next_attempt_at")
    due_ids = list(due.values_list("pk", flat=True)[:SWEEP_DELIVERIES])
    for delivery_id in due_ids:
        _enqueue_delivery(delivery_id)
    return {"events": dispatched, "deliveries": len(due_ids), "forgotten": _events_forget(now)}


# Live clients resume within the last hour (notifications.live.RESUME_WINDOW); an event that
# notified nobody is forgotten a day after (the outcomes people are told of stay, with their
# deliveries), at most this many per sweep.
FORGET_AFTER = timedelta(days=1)
FORGET_AT_MOST = 10_000


def _events_forget(now: datetime) -> int:
    stale = Event.objects.filter(
        created_at__lt=now - FORGET_AFTER, dispatched_at__isnull=False, emailed_at__isnull=True
    ).exclude(kind__in=DEFAULT_WEBHOOK_EVENTS)
    ids = list(stale.filter(deliveries__isnull=True).values_list("pk", flat=True)[:FORGET_AT_MOST])
    if ids:
        Event.objects.filter(pk__in=ids).delete()
    return len(ids)


# --- Endpoints -----------------------------------------------------------------------------------


def _events_check(events: list[str] | None) -> list[str]:
    if events is None:
        return list(DEFAULT_WEBHOOK_EVENTS)
    if EventKind.PING in events:
        raise Rejected.one(
            "invalid",
            "ping is not subscribed to: it is sent to one endpoint when you ask for it "
            "(“Send a test event” on /settings/).",
        )
    unknown = [e for e in events if e not in SUBSCRIBABLE_EVENTS]
    if unknown:
        raise Rejected.one(
            "invalid",
            f"Unknown event {unknown[0]!r}; choose from {', '.join(SUBSCRIBABLE_EVENTS)}.",
        )
    if not events:
        raise Rejected.one("invalid", "Choose at least one event to send.")
    return [e for e in SUBSCRIBABLE_EVENTS if e in events]


def webhook_endpoint_create(
    *, user: User, url: str, events: list[str] | None = None
) -> WebhookEndpoint:
    """Register a URL for the user's events (DEFAULT_WEBHOOK_EVENTS when `events` is None).
    The URL must be http(s) and reach only public addresses. The endpoint's signing `secret` is
    shown once."""
    _webhooks_check_plan(user)
    url = (url or "").strip()
    if not url:
        raise Rejected.one("invalid_url", "Give the URL that should receive the webhooks.")
    if len(url) > WebhookEndpoint.URL_MAX_LENGTH:
        raise Rejected.one(
            "invalid_url", f"The URL is longer than {WebhookEndpoint.URL_MAX_LENGTH} characters."
        )
    events = _events_check(events)
    try:
        egress.url_check(url)
    except egress.Refused as exc:
        raise Rejected.one("invalid_url", str(exc)) from None
    if WebhookEndpoint.objects.filter(user=user).count() >= MAX_ENDPOINTS:
        raise Rejected.one(
            "invalid", f"You have {MAX_ENDPOINTS} webhook endpoints, the most allowed."
        )
    return WebhookEndpoint.objects.create(
        user=user, url=url, events=events, secret="whsec_" + secrets.token_urlsafe(32)
    )


def webhook_endpoint_delete(*, user: User, endpoint_id: int) -> WebhookEndpoint:
    """Delete one of the user's endpoints (Http404 for anyone else's) and its deliveries."""
    endpoint = webhook_endpoint_get_for_user(user=user, endpoint_id=endpoint_id)
    endpoint.delete()
    return endpoint


def _webhooks_check_plan(user: User) -> None:
    plan = user_effective_plan(user).plan
    if not plan.webhooks:
        raise Rejected.one(
            "plan_limit",
            f"Outgoing webhooks are part of the Plus and Growth plans; your plan is {plan.name}.",
        )


def webhook_ping(*, user: User, endpoint_id: int) -> WebhookDelivery:
    """ "Send a test event": a `ping` event (``{"id", "type": "ping", "created_at", "data":
    {"endpoint": {"id", "url"}}}``) delivered to this one endpoint of the user's (Http404 for
    anyone else's), signed and retried like any delivery, and shown in the delivery log.
    Raises Rejected `plan_limit` without webhooks in the plan, `conflict` while the endpoint's
    last ping is still pending."""
    endpoint = webhook_endpoint_get_for_user(user=user, endpoint_id=endpoint_id)
    _webhooks_check_plan(user)
    now = timezone.now()
    with transaction.atomic():
        # The endpoint's row lock serialises two clicks, so one ping waits at a time.
        WebhookEndpoint.objects.select_for_update().filter(pk=endpoint.pk).first()
        if WebhookDelivery.objects.filter(
            endpoint=endpoint, event__kind=EventKind.PING, status=WebhookDelivery.Status.PENDING
        ).exists():
            raise Rejected.one(
                "conflict", f"A test event to {endpoint.url} is still on its way; see the log."
            )
        event = _event_insert(
            kind=EventKind.PING,
            key=f"ping:{endpoint.pk}:{uuid.uuid4()}",
            user=user,
            payload={
                "type": EventKind.PING.value,
                "created_at": now.isoformat(),
                "data": {"endpoint": {"id": endpoint.pk, "url": endpoint.url}},
            },
            # Nothing else to send: its one delivery is made here.
            dispatched_at=now,
        )
        delivery = WebhookDelivery.objects.create(
            endpoint=endpoint, event=event, next_attempt_at=now
        )
        transaction.on_commit(partial(_enqueue_delivery, delivery.pk))
    logger.info("webhook endpoint %s: ping %s queued", endpoint.pk, event.pk)
    return delivery


def webhook_redeliver(*, user: User, delivery_id: int) -> WebhookDelivery:
    """Send a delivered or failed delivery of the user's (Http404 for anyone else's) again, at
    once: the same body and `Sheaf-Delivery` id, a fresh signature. Its attempts go on counting:
    it is retried while it has any of its MAX_DELIVERY_ATTEMPTS left, and once they are spent
    a redelivery is one attempt. Raises Rejected `plan_limit` without webhooks in the plan,
    `conflict` while it is pending."""
    delivery = webhook_delivery_get_for_user(user=user, delivery_id=delivery_id)
    _webhooks_check_plan(user)
    with transaction.atomic():
        queued = WebhookDelivery.objects.filter(
            pk=delivery.pk,
            status__in=(WebhookDelivery.Status.DELIVERED, WebhookDelivery.Status.FAILED),
        ).update(status=WebhookDelivery.Status.PENDING, next_attempt_at=timezone.now())
        if not queued:
            raise Rejected.one(
                "conflict",
                f"The {delivery.event.kind} delivery to {delivery.endpoint.url} is still on its "
                "way; it is retried by itself.",
            )
        transaction.on_commit(partial(_enqueue_delivery, delivery.pk))
    logger.info("webhook delivery %s: redelivery queued", delivery.pk)
    delivery.refresh_from_db()
    return delivery
