"""/metrics: what Prometheus scrapes, who may scrape it, and the values an operator reads there
after documents went through the pipeline (README, "Operations: metrics")."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.utils import timezone
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from batches import pipeline, services
from batches.models import BatchProcess
from batchsite.metrics import (
    CALL_STATUSES,
    metrics_directory,
    metrics_files_sweep,
    observe_event_delivery,
)
from extraction.claude import governor
from extraction.claude.engine import AnthropicEngine
from extraction.contract import ExtractionError
from extraction.fields import parse_fields
from notifications.models import Event, WebhookDelivery
from notifications.services import webhook_endpoint_create
from tests.factories import BatchFactory, DocumentFactory
from tests.notifications.conftest import (
    Receiver,
    add_documents,
    run_documents,
    run_queued_notifications,
)
from tests.support.cluster import Cluster
from tests.support.fake_anthropic import FAKE_API_KEY, FakeAnthropic

TOKEN = "metrics-token-for-tests-0123456789abcdef"
FAMILIES = {
    "sheaf_documents",
    "sheaf_document_attempts",
    "sheaf_provider_calls",
    "sheaf_queue_depth",
    "sheaf_queue_due",
    "sheaf_queue_paused",
    "sheaf_queue_scheduled",
    "sheaf_queue_oldest_due_age_seconds",
    "sheaf_event_delivery_lag_seconds",
    "sheaf_batch_duration_seconds",
}

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _token(settings) -> None:
    settings.SHEAF_METRICS_TOKEN = TOKEN


def _scrape(client: Client | None = None) -> dict[str, Metric]:
    response = (client or Client()).get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.content
    text = response.content.decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


def _value(families: dict[str, Metric], sample: str, **labels: str) -> float:
    """The value of the sample named `sample` with exactly `labels`, 0 when there is none."""
    return sum(
        s.value
        for family in families.values()
        for s in family.samples
        if s.name == sample and s.labels == labels
    )


def _calls(families: dict[str, Metric], status: str, api: str = "messages") -> float:
    return _value(
        families, "sheaf_provider_calls_total", provider="anthropic", api=api, status=status
    )


# --- Who may scrape -------------------------------------------------------------------------------


def test_without_the_token_it_answers_401_and_shows_nothing(client):
    response = client.get("/metrics")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert response.json()["code"] == "not_authenticated"
    assert "sheaf_" not in response.content.decode()


def test_a_wrong_token_and_a_signed_in_user_who_is_not_staff_get_401(client, alice_client):
    wrong = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN[:-1]}x"})
    assert wrong.status_code == 401
    assert wrong.json()["detail"] == "The Bearer token is not SHEAF_METRICS_TOKEN."

    assert alice_client.get("/metrics").status_code == 401
    other_scheme = client.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"})
    assert other_scheme.status_code == 401


def test_the_token_gets_the_text_format_never_cached(client):
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "no-store" in response["Cache-Control"]
    names = {family.name for family in text_string_to_metric_families(response.content.decode())}
    assert names >= FAMILIES - {"sheaf_batch_duration_seconds"}  # no batch has finished yet


def test_a_signed_in_staff_user_sees_the_metrics_without_a_token(staff_client):
    response = staff_client.get("/metrics")

    assert response.status_code == 200
    assert "sheaf_queue_depth 0.0" in response.content.decode()


def test_without_a_configured_token_only_staff_may_look(
    client, alice_client, staff_client, settings
):
    settings.SHEAF_METRICS_TOKEN = ""

    for anonymous in (client.get("/metrics"), alice_client.get("/metrics")):
        assert anonymous.status_code == 403
        assert "SHEAF_METRICS_TOKEN" in anonymous.json()["detail"]
    # An empty token configured is no token: "Bearer " alone opens nothing.
    assert client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 403
    assert staff_client.get("/metrics").status_code == 200


def test_a_short_token_stops_the_process_at_start_up():
    started = subprocess.run(
        [sys.executable, "-c", "import batchsite.settings"],
        env={**os.environ, "SHEAF_METRICS_TOKEN": "secret"},
        capture_output=True,
        text=True,
    )

    assert started.returncode != 0
    assert "SHEAF_METRICS_TOKEN must be at least 32 characters" in started.stderr


def test_only_reads_are_allowed(client):
    response = client.post("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})

    assert response.status_code == 405


def test_a_scrape_costs_three_queries(client, alice, django_assert_num_queries):
    batch = BatchFactory(user=alice, status="processing")
    DocumentFactory(batch=batch, status="queued", next_attempt_at=timezone.now())
    DocumentFactory(batch=batch, status="completed")

    with django_assert_num_queries(3):
        _scrape(client)


# --- What the database knows ----------------------------------------------------------------------


def test_documents_by_status_and_error_kind_with_their_attempts(
    alice, django_capture_on_commit_callbacks
):
    batch = BatchFactory(user=alice)
    add_documents(batch, 3)
    with django_capture_on_commit_callbacks(execute=True):
        run_documents(["ok", "fail", "ok"])

    families = _scrape()

    assert _value(families, "sheaf_documents", status="completed", error_kind="") == 2
    assert _value(families, "sheaf_documents", status="failed", error_kind="permanent") == 1
    assert _value(families, "sheaf_documents", status="queued", error_kind="") == 0
    assert _value(families, "sheaf_document_attempts", status="completed", error_kind="") == 2
    # The batch took under ten seconds and finished with an error.
    labels = {"status": "completed_with_errors"}
    assert _value(families, "sheaf_batch_duration_seconds_bucket", le="10.0", **labels) == 1
    assert _value(families, "sheaf_batch_duration_seconds_bucket", le="+Inf", **labels) == 1
    assert _value(families, "sheaf_batch_duration_seconds_gcount", **labels) == 1


def test_batch_durations_are_bucketed_over_the_last_day(alice):
    now = timezone.now()

    def finished(status: str, *, took: timedelta, ago: timedelta) -> None:
        BatchFactory(user=alice, status=status, started_at=now - ago - took, completed_at=now - ago)

    finished("completed", took=timedelta(minutes=3), ago=timedelta(hours=1))
    finished("completed", took=timedelta(hours=2, minutes=30), ago=timedelta(hours=5))
    finished("failed", took=timedelta(seconds=20), ago=timedelta(minutes=1))
    finished("completed", took=timedelta(minutes=1), ago=timedelta(hours=25))  # too long ago
    BatchFactory(user=alice, status="processing", started_at=now - timedelta(hours=1))

    families = _scrape()

    def bucket(le: str, status: str = "completed") -> float:
        return _value(families, "sheaf_batch_duration_seconds_bucket", le=le, status=status)

    assert [bucket(le) for le in ("60.0", "300.0", "7200.0", "14400.0", "+Inf")] == [0, 1, 1, 2, 2]
    assert [bucket(le, "failed") for le in ("10.0", "30.0", "+Inf")] == [0, 1, 1]
    gsum = _value(families, "sheaf_batch_duration_seconds_gsum", status="completed")
    assert gsum == pytest.approx(3 * 60 + 2.5 * 3600)


def test_queue_depth_and_the_oldest_due_documents_age(alice):
    batch = BatchFactory(user=alice, status="processing")
    now = timezone.now()
    DocumentFactory(batch=batch, status="queued", next_attempt_at=now - timedelta(minutes=10))
    DocumentFactory(batch=batch, status="queued", next_attempt_at=now + timedelta(hours=1))
    DocumentFactory(batch=batch, status="processing", lease_token=uuid.uuid4())

    families = _scrape()

    assert _value(families, "sheaf_queue_depth") == 2
    assert _value(families, "sheaf_queue_due") == 1
    assert 600 <= _value(families, "sheaf_queue_oldest_due_age_seconds") < 660


# --- What processes count -------------------------------------------------------------------------


ACME = "ACME Corp\nInvoice Number: INV-0042\nIssue Date: 2024-03-01\nTotal: 1,234.50 EUR\n"
GLOBEX = "Globex Ltd\nInvoice Number: GX-00017\nIssue Date: 2024-04-02\nTotal: 99.00 USD\n"


@pytest.fixture
def claude(settings, monkeypatch) -> Iterator[FakeAnthropic]:
    """New batches extracted by Claude, through the fake provider on loopback."""
    monkeypatch.setattr(governor, "_governors", {})  # no pause left by another test's 429
    with FakeAnthropic() as server:
        settings.ANTHROPIC_API_KEY, settings.ANTHROPIC_BASE_URL = FAKE_API_KEY, server.base_url
        settings.SHEAF_EXTRACTION_ENGINE = "anthropic"
        yield server
        assert server.errors == []  # every request was one the real API takes


def test_claude_calls_are_counted_by_outcome_and_documents_by_error_kind(alice, claude, settings):
    """An overloaded answer (retried), a bad request (the document fails for good), then a
    success: three calls, one ok, so the API efficiency is a third."""
    settings.SHEAF_RETRY_BASE_SECONDS = 0
    batch = services.batch_create(
        user=alice,
        files=[ContentFile(ACME.encode(), name="acme.txt"), ContentFile(GLOBEX.encode(), "g.txt")],
        prompt="invoice number, issue date, total",
        fields=parse_fields("invoice number\nissue date:date\ntotal:number"),
    )
    claude.script(status=529)
    claude.script(status=400, message="messages: bad request")
    before = _scrape()

    while (claim := pipeline.document_claim()) is not None:
        pipeline.document_process(claim=claim)

    after = _scrape()
    for status in ("overloaded", "client_error", "ok"):
        assert _calls(after, status) - _calls(before, status) == 1, status
    assert _calls(after, "rate_limited") == _calls(before, "rate_limited")
    assert _value(after, "sheaf_documents", status="completed", error_kind="") == 1
    assert _value(after, "sheaf_documents", status="failed", error_kind="permanent") == 1
    attempts = sum(
        _value(after, "sheaf_document_attempts", status=status, error_kind=kind)
        for status, kind in (("completed", ""), ("failed", "permanent"))
    )
    assert attempts == 3  # the overloaded one was attempted twice
    assert _value(after, "sheaf_queue_depth") == 0
    batch.refresh_from_db()
    assert batch.status == BatchProcess.Status.COMPLETED_WITH_ERRORS


BATCH = "/v1/messages/batches/*"


@pytest.mark.parametrize(
    ("answer", "api", "status"),
    [
        ({"status": 429}, "messages", "rate_limited"),
        ({"status": 500}, "messages", "server_error"),
        ({"status": 401, "error_type": "authentication_error"}, "messages", "refused"),
        ({"status": 429, "error_code": "enforced_spend_limit_reached"}, "messages", "refused"),
        ({"status": 200, "disconnect": True}, "messages", "connection_error"),
        ({"status": 200, "delay": 2.5}, "messages", "timeout"),
        ({"status": 529, "path": BATCH, "method": "GET"}, "message_batches", "overloaded"),
    ],
)
def test_each_outcome_of_a_call_is_counted_under_its_status(claude, settings, answer, api, status):
    settings.SHEAF_ANTHROPIC_TIMEOUT_SECONDS = 1
    claude.script(**answer)
    engine = AnthropicEngine()
    before = _scrape()

    with pytest.raises(ExtractionError):
        engine.batch_results("msgbatch_01") if api == "message_batches" else engine.probe()

    after = _scrape()
    assert _calls(after, status, api) - _calls(before, status, api) == 1
    assert (
        sum(_calls(after, s, api) for s in CALL_STATUSES)
        - sum(_calls(before, s, api) for s in CALL_STATUSES)
        == 1
    )


def test_a_count_made_in_another_process_is_summed_until_that_process_is_swept():
    before = _calls(_scrape(), "timeout", api="message_batches")
    count_in_a_worker = (
        "from batchsite.metrics import observe_provider_call as count\n"
        "for _ in range(2): count(provider='anthropic', api='message_batches', status='timeout')\n"
    )

    subprocess.run([sys.executable, "-c", count_in_a_worker], check=True, env=os.environ)  # noqa: S603

    assert _calls(_scrape(), "timeout", api="message_batches") == before + 2
    assert any(metrics_directory().glob("counter_*.db"))
    # The worker has ended: when the cluster starts again, its counts leave the sums.
    assert metrics_files_sweep() >= 1
    assert _calls(_scrape(), "timeout", api="message_batches") == before  # live ones' stay
    assert (metrics_directory() / f"counter_{os.getpid()}.db").exists()  # this one is alive


@pytest.fixture
def receiver(settings) -> Iterator[Receiver]:
    settings.SHEAF_WEBHOOK_ALLOW_PRIVATE = True
    with Receiver() as server:
        yield server


def _lag(families: dict[str, Metric], sample: str, **labels: str) -> float:
    return _value(
        families, f"sheaf_event_delivery_lag_seconds{sample}", channel="webhook", **labels
    )


def test_a_webhook_delivered_three_seconds_after_its_event_is_observed_as_its_lag(
    alice, receiver, django_capture_on_commit_callbacks
):
    webhook_endpoint_create(user=alice, url=receiver.url(), events=["batch.completed"])
    batch = BatchFactory(user=alice)
    add_documents(batch, 1)
    with django_capture_on_commit_callbacks(execute=True):
        run_documents(["ok"])
    Event.objects.update(created_at=timezone.now() - timedelta(seconds=3))
    before = _scrape()

    run_queued_notifications()

    assert WebhookDelivery.objects.get().status == "delivered"
    after = _scrape()
    assert _lag(after, "_count") - _lag(before, "_count") == 1
    assert 3 <= _lag(after, "_sum") - _lag(before, "_sum") < 10
    assert _lag(after, "_bucket", le="2.5") == _lag(before, "_bucket", le="2.5")
    assert _lag(after, "_bucket", le="5.0") - _lag(before, "_bucket", le="5.0") == 1


def test_observe_event_delivery_records_other_channels_in_their_own_series():
    before = _scrape()

    observe_event_delivery(0.02, "websocket")

    after = _scrape()

    def count(families: dict[str, Metric]) -> float:
        return _value(families, "sheaf_event_delivery_lag_seconds_count", channel="websocket")

    assert count(after) - count(before) == 1


@pytest.mark.cluster
@pytest.mark.django_db(transaction=True)
def test_a_webhook_delivered_by_a_real_worker_is_counted_in_the_web_process(
    alice, receiver, settings, tmp_path
):
    """The count is made in a django-q2 worker process, and this process's scrape sums it."""
    settings.SHEAF_EXTRACTION_ENGINE = "local"
    webhook_endpoint_create(user=alice, url=receiver.url(), events=["batch.completed"])
    services.batch_create(
        user=alice,
        files=[ContentFile(b"Invoice number: INV-1\nTotal: 1.00 EUR\n", name="1.txt")],
        prompt="invoice number, total",
    )
    metrics_files_sweep()  # as the cluster will when it starts: the sums before hold
    before = _scrape()
    cluster = Cluster(tmp_path / "cluster.log", SHEAF_WEBHOOK_ALLOW_PRIVATE="1")
    try:
        cluster.start()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not receiver.requests:
            time.sleep(0.5)
        time.sleep(1)  # the worker records the delivery after the answer
    finally:
        cluster.stop()

    assert WebhookDelivery.objects.get().status == "delivered"
    after = _scrape()
    assert _lag(after, "_count") - _lag(before, "_count") == 1
    assert _value(after, "sheaf_documents", status="completed", error_kind="") == 1
