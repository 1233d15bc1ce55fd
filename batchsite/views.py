"""Site-wide views: the staff overview page, the health check, the metrics and the favicon."""

from __future__ import annotations

import hmac
import logging
from time import perf_counter

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.utils import timezone
from django.views.decorators.cache import cache_control, never_cache
from django.views.decorators.http import require_safe

from batches.health import daily_throughput, database_write_probe, open_circuits, queue_state
from batches.metrics import DatabaseCollector
from batchsite.charts import percent_line, stacked_bars
from batchsite.metrics import CONTENT_TYPE, exposition

logger = logging.getLogger(__name__)

OVERVIEW_DAYS = 14


@staff_member_required
@require_safe
def staff_overview(request: HttpRequest) -> HttpResponse:
    """Throughput and error rate per day, the queue, and open engine circuits."""
    now = timezone.now()
    days = daily_throughput(days=OVERVIEW_DAYS, now=now)
    labels = [f"{day.day:%m-%d}" for day in days]
    titles = [
        f"{day.day:%Y-%m-%d}: {day.completed} completed, {day.failed} failed"
        + ("" if day.error_rate is None else f", {day.error_rate:g}% errors")
        for day in days
    ]
    throughput = stacked_bars(
        labels,
        [("completed", [d.completed for d in days]), ("failed", [d.failed for d in days])],
        titles,
    )
    error_rate = percent_line(labels, [d.error_rate for d in days], titles)
    context = {
        **admin.site.each_context(request),
        "title": "Operations overview",
        "days": days,
        "throughput": throughput,
        "error_rate": error_rate,
        "queue": queue_state(now=now),
        "circuits": list(open_circuits()),
        "max_queue_age": settings.SHEAF_HEALTH_MAX_QUEUE_AGE,
    }
    return render(request, "admin/overview.html", context)


@require_safe
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """For load balancers and monitors: no authentication, two cheap reads and a one-row write.

    503 when the database does not answer or refuses writes (uploads would fail), or when a
    document that is due has waited for a worker longer than `SHEAF_HEALTH_MAX_QUEUE_AGE`
    seconds (workers are down or overwhelmed). With `?check=database` only the database
    decides: a load balancer's probe, which must not take every web node out of service
    because the shared queue is behind.
    """
    max_age = settings.SHEAF_HEALTH_MAX_QUEUE_AGE
    started = perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        latency_ms = round((perf_counter() - started) * 1000, 1)
        queue = queue_state()
    except DatabaseError as error:
        logger.error("healthz: the database did not answer: %s", error)
        body: dict[str, object] = {
            "status": "fail",
            "database": {"status": "fail", "error": type(error).__name__},
            "queue": None,
        }
        return JsonResponse(body, status=503)
    database: dict[str, object] = {
        "status": "ok",
        "vendor": connection.vendor,
        "latency_ms": latency_ms,
    }
    try:
        database_write_probe()
    except DatabaseError as error:
        logger.error("healthz: the database refuses writes: %s", error)
        # The error's own text stays in the log: this answer is public.
        database.update(
            status="fail",
            error=type(error).__name__,
            message="The database answers reads but writes fail: uploads cannot be stored.",
        )
    late = queue.oldest_due_seconds is not None and queue.oldest_due_seconds > max_age
    database_only = request.GET.get("check") == "database"
    failing = database["status"] == "fail" or (late and not database_only)
    body = {
        "status": "fail" if failing else "ok",
        "database": database,
        "queue": {
            "status": "fail" if late else "ok",
            "depth": queue.depth,
            "due": queue.due,
            "paused": queue.paused,
            "scheduled": queue.scheduled,
            "oldest_due_seconds": queue.oldest_due_seconds,
            "max_age_seconds": max_age,
        },
    }
    return JsonResponse(body, status=503 if failing else 200)


@require_safe
@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus's scrape (README, "Operations: metrics"): for `Authorization: Bearer
    <SHEAF_METRICS_TOKEN>` or a signed-in staff user. Otherwise 401, or 403 when no token is
    configured (then only staff may look, and no token can help)."""
    token = settings.SHEAF_METRICS_TOKEN
    offered = _bearer_token(request)
    allowed = (
        token and offered is not None and hmac.compare_digest(offered.encode(), token.encode())
    ) or (request.user.is_active and request.user.is_staff)
    if not allowed and not token:
        detail = (
            "Metrics are for staff: sign in as a staff user, or set SHEAF_METRICS_TOKEN and "
            "send it as `Authorization: Bearer <token>`."
        )
        return JsonResponse({"code": "permission_denied", "detail": detail}, status=403)
    if not allowed:
        detail = (
            "Send `Authorization: Bearer <SHEAF_METRICS_TOKEN>`, or sign in as a staff user."
            if offered is None
            else "The Bearer token is not SHEAF_METRICS_TOKEN."
        )
        response = JsonResponse({"code": "not_authenticated", "detail": detail}, status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(exposition(DatabaseCollector()), content_type=CONTENT_TYPE)


def _bearer_token(request: HttpRequest) -> str | None:
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        return None
    return credentials.strip()


@require_safe
@cache_control(max_age=86400)
def favicon(request: HttpRequest) -> HttpResponse:
    """/favicon.ico, which browsers ask for on pages without a `<link rel=icon>` (the admin, a
    JSON answer): Sheaf's icon rather than a 404 in the log of every such visit."""
    return redirect(static("favicon.svg"))
