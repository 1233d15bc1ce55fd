"""Run 1 for every batch made before runs were kept, holding each document's current result.

One-way in effect: reversing deletes the runs, and the schema reversal then drops their tables;
Document.result, which the rows copy, is never touched, so nothing is lost either way.
"""

from typing import Any

from django.conf import settings
from django.db import migrations

BATCH = 500


def _model_of(engine: str) -> str:
    return str(getattr(settings, "SHEAF_ANTHROPIC_MODEL", "")) if engine == "anthropic" else ""


def forwards(apps: Any, schema_editor: Any) -> None:
    batches = apps.get_model("batches", "BatchProcess")
    runs = apps.get_model("batches", "Run")
    results = apps.get_model("batches", "RunResult")
    documents = apps.get_model("documents", "Document")
    for batch in batches.objects.filter(current_run__isnull=True).iterator(chunk_size=BATCH):
        run = runs.objects.create(
            batch=batch,
            number=1,
            prompt=batch.extraction_prompt,
            fields=batch.fields,
            engine=batch.engine,
            model=_model_of(batch.engine),
            created_at=batch.created_at,
            finished_at=batch.completed_at,
        )
        batches.objects.filter(pk=batch.pk).update(current_run=run)
        rows = [
            results(
                run=run,
                document_id=document.pk,
                result=document.result,
                values_total=document.values_total,
                values_found=document.values_found,
                values_verified=document.values_verified,
                cost_usd=document.cost_usd,
                usage=document.usage,
                created_at=document.completed_at or document.updated_at,
                updated_at=document.completed_at or document.updated_at,
            )
            for document in documents.objects.filter(batch_id=batch.pk)
            if document.result is not None or document.status in ("completed", "failed")
        ]
        results.objects.bulk_create(rows, batch_size=BATCH)


def backwards(apps: Any, schema_editor: Any) -> None:
    apps.get_model("batches", "BatchProcess").objects.update(current_run=None)
    apps.get_model("batches", "Run").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("batches", "0009_runs")]

    operations = [migrations.RunPython(forwards, backwards)]
