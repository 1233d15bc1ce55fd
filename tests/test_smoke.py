from __future__ import annotations

from django_q.models import Schedule


def test_home_page_renders_for_a_visitor(client, db):
    response = client.get("/")
    assert response.status_code == 200


def test_migrations_keep_the_drain_notification_and_retention_schedules(db):
    schedules = {s.name: (s.func, s.schedule_type, s.minutes) for s in Schedule.objects.all()}

    assert schedules["sheaf-drain"] == ("batches.tasks.drain", "I", 1)
    assert schedules["sheaf-notifications"] == ("notifications.tasks.sweep", "I", 1)
    assert schedules["sheaf-retention"][:2] == ("documents.tasks.originals_expire_task", "D")
