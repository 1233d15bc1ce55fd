"""What billing tests do besides talking to the fake Stripe: play the worker and the browser.

Webhook processing is a django-q2 task enqueued after commit. django-q2 reads its ``sync``
option once, when ``django_q.conf`` is imported, so a test cannot switch it on through
``settings.Q_CLUSTER``; instead the enqueued task (a row of the ORM broker) is run here, as a
worker would run it.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlencode

from django.utils.module_loading import import_string
from django_q.models import OrmQ

STRIPE_EVENT_TASK = "accounts.tasks.stripe_event_process"


def queued_stripe_events() -> list[int]:
    """The StripeEvent ids waiting in the queue, oldest first."""
    return [task["args"][0] for task in _stripe_tasks().values()]


def run_queued_stripe_events() -> list[str]:
    """Run every queued Stripe event task once, oldest first, and take it off the queue, as a
    django-q2 worker does; returns what each task returned (the event's new status)."""
    results = []
    for pk, task in _stripe_tasks().items():
        results.append(import_string(task["func"])(*task["args"], **task["kwargs"]))
        OrmQ.objects.filter(pk=pk).delete()
    return results


def _stripe_tasks() -> dict[int, dict[str, Any]]:
    tasks = {}
    for queued in OrmQ.objects.order_by("pk"):
        task = queued.task
        assert "func" in task, f"queued task {queued.pk} cannot be read: {task}"
        if task["func"] == STRIPE_EVENT_TASK:
            tasks[queued.pk] = task
    return tasks


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def browser(url: str, data: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    """One GET (or form POST, with ``data``) as a browser on a hosted Stripe page would send it,
    without following the redirect; (status, headers, body)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)
    body = urlencode(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body)  # noqa: S310 - loopback test servers
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()
