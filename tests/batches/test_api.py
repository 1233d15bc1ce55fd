from __future__ import annotations

import json
import re
import uuid
from decimal import Decimal

import pytest
from django.contrib.staticfiles import finders
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError
from django.test import Client

from accounts.selectors import user_usage
from accounts.services import api_key_create
from batches.models import BatchProcess
from batches.services import batch_create, batch_create_once
from batchsite.errors import Rejected
from documents.models import Document
from tests.factories import BatchFactory, DocumentFactory
from tests.support.documents import invoice_upload, invoice_uploads, report_upload

PROMPT = "invoice number, date and total"
BATCH_KEYS = {
    "id", "name", "status", "mode", "engine", "prompt", "fields", "paused_reason", "budget_usd",
    "run", "counts", "progress_percent", "eta_seconds", "cost", "value_counts",
    "reviewed_documents", "checks", "created_at", "started_at", "completed_at", "start_at",
}  # fmt: skip
DOCUMENT_KEYS = {
    "id",
    "filename",
    "status",
    "attempts",
    "pages",
    "error",
    "result",
    "checks",
    "cost_usd",
}


@pytest.fixture(autouse=True)
def offline(settings):
    settings.SHEAF_EXTRACTION_ENGINE = "auto"
    settings.ANTHROPIC_API_KEY = ""


def bearer_for(user) -> Client:
    _, secret = api_key_create(user=user, name="tests")
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}")


@pytest.fixture
def api(alice) -> Client:
    return bearer_for(alice)


def upload(client: Client, files, **data) -> object:
    headers = data.pop("headers", {})
    return client.post(
        "/api/v1/batches/", {"prompt": PROMPT, **data, "files": files}, headers=headers
    )


def service_message(**submission) -> str:
    with pytest.raises(Rejected) as caught:
        batch_create(prompt=PROMPT, **submission)
    return str(caught.value)


@pytest.fixture
def finished_batch(alice) -> BatchProcess:
    batch = BatchFactory(
        user=alice,
        name="March invoices",
        status=BatchProcess.Status.COMPLETED_WITH_ERRORS,
        total_documents=2,
        processed_documents=2,
        failed_documents=1,
    )
    DocumentFactory(
        batch=batch,
        original_filename="a.pdf",
        status=Document.Status.COMPLETED,
        attempts=1,
        page_count=2,
        cost_usd=Decimal("0.001200"),
        result={
            "engine": "local",
            "model": None,
            "fields": {
                "invoice number": {"value": "INV-7", "quote": "INV-7", "page": 1, "verified": True},
                "date": {"value": "2024-03-01", "quote": None, "page": None, "verified": False},
                "total": {"value": None, "quote": None, "page": None, "verified": False},
            },
        },
    )
    DocumentFactory(
        batch=batch,
        original_filename="b.pdf",
        status=Document.Status.FAILED,
        attempts=3,
        error_code="no_text_layer",
        error_message="b.pdf: page 1 is an image with no text layer.",
        error_kind=Document.ErrorKind.PERMANENT,
    )
    return batch


# --- Anonymous, other users, wrong methods -------------------------------------------------------

SOME_ID = uuid.uuid4()
ENDPOINTS = [
    ("get", "/api/v1/batches/"),
    ("post", "/api/v1/batches/"),
    ("get", f"/api/v1/batches/{SOME_ID}/"),
    ("post", f"/api/v1/batches/{SOME_ID}/retry/"),
    ("post", f"/api/v1/batches/{SOME_ID}/cancel/"),
    ("get", f"/api/v1/batches/{SOME_ID}/results/?format=csv"),
    ("get", f"/api/v1/batches/{SOME_ID}/runs/"),
    ("post", f"/api/v1/batches/{SOME_ID}/runs/"),
    ("get", f"/api/v1/batches/{SOME_ID}/runs/1/diff/"),
    ("post", f"/api/v1/batches/{SOME_ID}/runs/1/keep/"),
    ("get", f"/api/v1/documents/{SOME_ID}/"),
    ("get", "/api/v1/me/"),
]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_every_endpoint_is_401_for_an_anonymous_caller(db, method, path):
    response = getattr(Client(), method)(path)

    assert response.status_code == 401
    assert response.json() == {
        "code": "not_authenticated",
        "detail": "Authentication credentials were not provided.",
    }
    assert response["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("get", ""),
        ("post", "retry/"),
        ("post", "cancel/"),
        ("get", "results/?format=csv"),
        ("get", "runs/"),
        ("post", "runs/"),
        ("get", "runs/1/diff/"),
        ("post", "runs/1/keep/"),
    ],
)
def test_another_users_batch_is_404_and_untouched(bob, finished_batch, method, suffix):
    response = getattr(bearer_for(bob), method)(f"/api/v1/batches/{finished_batch.pk}/{suffix}")

    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "detail": "No such batch."}
    finished_batch.refresh_from_db()
    assert finished_batch.status == BatchProcess.Status.COMPLETED_WITH_ERRORS
    assert finished_batch.documents.filter(status=Document.Status.FAILED).count() == 1


