"""Schemathesis drives every operation in /api/v1/schema/ against the WSGI app, as a Plus user
with a real API key: no 5xx, every status and body as the schema documents them."""

from __future__ import annotations

import re

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

# Schemathesis imports these lazily, deep inside a Hypothesis draw, where pytest's assertion
# rewriting (schemathesis is a pytest plugin) parses them: CPython 3.11.7's AST constructor can
# fail there ("SystemError: AST constructor recursion depth mismatch"), which Hypothesis reports
# as a flaky test. Imported here, they are parsed at the top of the stack.
import schemathesis.generation.body_overrides  # isort: skip
import schemathesis.generation.dictionaries  # isort: skip
from hypothesis.internal import lambda_sources  # isort: skip

from accounts.models import ApiKey
from accounts.services import api_key_create
from batches.models import BatchProcess
from batchsite.wsgi import application
from documents.models import Document
from tests.factories import BatchFactory, DocumentFactory

CONTENT_CHECKED_BY_SERVICES = {
    "POST /api/v1/batches/",
    "PATCH /api/v1/batches/{batch_id}/",  # a budget's bounds (above 0, cents)
    "POST /api/v1/webhooks/",
    "PATCH /api/v1/documents/{document_id}/review/",
    "PUT /api/v1/documents/{document_id}/original/",
}
WEBHOOK_URL_MAX_LENGTH = 500
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
# Enough to reach every documented status of every operation; the whole run stays near a minute.
EXAMPLES_PER_OPERATION = 50


@pytest.fixture
def open_connection():
    """The WSGI app closes the database connection around each request, which would end the test's
    transaction; Django's test client keeps it open the same way."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def api_key(alice, settings, open_connection) -> tuple[ApiKey, str]:
    # Generated requests come faster than any plan's rate; the throttle has its own tests.
    settings.SHEAF_PLAN_LIMITS = {"plus": {"api_requests_per_minute": 1_000_000}}
    settings.SHEAF_EXTRACTION_ENGINE = "local"
    settings.SHEAF_WEBHOOK_ALLOW_PRIVATE = True  # see adapt_webhook_registration
    return api_key_create(user=alice, name="schemathesis")


ITEM_COLUMNS = ("description", "quantity", "amount")


@pytest.fixture
def alices_batch(alice) -> BatchProcess:
    """Finished with one result and one failure, so retry and every results format answer 200."""
    columns = [{"name": name, "type": "string", "description": ""} for name in ITEM_COLUMNS]
    fields = [
        {"name": "total", "type": "number", "description": ""},
        {"name": "date", "type": "date", "description": ""},
        {"name": "line items", "type": "table", "description": "", "columns": columns},
    ]
    batch = BatchFactory(
        user=alice, status=BatchProcess.Status.COMPLETED_WITH_ERRORS, fields=fields
    )
    row = {"quote": "Consulting 2 150.00 300.00", "page": 1, "pages": [1, 2], "status": "checked"}
    common = {"source": "text", "verified": True, "review": None}
    result = {
        "engine": "local",
        "model": None,
        "fields": {
            "total": {"value": "300.00", "quote": "300.00", "page": 2, "status": "found", **common},
            "date": {"value": None, "quote": None, "page": None, "status": "invalid",
                     "raw": "Aug 3 , 2014", "reason": "not a date", **common},
            "line items": {
                "value": [{"description": "Consulting", "quantity": "2", "amount": "300.00"}],
                "rows": [row], "quote": None, "page": 1, "status": "checked", **common,
            },
        },
        "checks": {"status": "reconciled", "failures": []},
    }  # fmt: skip
    DocumentFactory(batch=batch, status=Document.Status.COMPLETED, result=result)
    DocumentFactory(batch=batch, status=Document.Status.FAILED, error_code="malformed")
    return batch


def point_half_the_ids_at(case, batch: BatchProcess) -> None:
    """Random UUIDs only ever find nothing (404); about half the generated ids are swapped for
    Alice's batch and document, so the 200s (detail, results files, retry, cancel) are checked too.
    """
    params = case.path_parameters or {}
    real = {"batch_id": batch.pk, "document_id": batch.documents.first().pk}
    for name, value in real.items():
        generated = str(params.get(name, ""))
        # Only well-formed ids: a malformed one is the point of a negative case.
        if re.fullmatch(UUID, generated) and generated[0] in "01234567":
            params[name] = str(value)


def adapt_webhook_registration(case) -> None:
    """Registering a webhook resolves its host, so generated host names would send DNS queries
    off this machine: a loopback address literal resolves without any. And Werkzeug's multipart
    encoder loses an empty part, which would turn the negative case `events=[""]` into "no events
    sent" (all events, rightly accepted): an unknown name keeps the case negative."""
    body = case.body
    if case.operation.label != "POST /api/v1/webhooks/" or not isinstance(body, dict):
        return
    url = body.get("url")
    if isinstance(url, str) and len(url) <= WEBHOOK_URL_MAX_LENGTH:  # longer is a negative case
        body["url"] = "http://127.0.0.1:9/sheaf-hook"
    events = body.get("events")
    if "multipart" in (case.media_type or "") and isinstance(events, list) and "" in events:
        body["events"] = [event or "no-such-event" for event in events]


