"""Once a day, delete uploaded originals older than SHEAF_RETENTION_DAYS (the task does nothing
while the setting is unset)."""

from __future__ import annotations

from django.db import migrations

from batchsite.schedules import daily


class Migration(migrations.Migration):
    dependencies = [
        ("documents", "0003_document_file_removed_at"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [daily("sheaf-retention", "documents.tasks.originals_expire_task")]
