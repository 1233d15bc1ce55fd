"""Staff see batches with progress and cost, documents, and open engine circuits in the admin."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from batches.models import EngineCircuit
from tests.factories import BatchFactory, DocumentFactory


def test_the_batch_changelist_shows_status_progress_and_cost(staff_client, alice):
    batch = BatchFactory(user=alice, name="March invoices", paused_reason="provider unavailable")
    DocumentFactory(batch=batch, status="completed", cost_usd=Decimal("0.0125"))
    DocumentFactory(batch=batch, status="completed", cost_usd=Decimal("0.0100"))

    response = staff_client.get("/admin/batches/batchprocess/")

    body = response.content.decode()
    assert response.status_code == 200
    assert "March invoices" in body
    assert "provider unavailable" in body
    assert "$0.0225" in body


def test_the_batch_page_in_admin_lists_its_documents(staff_client, alice):
    batch = BatchFactory(user=alice)
    DocumentFactory(batch=batch, original_filename="scan-17.pdf", error_code="no_text_layer")

    response = staff_client.get(f"/admin/batches/batchprocess/{batch.pk}/change/")

    assert response.status_code == 200
    assert "scan-17.pdf" in response.content.decode()
    assert "no_text_layer" in response.content.decode()


def test_staff_can_ask_for_an_early_probe_of_an_open_circuit(staff_client):
    later = timezone.now() + timedelta(minutes=10)
    circuit = EngineCircuit.objects.create(
        engine="anthropic", reason="Claude refused the account (401)", next_probe_at=later
    )

    response = staff_client.post(
        "/admin/batches/enginecircuit/",
        {"action": "probe_now", "_selected_action": [circuit.pk]},
    )

    assert response.status_code == 302
    circuit.refresh_from_db()
    assert circuit.next_probe_at <= timezone.now()


def test_a_user_who_is_not_staff_cannot_open_the_admin(alice_client):
    response = alice_client.get("/admin/batches/batchprocess/")

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