def adapt_empty_start_at(case) -> None:
    """The same encoder loses an upload's empty `start_at` (not a date-time: a negative case),
    which would then be "not sent" (start at once, rightly accepted); a time that is no time
    keeps the case negative."""
    body = case.body
    upload = case.operation.label == "POST /api/v1/batches/" and isinstance(body, dict)
    if upload and body.get("start_at") == "":
        body["start_at"] = "no time"


@pytest.fixture(autouse=True)
def lambda_descriptions_that_cannot_fail(monkeypatch):
    """Hypothesis parses a strategy's lambda only to describe it (a repr), deep in a draw, where
    the same CPython bug can strike: a description is cosmetic, so it falls back to Hypothesis's
    own "unknown" rather than failing the draw."""
    describe = lambda_sources._lambda_description

    def described(f, *args, **kwargs):
        try:
            return describe(f, *args, **kwargs)
        except SystemError:
            return "lambda: <unknown>"

    monkeypatch.setattr(lambda_sources, "_lambda_description", described)


# Loaded at collection: the schema view needs no database. (`schemathesis.pytest.from_fixture`
# would load it per test, but does not work with pytest 9.)
schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", application).exclude(
    # A stream of events stays open until the client leaves, so it cannot be read whole here;
    # tests/notifications/test_live.py follows it over a real connection.
    path="/api/v1/events/"
)
schema.config.generation.update(
    max_examples=EXAMPLES_PER_OPERATION,
    # The same cases on every run, so the suite cannot pass or fail by chance. (Unseeded runs with
    # max_examples=100 found the problems fixed alongside this test; run them after API changes.)
    deterministic=True,
    # DRF refuses NUL in any text ("Null characters are not allowed"): PostgreSQL cannot store it.
    allow_x00=False,
    # Unknown query parameters are ignored, as most HTTP APIs do, rather than refused.
    allow_extra_parameters=False,
)


@schema.parametrize()
@hypothesis_settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_the_schema_documents(case, api_key, alices_batch):
    _, secret = api_key
    point_half_the_ids_at(case, alices_batch)
    adapt_webhook_registration(case)
    adapt_empty_start_at(case)
    excluded = []
    if case.operation.label in CONTENT_CHECKED_BY_SERVICES:
        # A schema cannot say "a real PDF", "a public address" or "a field of this batch": such
        # generated input is refused (unsupported_type, invalid, invalid_review), which is
        # right. The 400s must still be documented and shaped as the schema says.
        excluded.append(positive_data_acceptance)
    case.call_and_validate(headers={"Authorization": f"Bearer {secret}"}, excluded_checks=excluded)
