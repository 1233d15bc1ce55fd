"""Migrations that keep a django-q2 schedule (a task run every few minutes) in the database."""

from __future__ import annotations

from typing import Any

from django.db import migrations


def every_minutes(name: str, func: str, *, minutes: int = 1) -> migrations.RunPython:
    """An operation that creates (or updates) the schedule `name` running `func`, and removes
    it when the migration is reversed. Its migration depends on django_q's."""

    def create(apps: Any, schema_editor: Any) -> None:
        apps.get_model("django_q", "Schedule").objects.update_or_create(
            name=name,
            defaults={"func": func, "schedule_type": "I", "minutes": minutes, "repeats": -1},
        )

    def delete(apps: Any, schema_editor: Any) -> None:
        apps.get_model("django_q", "Schedule").objects.filter(name=name).delete()

    return migrations.RunPython(create, delete)
