"""Migrations that keep a django-q2 schedule (a task run every few minutes, or daily) in the
database. A migration using these depends on django_q's."""

from __future__ import annotations

from typing import Any

from django.db import migrations


def _schedule(name: str, func: str, **timing: Any) -> migrations.RunPython:
    """An operation that creates (or updates) the schedule `name` running `func`, and removes
    it when the migration is reversed."""

    def create(apps: Any, schema_editor: Any) -> None:
        apps.get_model("django_q", "Schedule").objects.update_or_create(
            name=name, defaults={"func": func, "repeats": -1, **timing}
        )

    def delete(apps: Any, schema_editor: Any) -> None:
        apps.get_model("django_q", "Schedule").objects.filter(name=name).delete()

    return migrations.RunPython(create, delete)


def every_minutes(name: str, func: str, *, minutes: int = 1) -> migrations.RunPython:
    return _schedule(name, func, schedule_type="I", minutes=minutes)


def daily(name: str, func: str) -> migrations.RunPython:
    return _schedule(name, func, schedule_type="D")
