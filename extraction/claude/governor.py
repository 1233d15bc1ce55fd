"""Staying under the Anthropic account's rate limits: one governor per worker process."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

MAX_RETRY_AFTER = 300.0


class RateGovernor:
    """Keeps in-flight requests under what Anthropic's rate-limit headers allow.

    Additive increase, multiplicative decrease: a 429 halves the allowed concurrency and pauses
    everyone until `retry-after`; each success adds a little back. When the headers say the
    requests or input tokens left in this window are nearly spent, new calls wait for the reset.
    """

    def __init__(self, ceiling: int) -> None:
        self.ceiling = max(ceiling, 1)
        self.allowed = float(self.ceiling)
        self.in_flight = 0
        self.paused_until = 0.0
        self._cond = threading.Condition()

    def acquire(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                if now < self.paused_until:
                    self._cond.wait(self.paused_until - now)
                elif self.in_flight >= int(self.allowed):
                    self._cond.wait(1.0)
                else:
                    self.in_flight += 1
                    return

    def release(self, *, headers: Any = None, throttled_for: float | None = None) -> None:
        with self._cond:
            self.in_flight -= 1
            now = time.monotonic()
            if throttled_for is not None:
                self.allowed = max(1.0, self.allowed / 2)
                self.paused_until = max(self.paused_until, now + throttled_for)
            else:
                self.allowed = min(float(self.ceiling), self.allowed + 1 / max(self.allowed, 1))
            if headers is not None:
                self._respect(headers, now)
            self._cond.notify_all()

    def _respect(self, headers: Any, now: float) -> None:
        for kind in ("requests", "input-tokens", "tokens"):
            remaining = _header_int(headers, f"anthropic-ratelimit-{kind}-remaining")
            limit = _header_int(headers, f"anthropic-ratelimit-{kind}-limit")
            if remaining is None or limit is None:
                continue
            # Keep a margin for the requests already in flight.
            if remaining <= max(self.in_flight, limit // 50):
                wait = _seconds_until(headers.get(f"anthropic-ratelimit-{kind}-reset"))
                if wait:
                    self.paused_until = max(self.paused_until, now + min(wait, MAX_RETRY_AFTER))


def _header_int(headers: Any, name: str) -> int | None:
    try:
        return int(headers.get(name))
    except (TypeError, ValueError):
        return None


def _seconds_until(stamp: str | None) -> float | None:
    if not stamp:
        return None
    try:
        when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


_governors: dict[int, RateGovernor] = {}
_governors_lock = threading.Lock()


def governor() -> RateGovernor:
    """One governor per process (and ceiling), shared by every drain thread."""
    ceiling = settings.SHEAF_CONCURRENCY * settings.SHEAF_WORKERS
    with _governors_lock:
        return _governors.setdefault(ceiling, RateGovernor(ceiling))
