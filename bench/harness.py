"""The Sheaf under measurement: a fresh database, production-like settings, the bench user, its
clusters, and batches made through the real services.

Nothing outside the temporary directory (and, with --database postgres, a database it creates
and drops) is touched.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bench.inputs import PROMPT
from bench.processes import PYTHON, REPO, Process, log, manage, wait_for


@dataclass
class Bench:
    args: argparse.Namespace
    tmp: Path
    env: dict[str, str]
    database: str  # "SQLite 3.x" / "PostgreSQL 16.x"
    user: Any = None
    cluster_count: int = 0
    load: tuple[float, float, float] = field(default_factory=os.getloadavg)

    def cluster_env(self, **extra: str) -> dict[str, str]:
        return {**self.env, **extra}

    def start_cluster(self, **extra: str) -> Process:
        self.cluster_count += 1
        cluster = Process(
            f"qcluster-{self.cluster_count}",
            # The README's production command: checks run once at deploy, not in every worker.
            [PYTHON, "manage.py", "qcluster", "--skip-checks", *self.args.qcluster_arg],
            self.cluster_env(**extra),
            self.tmp / f"qcluster-{self.cluster_count}.log",
        )
        self.wait_ready(cluster)
        return cluster

    def wait_ready(self, cluster: Process) -> None:
        """A cluster is ready once it has run a task (its first task also warms its imports)."""
        from django_q.models import Task
        from django_q.tasks import async_task

        group = f"bench-ready-{self.cluster_count}"
        async_task("bench.tasks.noop", group=group)
        wait_for(
            lambda: Task.objects.filter(group=group).exists(),
            timeout=60,
            what=f"{cluster.name} to run its first task",
            process=cluster,
        )


def bench_plan_limits() -> dict[str, int]:
    """Growth's limits, raised so that one batch holds a whole case, and (where plans have an
    API request rate) so that the http benchmark measures the API rather than its throttle,
    whose counting still runs on every request."""
    import dataclasses

    from accounts.plans import Plan

    limits = {
        "files_per_batch": 100_000,
        "documents_per_month": 10_000_000,
        "submissions_per_hour": 10_000,
    }
    if "api_requests_per_minute" in {field.name for field in dataclasses.fields(Plan)}:
        limits["api_requests_per_minute"] = 10_000_000
    return limits


def base_env(tmp: Path, database_url: str) -> dict[str, str]:
    """Production-like settings (DEBUG off) for the bench and every process it starts."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SHEAF_", "STRIPE_", "ANTHROPIC_"))
        and key not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "EMAIL_URL"}
    }
    env.update(
        DJANGO_SETTINGS_MODULE="batchsite.settings",
        PYTHONPATH=str(REPO),
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="0",
        SITE_URL="http://127.0.0.1",
        DATABASE_URL=database_url,
        SHEAF_VAR_DIR=str(tmp / "var"),
        MEDIA_ROOT=str(tmp / "media"),
        SHEAF_EXTRA_ENGINES=json.dumps({"sleep": "bench.engines.SleepEngine"}),
        # One batch holds all of a case's documents; the plan must let it.
        SHEAF_PLAN_LIMITS=json.dumps({"growth": bench_plan_limits()}),
        SHEAF_WORKERS="1",
        SHEAF_CONCURRENCY="1",
        PYTHONUNBUFFERED="1",
    )
    return env


@contextlib.contextmanager
def database(kind: str, tmp: Path, postgres_url: str) -> Iterator[tuple[str, str]]:
    """(DATABASE_URL, description) of a fresh database, dropped afterwards for PostgreSQL."""
    if kind == "sqlite":
        import sqlite3

        yield f"sqlite:///{tmp / 'bench.sqlite3'}", f"SQLite {sqlite3.sqlite_version} (WAL)"
        return
    import psycopg
    from psycopg import sql

    name = f"sheaf_bench_{os.getpid()}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        version = admin.execute("SHOW server_version").fetchone()[0]
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = urlunsplit(urlsplit(postgres_url)._replace(path=f"/{name}"))
    try:
        yield url, f"PostgreSQL {version.split()[0]}"
    finally:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def setup_django(bench: Bench) -> None:
    os.environ.update(bench.env)
    os.environ["LOG_LEVEL"] = "WARNING"  # the bench's own process only: no line per enqueue
    for key in list(os.environ):
        if key not in bench.env and (key.startswith("SHEAF_") or key in {"REDIS_URL"}):
            del os.environ[key]
    log("migrate, collectstatic")
    manage(bench.env, "migrate", "--no-input")
    manage(bench.env, "collectstatic", "--no-input")

    import django

    django.setup()
    from django_q.models import Schedule

    from accounts.models import User
    from accounts.plans import PlanKey
    from accounts.services import user_set_plan_override

    # The once-a-minute safety-net drain would add a stray task to the measurements: every
    # batch here is kicked by batch_create itself.
    Schedule.objects.filter(func="batches.tasks.drain").delete()
    user = User.objects.create_user("bench@example.com", secrets.token_urlsafe(16))
    bench.user = user_set_plan_override(user=user, plan_key=PlanKey.GROWTH)


def create_batch(bench: Bench, files: list[tuple[str, bytes]], *, engine: str, name: str) -> Any:
    """A batch of (file name, bytes) uploads through the real service (plan checks, storage,
    kick after commit)."""
    from django.conf import settings
    from django.core.files.base import ContentFile

    from batches import services

    settings.SHEAF_EXTRACTION_ENGINE = (
        engine  # not settable from the environment (see BENCHMARKS.md)
    )
    uploads = [ContentFile(data, name=filename) for filename, data in files]
    return services.batch_create(user=bench.user, files=uploads, prompt=PROMPT, name=name)


def wait_batch(
    batch: Any, *, timeout: float, cluster: Process, allowed: tuple[str, ...] = ()
) -> None:
    """Until the batch is finished; it must have completed (or ended in one of `allowed`)."""
    from batches.models import BatchProcess

    wait_for(
        lambda: BatchProcess.objects.filter(
            pk=batch.pk, status__in=BatchProcess.TERMINAL_STATUSES
        ).exists(),
        timeout=timeout,
        what=f"batch {batch.name} to finish",
        process=cluster,
        step=0.1,
    )
    batch.refresh_from_db()
    if batch.status != BatchProcess.Status.COMPLETED and batch.status not in allowed:
        from documents.models import Document

        errors = Counter(Document.objects.filter(batch=batch).values_list("status", "error_code"))
        raise RuntimeError(f"batch {batch.name} ended {batch.status}: {dict(errors)}")


def forget_batches(batches: list[Any]) -> None:
    """Delete batches the bench made only to time something (their files too), and the drains
    their creation enqueued, so that no later cluster works on them."""
    from django_q.models import OrmQ

    from batches import services

    for batch in batches:
        services.batch_delete(batch=batch)
    OrmQ.objects.all().delete()
