"""Conditional GET for the batch reads that clients poll (the batch page's progress partial and
`GET /api/v1/batches/<id>/`): an ETag from one query, and 304 Not Modified to an
`If-None-Match` that still matches, without drawing the batch.

The ETag is weak (`W/"…"`): two answers with the same ETag mean the same thing, not the same
bytes. The partial's forms carry a CSRF token masked afresh on every render, and a running
batch's ETA is computed against the clock, so a strong ETag would be a promise the bytes do not
keep; `If-None-Match` compares weakly anyway (RFC 9110 13.1.2).
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Iterable

from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils.cache import get_conditional_response, patch_cache_control

from accounts.models import User
from batches import selectors
from batches.models import BatchProcess
from batchsite.release import release

# A running batch's ETA (and the page's "started 3 minutes ago") moves with the clock while
# nothing else changes: its ETag changes this often too, so a poll shows them at most this old.
CLOCK_SECONDS = 30


def batch_etag(
    *,
    user: User,
    batch_id: uuid.UUID | str,
    trials: bool = True,
    variant: Iterable[str] = (),
    now: float | None = None,
) -> str:
    """The ETag of the user's batch as its reads show it (Http404 for anyone else's batch), in
    one query. `variant`: what else the answer depends on (the partial's page and sort). The
    code serving it is part of it too: after a deploy the same batch gets a new ETag."""
    state = selectors.batch_state_for_user(user=user, batch_id=batch_id, trials=trials)
    status = state[0]  # selectors.STATE_COLUMNS
    clock = None
    if status not in BatchProcess.TERMINAL_STATUSES:
        clock = int((time.time() if now is None else now) // CLOCK_SECONDS)
    digest = hashlib.sha256(repr((release(), state, clock, *variant)).encode()).hexdigest()
    return f'W/"{digest[:32]}"'


def respond_conditionally(
    request: HttpRequest, *, etag: str, respond: Callable[[], HttpResponseBase]
) -> HttpResponseBase:
    """304 when the request's `If-None-Match` names `etag`, else `respond()`; both carry the
    ETag and `Cache-Control: private, no-cache`: the browser keeps the answer and asks again
    with it each time (what makes htmx's XMLHttpRequest polls conditional), and no shared
    cache keeps a user's batch."""
    response = get_conditional_response(request, etag=etag) or respond()
    response["ETag"] = etag
    patch_cache_control(response, private=True, no_cache=True)
    return response