def test_another_users_document_is_404(bob, finished_batch):
    document = finished_batch.documents.first()

    response = bearer_for(bob).get(f"/api/v1/documents/{document.pk}/")

    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "detail": "No such document."}


def test_another_users_batch_is_not_listed(bob, finished_batch):
    assert bearer_for(bob).get("/api/v1/batches/").json()["count"] == 0


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("delete", "/api/v1/batches/"),
        ("put", "/api/v1/batches/{id}/"),
        ("delete", "/api/v1/batches/{id}/"),
        ("get", "/api/v1/batches/{id}/retry/"),
        ("get", "/api/v1/batches/{id}/cancel/"),
        ("post", "/api/v1/batches/{id}/results/"),
        ("post", "/api/v1/documents/{doc}/"),
        ("post", "/api/v1/me/"),
    ],
)
def test_a_wrong_method_is_405(api, finished_batch, method, path):
    path = path.format(id=finished_batch.pk, doc=finished_batch.documents.first().pk)

    response = getattr(api, method)(path)

    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


# --- Creating a batch ----------------------------------------------------------------------------


def test_a_key_creates_a_batch_from_real_pdfs_with_every_document_queued(alice, api, media_files):
    response = upload(
        api,
        [invoice_upload(), report_upload()],
        name="Q1",
        description="from the API",
        fields="invoice number\ndate:date\ntotal:number -- with currency",
    )

    assert response.status_code == 201
    body = response.json()
    assert set(body) == BATCH_KEYS | {"documents"}
    batch = BatchProcess.objects.get(pk=body["id"])
    assert batch.user == alice
    assert batch.description == "from the API"
    assert body["name"] == "Q1"
    assert body["status"] == "queued"
    assert body["mode"] == "standard"
    assert body["engine"] == "local"
    assert body["prompt"] == PROMPT
    assert body["fields"] == [
        {"name": "invoice number", "type": "string", "description": ""},
        {"name": "date", "type": "date", "description": ""},
        {"name": "total", "type": "number", "description": "with currency"},
    ]
    assert body["counts"] == {
        "total": 2, "queued": 2, "processing": 0, "completed": 0, "failed": 0, "canceled": 0
    }  # fmt: skip
    assert body["progress_percent"] == 0
    assert body["cost"] == {"estimated_usd": None, "actual_usd": "0.000000"}
    assert [d["filename"] for d in body["documents"]] == ["invoice.pdf", "report.pdf"]
    for document in body["documents"]:
        assert set(document) == DOCUMENT_KEYS
        assert document["status"] == "queued"
        assert document["error"] is None and document["result"] is None
    assert len(media_files()) == 2


def test_fields_may_be_a_json_list(api):
    fields = [{"name": "supplier", "type": "string", "description": "who billed"}, "total"]

    response = upload(api, [invoice_upload()], fields=json.dumps(fields))

    assert response.status_code == 201
    assert response.json()["fields"] == [
        {"name": "supplier", "type": "string", "description": "who billed"},
        {"name": "total", "type": "string", "description": ""},
    ]


LINE_ITEMS = (
    "invoice number!\n"
    "line items: table(description; quantity:number; unit price:number -- net; amount:number)"
    " -- one row per invoice line"
)


def test_a_batch_with_a_table_field_shows_it_in_get(api):
    response = upload(api, [invoice_upload()], fields=LINE_ITEMS)
    assert response.status_code == 201

    body = api.get(f"/api/v1/batches/{response.json()['id']}/").json()

    invoice_number, line_items = body["fields"]
    assert invoice_number == {
        "name": "invoice number", "type": "string", "description": "", "required": True
    }  # fmt: skip
    assert line_items.pop("columns") == [
        {"name": name, "type": type_, "description": description}
        for name, type_, description in [
            ("description", "string", ""),
            ("quantity", "number", ""),
            ("unit price", "number", "net"),
            ("amount", "number", ""),
        ]
    ]
    assert line_items == {
        "name": "line items", "type": "table", "description": "one row per invoice line"
    }  # fmt: skip


