"""django-q2 tasks of the accounts app: thin, they take ids and call a service."""

from __future__ import annotations

from accounts.billing.services import event_process


def stripe_event_process(event_pk: int) -> str:
    return event_process(event_pk=event_pk).status
