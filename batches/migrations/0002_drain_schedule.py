"""A drain every minute, so work never depends on a kick alone (django-q2's scheduler wakes
about every 30 s)."""

from __future__ import annotations

from django.db import migrations

from batchsite.schedules import every_minutes


class Migration(migrations.Migration):
    dependencies = [
        ("batches", "0001_initial"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [every_minutes("sheaf-drain", "batches.tasks.drain")]