def test_a_table_field_in_json_gives_the_same_batch_as_the_text(api):
    fields = [
        {"name": "invoice number", "required": True},
        {
            "name": "line items",
            "type": "table",
            "description": "one row per invoice line",
            "columns": [
                "description",
                {"name": "quantity", "type": "number"},
                {"name": "unit price", "type": "number", "description": "net"},
                {"name": "amount", "type": "number"},
            ],
        },
    ]

    from_json = upload(api, [invoice_upload()], fields=json.dumps(fields))
    from_text = upload(api, [invoice_upload()], fields=LINE_ITEMS)

    assert from_json.status_code == 201
    assert from_json.json()["fields"] == from_text.json()["fields"]


def test_a_bad_table_field_is_400_with_every_problem_and_nothing_stored(api, media_files):
    fields = [
        {"name": "line items", "type": "table"},
        {"name": "rows", "type": "table", "columns": ["a", "A", {"name": "b", "type": "list"}]},
        {"name": "total", "columns": ["x"]},
    ]

    response = upload(api, [invoice_upload()], fields=json.dumps(fields))

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_fields"
    assert response.json()["detail"] == (
        "fields: 4 problems in the fields: Field 'line items': a table needs at least one column. "
        "Field 'rows', column 'A' is listed twice. "
        "Field 'rows', column 'b': unknown type 'list'; use one of string, number, date, boolean. "
        "Field 'total': only a table field has columns."
    )
    assert media_files() == []
    assert not BatchProcess.objects.exists()


@pytest.mark.parametrize(
    ("fields", "detail"),
    [
        ("total:money", "fields: Field 'total': unknown type 'money'"),
        ('[{"type": "date"}]', "fields: Field 1: a field needs a name."),
        ("[not json", "fields: Fields look like JSON but do not parse"),
    ],
)
def test_bad_fields_are_400_invalid_fields(api, media_files, fields, detail):
    response = upload(api, [invoice_upload()], fields=fields)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_fields"
    assert response.json()["detail"].startswith(detail)
    assert media_files() == []


def test_a_missing_prompt_and_no_files_get_the_services_messages(api):
    response = api.post("/api/v1/batches/", {})

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_prompt"
    assert [p["code"] for p in body["problems"]] == ["invalid_prompt", "no_files"]
    assert "Choose at least one file to upload." in body["detail"]


def test_a_free_user_sending_two_files_gets_too_many_files_like_the_dashboard(frank, media_files):
    files = [invoice_upload(), report_upload()]
    expected = service_message(user=frank, files=files)

    response = upload(bearer_for(frank), [invoice_upload(), report_upload()])

    assert response.status_code == 400
    assert response.json() == {"code": "too_many_files", "detail": expected}
    assert "Free plan allows 1 file per batch" in expected
    assert media_files() == []


def test_a_file_over_the_plans_size_is_file_too_large(alice, api, settings, media_files):
    settings.SHEAF_PLAN_LIMITS = {"plus": {"max_file_size": 1_000}}
    expected = service_message(user=alice, files=[report_upload()])

    response = upload(api, [report_upload()])

    assert response.status_code == 400
    assert response.json() == {"code": "file_too_large", "detail": expected}
    assert media_files() == []


def test_html_named_pdf_is_unsupported_type(alice, api, media_files):
    fake = SimpleUploadedFile("invoice.pdf", b"<html><body>hi</body></html>")

    response = upload(api, [fake])

    assert response.status_code == 400
    assert response.json()["code"] == "unsupported_type"
    assert "invoice.pdf" in response.json()["detail"]
    assert media_files() == []


def test_over_the_months_quota_is_403_quota_exceeded(alice, api, settings, media_files):
    settings.SHEAF_PLAN_LIMITS = {"plus": {"documents_per_month": 1}}
    expected = service_message(user=alice, files=invoice_uploads(2))

    response = upload(api, invoice_uploads(2))

    assert response.status_code == 403
    assert response.json() == {"code": "quota_exceeded", "detail": expected}
    assert not BatchProcess.objects.exists()


