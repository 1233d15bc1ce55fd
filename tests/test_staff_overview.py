"""Staff see throughput, error rate, the queue and open circuits on /admin/overview/."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

from django.utils import timezone

from batches.models import EngineCircuit
from tests.factories import BatchFactory, DocumentFactory

URL = "/admin/overview/"


def _row(body: str, day) -> list[str]:
    match = re.search(rf'<tr data-day="{day:%Y-%m-%d}">(.*?)</tr>', body)
    assert match, f"no row for {day}"
    return re.findall(r"<td>(.*?)</td>", match.group(1))


def test_anonymous_visitors_are_sent_to_the_admin_login(client, db):
    response = client.get(URL)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_a_user_who_is_not_staff_is_sent_to_the_admin_login(alice_client):
    response = alice_client.get(URL)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert "Operations overview" not in response.content.decode()


def test_the_overview_refuses_posts(staff_client):
    assert staff_client.post(URL).status_code == 405


def test_staff_see_daily_throughput_error_rate_queue_and_circuits(staff_client, alice):
    now = timezone.now()
    today, two_days_ago = now, now - timedelta(days=2)
    batch = BatchFactory(user=alice, status="processing", engine="local")
    for _ in range(3):
        DocumentFactory(batch=batch, status="completed", completed_at=today)
    DocumentFactory(batch=batch, status="failed", error_code="malformed", completed_at=today)
    for _ in range(2):
        DocumentFactory(batch=batch, status="completed", completed_at=two_days_ago)
    DocumentFactory(batch=batch, status="completed", completed_at=now - timedelta(days=20))
    DocumentFactory(batch=batch, status="canceled", completed_at=today)
    DocumentFactory(batch=batch, status="queued", next_attempt_at=now - timedelta(minutes=10))
    DocumentFactory(batch=batch, status="queued", next_attempt_at=now + timedelta(minutes=5))
    DocumentFactory(
        batch=batch, status="processing", lease_token=uuid.uuid4(), lease_expires_at=now
    )
    paused = BatchFactory(user=alice, status="processing", engine="anthropic")
    DocumentFactory(batch=paused, status="queued", next_attempt_at=now - timedelta(hours=1))
    EngineCircuit.objects.create(
        engine="anthropic", reason="Claude refused the account (401)", next_probe_at=now
    )

    response = staff_client.get(URL)

    body = response.content.decode()
    assert response.status_code == 200
    assert _row(body, today) == [f"{today:%Y-%m-%d}", "3", "1", "25.0%"]
    assert _row(body, two_days_ago) == [f"{two_days_ago:%Y-%m-%d}", "2", "0", "0.0%"]
    assert _row(body, now - timedelta(days=1))[1:] == ["0", "0", "—"]
    assert body.count("<tr data-day=") == 14  # the 20-day-old document is outside the window
    assert re.search(r'data-figure="depth"><strong>3</strong>', body)
    assert re.search(r'data-figure="due"><strong>1</strong>', body)
    assert re.search(r'data-figure="paused"><strong>1</strong>', body)
    assert re.search(r'data-figure="oldest-due"[^>]*>\s*<strong>(599|600|601) s</strong>', body)
    assert "Claude refused the account (401)" in body
    # Two server-rendered SVG charts: stacked bars per day and an error-rate line.
    assert body.count('<svg class="sheaf-chart"') == 2
    assert f"<title>{today:%Y-%m-%d}: 3 completed, 1 failed, 25% errors</title>" in body
    assert re.search(r'<rect class="failed" x="[\d.]+" y="[\d.]+" width="[\d.]+"', body)
    assert re.search(r'<polyline class="line" points="[\d., ]+"', body)
    assert "<script" not in body.split('<div id="content-main">')[1]


def test_the_admin_index_links_to_the_overview(staff_client):
    body = staff_client.get("/admin/").content.decode()

    assert 'href="/admin/overview/"' in body
    assert "?health=unhealthy" in body
