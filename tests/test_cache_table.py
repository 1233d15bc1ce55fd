"""`manage.py migrate` alone sets up everything sign-in needs, the database cache's table too."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

DATABASE_CACHE = {
    "default": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "sheaf_cache",
    }
}


@pytest.mark.django_db
def test_sign_in_answers_after_migrate_alone_with_the_database_cache(client, settings) -> None:
    # Django's test runner makes the cache table itself; drop it to start where a new site does.
    settings.CACHES = DATABASE_CACHE
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS sheaf_cache")

    call_command("migrate", verbosity=0, skip_checks=True)

    assert "sheaf_cache" in connection.introspection.table_names()
    response = client.post(
        reverse("account_login"), {"login": "nobody@example.com", "password": "x"}
    )
    assert response.status_code == 200
    assert b"not correct" in response.content


@pytest.mark.django_db
def test_migrate_makes_no_cache_table_when_the_cache_is_not_the_database(settings) -> None:
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS sheaf_cache")

    call_command("migrate", verbosity=0, skip_checks=True)

    assert "sheaf_cache" not in connection.introspection.table_names()