def test_over_the_hours_submissions_is_429_with_retry_after(frank, settings, media_files):
    settings.SHEAF_PLAN_LIMITS = {"free": {"submissions_per_hour": 1}}
    client = bearer_for(frank)
    assert upload(client, [invoice_upload()]).status_code == 201
    expected = service_message(user=frank, files=[invoice_upload()])

    response = upload(client, [invoice_upload()])

    assert response.status_code == 429
    assert response.json() == {"code": "rate_limited", "detail": expected}
    assert 3500 <= int(response["Retry-After"]) <= 3601
    assert BatchProcess.objects.filter(user=frank).count() == 1
    assert len(media_files()) == 1


def test_economy_mode_on_plus_is_403_plan_limit(api):
    response = upload(api, [invoice_upload()], mode="economy")

    assert response.status_code == 403
    assert response.json()["code"] == "plan_limit"


def test_the_same_idempotency_key_returns_the_same_batch_never_a_second(alice, bob, api):
    headers = {"Idempotency-Key": "order-42"}

    first = upload(api, [invoice_upload()], headers=headers)
    again = upload(api, [invoice_upload()], headers=headers)

    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert BatchProcess.objects.filter(user=alice).count() == 1
    assert Document.objects.filter(user=alice).count() == 1
    # Keys belong to their user: Bob's "order-42" is his own batch.
    bobs = upload(bearer_for(bob), [invoice_upload()], headers=headers)
    assert bobs.status_code == 201
    assert bobs.json()["id"] != first.json()["id"]
    # Without a key, every request is a new batch.
    assert upload(api, [invoice_upload()]).status_code == 201
    assert BatchProcess.objects.filter(user=alice).count() == 2


def test_a_repeated_key_is_answered_even_when_the_hours_limit_is_reached(frank, settings):
    settings.SHEAF_PLAN_LIMITS = {"free": {"submissions_per_hour": 1}}
    client = bearer_for(frank)
    headers = {"Idempotency-Key": "once"}
    first = upload(client, [invoice_upload()], headers=headers)

    again = upload(client, [invoice_upload()], headers=headers)

    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]


def test_a_session_user_may_use_the_api_too(alice, alice_client):
    response = upload(alice_client, [invoice_upload()])

    assert response.status_code == 201
    assert BatchProcess.objects.get().user == alice


# --- Reading -------------------------------------------------------------------------------------


def test_the_batch_detail_has_counts_cost_and_documents(api, finished_batch):
    body = api.get(f"/api/v1/batches/{finished_batch.pk}/").json()

    assert body["id"] == str(finished_batch.pk)
    assert body["status"] == "completed_with_errors"
    assert body["counts"] == {
        "total": 2, "queued": 0, "processing": 0, "completed": 1, "failed": 1, "canceled": 0
    }  # fmt: skip
    assert body["progress_percent"] == 100
    assert body["eta_seconds"] is None
    assert body["cost"]["actual_usd"] == "0.001200"
    done, failed = body["documents"]
    assert done["filename"] == "a.pdf"
    assert done["pages"] == 2
    assert done["cost_usd"] == "0.001200"
    assert done["error"] is None
    assert done["result"]["fields"]["invoice number"] == {
        "value": "INV-7", "quote": "INV-7", "page": 1, "verified": True, "review": None
    }  # fmt: skip
    assert body["reviewed_documents"] == 0
    assert failed["status"] == "failed"
    assert failed["attempts"] == 3
    assert failed["error"] == {
        "code": "no_text_layer",
        "message": "b.pdf: page 1 is an image with no text layer.",
        "kind": "permanent",
    }


def test_the_list_is_paginated_newest_first_and_filters_by_status(alice, api):
    batches = [BatchFactory(user=alice) for _ in range(22)]
    BatchProcess.objects.filter(pk=batches[0].pk).update(status=BatchProcess.Status.FAILED)

    first = api.get("/api/v1/batches/").json()
    second = api.get(first["next"]).json()
    failed = api.get("/api/v1/batches/?status=failed").json()

    assert first["count"] == 22
    assert first["previous"] is None
    assert len(first["results"]) == 20
    assert set(first["results"][0]) == BATCH_KEYS
    assert len(second["results"]) == 2
    assert second["next"] is None
    assert [b["id"] for b in failed["results"]] == [str(batches[0].pk)]


def test_an_unknown_status_filter_is_400(api):
    response = api.get("/api/v1/batches/?status=done")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert response.json()["detail"].startswith("status:")


