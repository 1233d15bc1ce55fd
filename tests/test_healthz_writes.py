"""/healthz fails when the database answers reads but refuses writes: a node that cannot store
an upload must leave the load balancer's pool."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import connection

from batches.models import HealthProbe

READ_ONLY = {
    # What a database in read-only mode (a replica after failover, maintenance) answers to writes.
    "postgresql": (
        "SET default_transaction_read_only = on",
        "SET default_transaction_read_only = off",
    ),
    # A database file opened read-only refuses writes the same way.
    "sqlite": ("PRAGMA query_only = ON", "PRAGMA query_only = OFF"),
}


@pytest.fixture
def read_only_database(transactional_db) -> Iterator[None]:
    """The test's connection (which the test client's requests share) refuses writes."""
    refuse, allow = READ_ONLY[connection.vendor]
    with connection.cursor() as cursor:
        cursor.execute(refuse)
    yield
    with connection.cursor() as cursor:
        cursor.execute(allow)


@pytest.mark.parametrize("path", ["/healthz", "/healthz?check=database"])
def test_it_fails_when_the_database_refuses_writes(client, read_only_database, path) -> None:
    response = client.get(path)

    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "fail"
    assert body["database"]["status"] == "fail"
    assert "writes fail" in body["database"]["message"]
    assert body["queue"]["status"] == "ok"  # reads still answer


def test_a_healthy_probe_writes_its_row(client, db) -> None:
    first = client.get("/healthz")
    written = HealthProbe.objects.get().checked_at
    second = client.get("/healthz")

    assert first.status_code == second.status_code == 200
    assert first.json()["database"]["status"] == "ok"
    assert HealthProbe.objects.get().checked_at >= written  # one row, rewritten


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="a row lock held by another session: PostgreSQL"
)
def test_a_probe_that_cannot_get_its_row_answers_busy_instead_of_hanging(
    client, transactional_db
) -> None:
    """A load balancer gives a probe seconds: waiting behind a stuck writer must answer 503
    before that, not hang until the balancer gives up on the node without a word."""
    import psycopg

    client.get("/healthz")  # the probe's row exists
    settings = connection.settings_dict
    with psycopg.connect(
        dbname=settings["NAME"],
        user=settings["USER"],
        host=settings["HOST"] or None,
        port=settings["PORT"] or None,
        password=settings["PASSWORD"] or None,
    ) as other:
        other.execute(f"SELECT * FROM {HealthProbe._meta.db_table} FOR UPDATE")  # noqa: S608 (our table)
        response = client.get("/healthz")
        other.rollback()

    body = response.json()
    assert response.status_code == 503
    assert body["database"]["status"] == "fail"
    assert "writes fail" in body["database"]["message"]
