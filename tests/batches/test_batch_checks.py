"""Checks over a finished batch (issue 18 part 4): duplicate invoices within the batch and
against the user's earlier batches, values missing per field, outlying totals and dates, the
currency mix; recomputed after a review; shown in the API, the JSON export, the batch page and
as review reasons."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from batches import services
from batches.checks import batch_checks_refresh, document_check_reasons, normalised
from batches.exports import batch_export
from batches.models import BatchProcess
from batches.pipeline.finishing import batch_refresh
from batches.reviews import document_review
from batches.selectors import batch_review_queue, documents_needing_review
from batches.tasks import drain
from documents.models import Document
from extraction.fields import parse_fields
from samples.invoices import invoice
from tests.batches.test_api import bearer_for
from tests.factories import BatchFactory, DocumentFactory

FIELDS = [
    {"name": "supplier", "type": "string", "description": ""},
    {"name": "invoice number", "type": "string", "description": ""},
    {"name": "date", "type": "date", "description": ""},
    {"name": "total", "type": "number", "description": ""},
]


def _result(values: dict[str, Any], currency: str | None = None) -> dict[str, Any]:
    cells = {}
    for name, value in values.items():
        cells[name] = {
            "value": value,
            "quote": None,
            "page": None,
            "status": "missing" if value is None else "found",
            "source": "text",
        }
    if currency:
        cells["total"]["currency"] = currency
    return {
        "engine": "local",
        "model": None,
        "fields": cells,
        "checks": {"status": "not_checked", "failures": []},
    }


def invoice_values(
    supplier: str | None = "ACME Supplies Ltd",
    number: str | None = "INV-001",
    issued: str | None = "2026-03-01",
    total: str | None = "100.00",
) -> dict[str, Any]:
    return {"supplier": supplier, "invoice number": number, "date": issued, "total": total}


def finished_batch(
    user: User, documents: list[dict[str, Any] | None], *, name: str = "March", **kwargs: Any
) -> BatchProcess:
    """A batch of `documents` (their values, or None for one that failed), finished the way the
    pipeline finishes one."""
    batch = BatchFactory(
        user=user, name=name, fields=FIELDS, status=BatchProcess.Status.PROCESSING, **kwargs
    )
    for number, values in enumerate(documents, start=1):
        if values is None:
            DocumentFactory(
                batch=batch,
                original_filename=f"{number}.pdf",
                status=Document.Status.FAILED,
                error_code="malformed",
                error_message="Not a PDF.",
            )
        else:
            currency = values.pop("currency", None)
            DocumentFactory(
                batch=batch,
                original_filename=f"{number}.pdf",
                status=Document.Status.COMPLETED,
                result=_result(values, currency),
            )
    with transaction.atomic():
        batch_refresh(batch_id=batch.pk)
    batch.refresh_from_db()
    assert batch.is_terminal
    return batch


def _ref(batch: BatchProcess, filename: str) -> dict[str, str]:
    document = batch.documents.get(original_filename=filename)
    return {"id": str(document.pk), "filename": filename}


def test_suppliers_and_numbers_compare_without_case_spaces_or_punctuation() -> None:
    assert normalised("ACME Supplies, Ltd.") == normalised("acme  supplies ltd") != ""
    assert normalised("INV-2024/001") == normalised("inv 2024 001") == "inv2024001"
    assert normalised("Société Générale") == normalised("SOCIETE GENERALE")
    assert normalised(None) == normalised(True) == ""


@pytest.mark.django_db
def test_duplicates_within_a_batch_by_supplier_and_number_or_by_total_and_date(alice) -> None:
    batch = finished_batch(
        alice,
        [
            invoice_values(),
            # The same invoice typed differently: case, spaces and punctuation.
            invoice_values(supplier="acme supplies ltd.", number="inv 001", total="250.00"),
            # Another supplier's invoice with the same total on the same day.
            invoice_values(supplier="Globex", number="G-7", total="100"),
            invoice_values(supplier="Globex", number="G-8", issued="2026-03-02"),
            # Both: the same invoice again.
            invoice_values(),
        ],
    )

    assert batch.checks["duplicates"] == [
        {
            "document": _ref(batch, "2.pdf"),
            "duplicate_of": _ref(batch, "1.pdf"),
            "by": ["supplier_number"],
        },
        {
            "document": _ref(batch, "3.pdf"),
            "duplicate_of": _ref(batch, "1.pdf"),
            "by": ["total_date"],
        },
        {
            "document": _ref(batch, "5.pdf"),
            "duplicate_of": _ref(batch, "1.pdf"),
            "by": ["supplier_number", "total_date"],
        },
    ]
    assert batch.checks["roles"] == {
        "supplier": "supplier",
        "number": "invoice number",
        "total": "total",
        "date": "date",
        "currency": None,
    }


@pytest.mark.django_db
def test_duplicates_are_found_in_the_users_earlier_batches_not_in_another_users(alice, bob) -> None:
    january = finished_batch(alice, [invoice_values(number="INV-9", total="75.00")], name="Jan")
    finished_batch(bob, [invoice_values(number="INV-10", total="80.00")], name="Bob's")

    february = finished_batch(
        alice,
        [
            invoice_values(number="inv-9", total="12.00", issued="2026-02-01"),
            invoice_values(number="INV-10", total="80.00"),
        ],
        name="Feb",
    )

    original = january.documents.get()
    assert february.checks["duplicates"] == [
        {
            "document": _ref(february, "1.pdf"),
            "duplicate_of": {
                "id": str(original.pk),
                "filename": "1.pdf",
                "batch_id": str(january.pk),
                "batch_name": "Jan",
            },
            "by": ["supplier_number"],
        }
    ]
    # The earlier batch is not flagged by a later one.
    january.refresh_from_db()
    assert january.checks["duplicates"] == []


@pytest.mark.django_db
def test_missing_values_make_a_heat_map_of_fields_by_documents(alice) -> None:
    batch = finished_batch(
        alice,
        [
            invoice_values(),
            invoice_values(supplier=None, issued=None, number="INV-2", total="5"),
            None,
        ],
    )

    assert batch.checks["missing"] == {
        "fields": ["supplier", "invoice number", "date", "total"],
        "counts": {"supplier": 1, "invoice number": 0, "date": 1, "total": 0},
        "documents": [
            {**_ref(batch, "1.pdf"), "values": ["present"] * 4},
            {**_ref(batch, "2.pdf"), "values": ["missing", "present", "missing", "present"]},
            {**_ref(batch, "3.pdf"), "values": ["failed"] * 4},
        ],
    }


@pytest.mark.django_db
def test_a_total_far_from_the_usual_and_dates_outside_the_range_or_in_the_future_are_outliers(
    alice,
) -> None:
    today = timezone.localdate()
    usual = [
        ("98.00", 40),
        ("102.50", 38),
        ("110.00", 35),
        ("95.00", 33),
        ("105.00", 30),
        ("115.00", 28),
    ]
    documents = [
        invoice_values(number=f"N-{n}", total=total, issued=str(today - timedelta(days=days)))
        for n, (total, days) in enumerate(usual)
    ]
    documents += [
        invoice_values(number="N-big", total="9800.00", issued=str(today - timedelta(days=31))),
        invoice_values(number="N-old", total="101.00", issued="2019-06-30"),
        invoice_values(number="N-soon", total="99.00", issued=str(today + timedelta(days=10))),
    ]

    batch = finished_batch(alice, documents)

    outliers = {
        (o["document"]["filename"], o["field"], o["value"]): o["message"]
        for o in batch.checks["outliers"]
    }
    assert set(outliers) == {
        ("7.pdf", "total", "9800"),
        ("8.pdf", "date", "2019-06-30"),
        ("9.pdf", "date", str(today + timedelta(days=10))),
    }
    assert outliers[("7.pdf", "total", "9800")] == (
        "total 9800 is far from the batch's usual 102.50"
    )
    assert outliers[("9.pdf", "date", str(today + timedelta(days=10)))].endswith("in the future")
    assert "far from the batch's other dates" in outliers[("8.pdf", "date", "2019-06-30")]


@pytest.mark.django_db
def test_a_wild_total_among_equal_ones_is_an_outlier(alice) -> None:
    """Most totals the same (a subscription): their median deviation is 0, and the spread is
    measured by the mean deviation instead."""
    totals = ["49.00", "49.00", "49.00", "49.00", "4900.00"]
    batch = finished_batch(
        alice, [invoice_values(number=f"S-{n}", total=total) for n, total in enumerate(totals)]
    )

    assert [(o["document"]["filename"], o["value"]) for o in batch.checks["outliers"]] == [
        ("5.pdf", "4900")
    ]


@pytest.mark.django_db
def test_totals_and_dates_are_compared_only_from_five_documents_but_the_future_always(
    alice,
) -> None:
    future = str(timezone.localdate() + timedelta(days=3))
    batch = finished_batch(
        alice,
        [
            invoice_values(number="A", total="10"),
            invoice_values(number="B", total="11"),
            invoice_values(number="C", total="12", issued="2010-01-01"),
            invoice_values(number="D", total="50000", issued=future),
        ],
    )

    assert [(o["document"]["filename"], o["field"]) for o in batch.checks["outliers"]] == [
        ("4.pdf", "date")
    ]


@pytest.mark.django_db
def test_totals_are_compared_within_their_currency_and_the_mix_is_counted(alice) -> None:
    documents = [
        {**invoice_values(number=f"E-{n}", total=total), "currency": "EUR"}
        for n, total in enumerate(["100", "105", "98", "101", "103"])
    ]
    documents += [
        {**invoice_values(number=f"J-{n}", total=total), "currency": "JPY"}
        for n, total in enumerate(["15000", "16000"])
    ]

    batch = finished_batch(alice, documents)

    assert batch.checks["currency_mix"] == {"EUR": 5, "JPY": 2}
    # Yen totals are not far from the euros' usual: they are not compared with them.
    assert batch.checks["outliers"] == []


@pytest.mark.django_db
def test_one_currency_is_no_mix(alice) -> None:
    batch = finished_batch(alice, [{**invoice_values(), "currency": "EUR"}])

    assert batch.checks["currency_mix"] == {}


@pytest.mark.django_db
def test_a_review_correcting_a_number_recomputes_the_checks(alice) -> None:
    batch = finished_batch(
        alice, [invoice_values(total="10"), invoice_values(total="20", issued="2026-04-01")]
    )
    second = batch.documents.get(original_filename="2.pdf")
    assert [d["document"]["filename"] for d in batch.checks["duplicates"]] == ["2.pdf"]

    document_review(user=alice, document_id=second.pk, values={"invoice number": "INV-002"})

    batch.refresh_from_db()
    assert batch.checks["duplicates"] == []
    assert document_check_reasons(batch=batch, document_id=second.pk) == []


@pytest.mark.django_db
def test_possible_duplicates_and_outliers_are_review_reasons(alice, alice_client) -> None:
    future = str(timezone.localdate() + timedelta(days=3))
    batch = finished_batch(
        alice,
        [
            invoice_values(number="A-1"),
            invoice_values(number="B-2", total="5"),
            invoice_values(number="a 1", total="7"),
            invoice_values(number="C-3", total="9", issued=future),
        ],
        name="April",
    )
    _, plain, duplicate, future_dated = batch.documents.order_by("original_filename")

    needing = set(documents_needing_review(batch=batch).values_list("pk", flat=True))
    assert needing == {duplicate.pk, future_dated.pk}
    assert batch_review_queue(batch=batch) == [duplicate.pk, future_dated.pk]

    page = alice_client.get(f"/dashboard/documents/{duplicate.pk}/").content.decode()
    assert "Possible duplicate of 1.pdf (same supplier and number)" in page
    page = alice_client.get(f"/dashboard/documents/{future_dated.pk}/").content.decode()
    assert f"Outlier: date {future} is in the future" in page
    page = alice_client.get(f"/dashboard/documents/{plain.pk}/").content.decode()
    assert "data-check-reason" not in page


@pytest.mark.django_db
def test_the_checks_are_in_the_api_and_the_json_export(alice) -> None:
    batch = finished_batch(alice, [invoice_values(), invoice_values(total="3")])

    body = bearer_for(alice).get(f"/api/v1/batches/{batch.pk}/").json()
    listed = bearer_for(alice).get("/api/v1/batches/").json()["results"][0]
    exported = json.loads(batch_export(batch=batch, fmt="json").content)

    assert body["checks"] == listed["checks"] == exported["batch"]["checks"] == batch.checks
    assert body["checks"]["duplicates"][0]["duplicate_of"]["filename"] == "1.pdf"


@pytest.mark.django_db
def test_a_running_batch_has_no_checks_yet(alice) -> None:
    batch = BatchFactory(user=alice, status=BatchProcess.Status.PROCESSING)
    DocumentFactory(batch=batch, status=Document.Status.QUEUED)

    body = bearer_for(alice).get(f"/api/v1/batches/{batch.pk}/").json()

    assert body["checks"] is None


@pytest.mark.django_db
def test_the_batch_page_shows_the_checks(alice, alice_client) -> None:
    earlier = finished_batch(alice, [invoice_values(number="X-1", total="1")], name="Earlier")
    batch = finished_batch(
        alice,
        [
            {**invoice_values(number="X-1", total="2"), "currency": "EUR"},
            {**invoice_values(number="Y-2", supplier=None), "currency": "USD"},
        ],
        name="Later",
    )
    document = batch.documents.get(original_filename="1.pdf")
    original = earlier.documents.get()

    page = alice_client.get(f"/dashboard/batches/{batch.pk}/").content.decode()

    assert 'id="checks"' in page
    duplicates = page.split("data-duplicates")[1].split("</ul>")[0]
    assert f'href="/dashboard/documents/{document.pk}/"' in duplicates
    assert f'href="/dashboard/documents/{original.pk}/"' in duplicates
    assert f'href="/dashboard/batches/{earlier.pk}/">Earlier</a>' in duplicates
    assert "same supplier and number" in duplicates
    assert "<strong>1</strong> document in EUR · <strong>1</strong> document in USD" in page
    heat_map = page.split("data-heat-map")[1].split("</table>")[0]
    assert '<th scope="col">supplier</th>' in heat_map
    assert heat_map.count('<span class="visually-hidden">missing</span>') == 1
    assert heat_map.count('<span class="visually-hidden">present</span>') == 7
    assert "Values per document: supplier missing in 1 document</summary>" in page


@pytest.mark.django_db
def test_a_recompute_replaces_the_batchs_invoice_keys(alice) -> None:
    batch = finished_batch(alice, [invoice_values(), invoice_values(number="2")])

    batch_checks_refresh(batch_id=batch.pk)
    batch_checks_refresh(batch_id=batch.pk)

    assert batch.invoice_keys.count() == 2


def the_same_invoice_twice(user, settings) -> BatchProcess:
    """One invoice uploaded twice (a.pdf, b.pdf), extracted by the offline engine."""
    settings.SHEAF_EXTRACTION_ENGINE = "local"
    same = invoice(1).pdf
    batch = services.batch_create(
        user=user,
        files=[ContentFile(same, name="a.pdf"), ContentFile(same, name="b.pdf")],
        prompt="The invoice's details.",
        fields=parse_fields("supplier\ninvoice number\ndate:date\ntotal:number"),
    )
    drain(budget_seconds=120)
    batch.refresh_from_db()
    assert batch.status == BatchProcess.Status.COMPLETED
    return batch


@pytest.mark.django_db(transaction=True)
def test_an_extracted_batch_flags_its_duplicates_and_keeping_a_run_recomputes_them(
    alice, settings
) -> None:
    batch = the_same_invoice_twice(alice, settings)
    assert [(d["document"]["filename"], d["duplicate_of"]["filename"]) for d in
            batch.checks["duplicates"]] == [("b.pdf", "a.pdf")]  # fmt: skip

    client = bearer_for(alice)
    response = client.post(
        f"/api/v1/batches/{batch.pk}/runs/",
        {"fields": "total:number"},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    drain(budget_seconds=120)
    batch.refresh_from_db()
    assert batch.checks["duplicates"] == []

    assert client.post(f"/api/v1/batches/{batch.pk}/runs/1/keep/").status_code == 200

    batch.refresh_from_db()
    assert [d["document"]["filename"] for d in batch.checks["duplicates"]] == ["b.pdf"]


@pytest.mark.django_db
def test_the_heat_maps_summary_counts_the_documents_that_failed(alice, alice_client) -> None:
    batch = finished_batch(alice, [invoice_values(number="A-1"), None])

    page = alice_client.get(f"/dashboard/batches/{batch.pk}/").content.decode()

    assert (
        "Values per document: every value present in the documents read; 1 document failed"
        "</summary>"
    ) in page