def test_an_empty_status_filter_is_400_not_every_batch(alice, api):
    BatchFactory(user=alice)

    response = api.get("/api/v1/batches/?status=")

    assert response.status_code == 400
    assert response.json()["detail"] == "status: Give a status, or leave the parameter out."


def test_a_document_has_its_result_with_quotes(api, finished_batch):
    document = finished_batch.documents.get(original_filename="a.pdf")

    body = api.get(f"/api/v1/documents/{document.pk}/").json()

    assert body["id"] == str(document.pk)
    assert body["batch"] == str(finished_batch.pk)
    assert body["filename"] == "a.pdf"
    assert body["status"] == "completed"
    assert body["result"]["fields"]["invoice number"]["quote"] == "INV-7"
    assert body["content_type"] == "application/pdf"


def test_me_shows_plan_limits_and_usage(alice, api):
    upload(api, [invoice_upload(), report_upload()])

    body = api.get("/api/v1/me/").json()

    assert body["email"] == "alice@example.com"
    assert body["plan"] == {"key": "plus", "name": "Plus", "source": "override"}
    assert body["limits"]["files_per_batch"] == 25
    assert body["limits"]["max_file_size"] == 25 * 1024 * 1024
    assert body["limits"]["documents_per_month"] == 1000
    assert body["limits"]["economy_lane"] is False
    assert body["limits"]["webhooks"] is True
    assert set(body["limits"]) >= {"batch_upload", "submissions_per_hour", "priority"}
    assert body["usage"] == {"documents_this_month": 2, "submissions_last_hour": 1}


# --- Controls ------------------------------------------------------------------------------------


def test_retry_requeues_the_failed_documents(api, finished_batch):
    # A provider error that spent its attempts: a retry may well fix it.
    finished_batch.documents.filter(original_filename="b.pdf").update(
        error_code="provider_error", error_kind=Document.ErrorKind.GAVE_UP
    )

    response = api.post(f"/api/v1/batches/{finished_batch.pk}/retry/")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "processing"
    assert body["counts"]["queued"] == 1
    failed = finished_batch.documents.get(original_filename="b.pdf")
    assert failed.status == Document.Status.QUEUED
    assert failed.attempts == 0


def test_retry_of_failures_a_retry_cannot_fix_is_409_with_the_fix(api, finished_batch):
    # b.pdf failed for good (no text layer): it would fail the same way again.
    response = api.post(f"/api/v1/batches/{finished_batch.pk}/retry/")

    assert response.status_code == 409
    assert response.json() == {
        "code": "conflict",
        "detail": "A retry cannot fix the failed documents of “March invoices”: b.pdf "
        "(no_text_layer: upload a clearer scan, or a PDF with its text).",
    }
    assert finished_batch.documents.get(original_filename="b.pdf").status == "failed"


def test_retry_with_nothing_failed_is_409(alice, api):
    batch = BatchFactory(user=alice, status=BatchProcess.Status.COMPLETED)
    DocumentFactory(batch=batch, status=Document.Status.COMPLETED)

    response = api.post(f"/api/v1/batches/{batch.pk}/retry/")

    assert response.status_code == 409
    assert response.json()["code"] == "conflict"


def test_cancel_cancels_the_queued_documents(api, alice):
    created = upload(api, [invoice_upload(), report_upload()]).json()

    response = api.post(f"/api/v1/batches/{created['id']}/cancel/")

    assert response.status_code == 200
    assert response.json()["status"] == "canceled"
    assert response.json()["counts"]["canceled"] == 2
    assert set(Document.objects.values_list("status", flat=True)) == {"canceled"}
    again = api.post(f"/api/v1/batches/{created['id']}/cancel/")
    assert again.status_code == 409
    assert again.json()["code"] == "conflict"


# --- Results -------------------------------------------------------------------------------------


def test_results_as_csv_are_the_csv_not_swallowed_by_a_format_override(api, finished_batch):
    response = api.get(f"/api/v1/batches/{finished_batch.pk}/results/?format=csv")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="march-invoices-results.csv"' in response["Content-Disposition"]
    text = response.content.decode("utf-8-sig")
    header, first = text.splitlines()[:2]
    assert header.startswith("filename,status,error_code,error_message,engine,cost_usd")
    assert first.startswith("a.pdf,completed,")
    assert "INV-7" in first


