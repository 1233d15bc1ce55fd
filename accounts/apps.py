from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.core.management import call_command
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        post_migrate.connect(create_cache_tables, sender=self)


def create_cache_tables(*, using: str, verbosity: int, **kwargs: Any) -> None:
    """Sign-in rate limits and API throttles count in the cache, so with the database cache its
    table must exist once `migrate` has run, or sign-in answers 500.

    After every `migrate` rather than in a migration: a migration runs once, so a site that moves
    from Redis to the database cache later would be left without the table. createcachetable
    skips tables that exist and caches that are not database caches (Redis).
    """
    call_command("createcachetable", database=using, verbosity=verbosity if verbosity > 1 else 0)
