from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("documents", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="document",
            name="file_removed_at",
            field=models.DateTimeField(
                blank=True,
                help_text="When the original file was deleted (retention); text and result are kept.",
                null=True,
            ),
        ),
    ]