def test_results_default_to_json_and_other_formats_download(api, finished_batch):
    base = f"/api/v1/batches/{finished_batch.pk}/results/"

    default = api.get(base)
    markdown = api.get(base + "?format=md")
    xlsx = api.get(base + "?format=xlsx", HTTP_ACCEPT="text/csv")

    assert default["Content-Type"].startswith("application/json")
    assert "INV-7" in default.content.decode()
    assert "| a.pdf |" in markdown.content.decode()
    assert xlsx.status_code == 200
    assert xlsx.content[:2] == b"PK"


def test_an_unknown_results_format_is_400_invalid_format(api, finished_batch):
    response = api.get(f"/api/v1/batches/{finished_batch.pk}/results/?format=pdf")

    assert response.status_code == 400
    assert response.json() == {
        "code": "invalid_format",
        "detail": "Unknown results format 'pdf'; use one of csv, json, md, xlsx, items.csv.",
    }


def test_an_empty_results_format_is_400_not_json(api, finished_batch):
    response = api.get(f"/api/v1/batches/{finished_batch.pk}/results/?format=")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_format"


# --- Schema and docs -----------------------------------------------------------------------------


def test_the_schema_is_openapi_3_listing_every_path(db):
    response = Client().get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert set(schema["paths"]) >= {
        "/api/v1/batches/",
        "/api/v1/batches/{batch_id}/",
        "/api/v1/batches/{batch_id}/retry/",
        "/api/v1/batches/{batch_id}/cancel/",
        "/api/v1/batches/{batch_id}/results/",
        "/api/v1/documents/{document_id}/",
        "/api/v1/me/",
        "/api/v1/keys/",
        "/api/v1/keys/{key_id}/",
    }
    create = schema["paths"]["/api/v1/batches/"]["post"]
    upload_schema = create["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert upload_schema["$ref"].endswith("/BatchCreateInputRequest")
    files = schema["components"]["schemas"]["BatchCreateInputRequest"]["properties"]["files"]
    assert files["items"]["format"] == "binary"
    assert set(schema["components"]["schemas"]["Error"]["properties"]) >= {"code", "detail"}
    assert create["responses"]["429"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/Error"
    )
    assert schema["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    operations = [op for item in schema["paths"].values() for op in item.values()]
    assert all("429" in op["responses"] for op in operations)  # every endpoint is throttled
    upload_required = schema["components"]["schemas"]["BatchCreateInputRequest"]["required"]
    assert set(upload_required) == {"files", "prompt"}
    results = schema["paths"]["/api/v1/batches/{batch_id}/results/"]["get"]["responses"]["200"]
    assert results["content"]["application/json"]["schema"]["$ref"].endswith("/ResultsJson")


def test_the_schema_is_yaml_by_default(db):
    response = Client().get("/api/v1/schema/")

    assert response.status_code == 200
    assert response.content.startswith(b"openapi: 3.")


def test_the_docs_page_uses_only_local_assets(db):
    response = Client().get("/api/v1/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    assert assets
    assert not [a for a in assets if a.startswith(("http:", "https:", "//"))]
    # Nor a script that fetches one (drf-spectacular's default loads Swagger UI from jsDelivr).
    # An address, not the letters "cdn": the page's CSRF token is random and may hold them.
    assert not re.findall(r"(?:https?:)?//[\w.-]+\.\w+/", html)


def test_every_docs_asset_is_a_static_file_installed_here(db, settings):
    html = Client().get("/api/v1/docs/").content.decode()

    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)

    assert {a.rsplit("/", 1)[-1] for a in assets} >= {"swagger-ui-bundle.js", "swagger-ui.css"}
    for asset in assets:
        assert asset.startswith(settings.STATIC_URL), asset
        assert finders.find(asset.removeprefix(settings.STATIC_URL)), asset


def test_the_loser_of_an_idempotency_race_stores_nothing(alice, media_files):
    """Two requests with one key that both miss the look-up: the unique constraint refuses the
    second insert, and its files and quota go back."""

    def submit(**extra):
        return batch_create(user=alice, files=[invoice_upload()], prompt=PROMPT, **extra)

    first = submit(idempotency_key="k")

    with pytest.raises(IntegrityError):
        submit(idempotency_key="k")

    assert list(BatchProcess.objects.values_list("pk", flat=True)) == [first.pk]
    assert len(media_files()) == 1
    assert user_usage(alice).documents_this_month == 1
    assert batch_create_once(
        user=alice, idempotency_key="k", files=[invoice_upload()], prompt=PROMPT
    ) == (first, False)
