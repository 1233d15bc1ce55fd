"""/healthz tells a load balancer whether this node can serve and whether work is flowing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import OperationalError, connection
from django.utils import timezone

from batches.models import EngineCircuit
from tests.factories import BatchFactory, DocumentFactory


def _queued(batch, *, due_in: timedelta) -> None:
    DocumentFactory(batch=batch, status="queued", next_attempt_at=timezone.now() + due_in)


def test_it_is_ok_with_a_database_and_a_moving_queue(client, alice, settings):
    settings.SHEAF_HEALTH_MAX_QUEUE_AGE = 600
    batch = BatchFactory(user=alice, status="processing")
    _queued(batch, due_in=timedelta(0))
    _queued(batch, due_in=timedelta(hours=1))

    response = client.get("/healthz")

    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "ok"
    assert body["database"]["status"] == "ok"
    assert body["queue"]["depth"] == 2
    assert body["queue"]["due"] == 1
    assert 0 <= body["queue"]["oldest_due_seconds"] < 60
    assert body["queue"]["max_age_seconds"] == 600
    assert "no-store" in response["Cache-Control"]


def test_an_empty_queue_is_healthy(client, db):
    body = client.get("/healthz").json()

    assert body["status"] == "ok"
    assert body["queue"]["oldest_due_seconds"] is None


@pytest.fixture
def late_queue(alice, settings) -> None:
    """A due document that has waited six minutes, one more than the limit."""
    settings.SHEAF_HEALTH_MAX_QUEUE_AGE = 300
    _queued(BatchFactory(user=alice, status="processing"), due_in=-timedelta(minutes=6))


def test_it_fails_when_a_due_document_waited_longer_than_the_limit(client, late_queue):
    response = client.get("/healthz")

    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "fail"
    assert body["database"]["status"] == "ok"
    assert body["queue"]["status"] == "fail"
    assert body["queue"]["oldest_due_seconds"] >= 360


def test_a_load_balancer_probe_asks_only_about_the_database(client, late_queue):
    """A queue that is behind is shared by every web node: it must not take them all out."""
    response = client.get("/healthz?check=database")

    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "ok"
    assert body["queue"]["status"] == "fail"  # still reported


def test_a_load_balancer_probe_fails_without_a_database(client, db):
    def unreachable(execute, sql, params, many, context):
        raise OperationalError("could not connect to server: Connection refused")

    with connection.execute_wrapper(unreachable):
        assert client.get("/healthz?check=database").status_code == 503


def test_documents_of_a_paused_engine_do_not_fail_it(client, alice, settings):
    """They wait on purpose (the circuit is open); staff see that on the overview."""
    settings.SHEAF_HEALTH_MAX_QUEUE_AGE = 300
    batch = BatchFactory(user=alice, status="processing", engine="anthropic")
    _queued(batch, due_in=-timedelta(hours=1))
    EngineCircuit.objects.create(engine="anthropic", reason="401", next_probe_at=timezone.now())

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json()["queue"]["paused"] == 1


def test_it_fails_when_the_database_does_not_answer(client, db):
    def unreachable(execute, sql, params, many, context):
        raise OperationalError("could not connect to server: Connection refused")

    with connection.execute_wrapper(unreachable):
        response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json() == {
        "status": "fail",
        "database": {"status": "fail", "error": "OperationalError"},
        "queue": None,
    }


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_it_only_answers_reads(client, db, method):
    assert getattr(client, method)("/healthz").status_code == 405
