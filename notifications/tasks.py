"""django-q2 tasks: thin, they take ids and call services (enqueued after commit)."""

from __future__ import annotations

from django_q.tasks import async_task

from notifications import services

EVENT_TASK = "notifications.tasks.event_dispatch"
DELIVERY_TASK = "notifications.tasks.webhook_deliver"


def enqueue_event_dispatch(event_id: int) -> None:
    async_task(EVENT_TASK, event_id)


def enqueue_webhook_delivery(delivery_id: int) -> None:
    async_task(DELIVERY_TASK, delivery_id)


def event_dispatch(event_id: int) -> bool:
    return services.event_dispatch(event_id=event_id)


def webhook_deliver(delivery_id: int) -> str | None:
    return services.webhook_delivery_attempt(delivery_id=delivery_id)


def sweep() -> dict[str, int]:
    return services.notifications_sweep()
