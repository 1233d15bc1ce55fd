"""In the admin, staff see a batch's and a document's state but never set it by hand (it changes
through the services: the retry and cancel actions, the review page, re-runs); JSON shows as
tables, with everything a document said escaped; a document links to its review page."""

from __future__ import annotations

import pytest

from documents.models import Document
from tests.factories import BatchFactory, DocumentFactory
from tests.support.admin_forms import admin_form_data

HOSTILE = '<script>alert("owned")</script>'


def _change_url(obj) -> str:
    return f"/admin/{obj._meta.app_label}/{obj._meta.model_name}/{obj.pk}/change/"


@pytest.fixture
def batch(alice):
    return BatchFactory(user=alice, name="March invoices", status="processing")


@pytest.fixture
def document(batch):
    return DocumentFactory(
        batch=batch,
        status="completed",
        result={
            "engine": "local",
            "model": None,
            "fields": {
                "invoice number": {
                    "value": "INV-17",
                    "quote": f"Invoice INV-17 {HOSTILE}",
                    "page": 1,
                    "status": "found",
                },
                "total": {"value": None, "quote": None, "page": None, "status": "missing"},
            },
        },
        reviews={
            "invoice number": {"value": "INV-17", "by": "alice@example.com", "at": "2026-03-01"},
            "total": {"value": "12.50", "by": "alice@example.com", "at": "2026-03-01"},
        },
    )


def test_a_batchs_status_is_shown_but_not_offered_for_editing(staff_client, batch):
    body = staff_client.get(_change_url(batch)).content.decode()

    assert 'name="status"' not in body
    assert '<div class="readonly">Processing</div>' in body
    assert 'name="name"' in body  # the name stays editable


def test_posting_a_batchs_change_form_renames_it_but_cannot_change_its_status(staff_client, batch):
    url = _change_url(batch)
    data = admin_form_data(staff_client.get(url))
    data.update(name="March invoices (final)", status="completed", fields="[]")

    response = staff_client.post(url, data)

    assert response.status_code == 302
    batch.refresh_from_db()
    assert batch.name == "March invoices (final)"
    assert batch.status == "processing"
    assert len(batch.fields) == 3


def test_a_documents_page_is_view_only(staff_client, document):
    body = staff_client.get(_change_url(document)).content.decode()

    assert "View document" in body
    assert 'name="status"' not in body
    assert 'name="_save"' not in body
    assert "/delete/" not in body
    assert '<div class="readonly">Completed</div>' in body


def test_posting_a_documents_change_form_is_refused_and_changes_nothing(staff_client, document):
    response = staff_client.post(_change_url(document), {"status": "queued", "attempts": 0})

    assert response.status_code == 403
    document.refresh_from_db()
    assert document.status == "completed"


def test_a_batchs_fields_show_as_a_table(staff_client, batch):
    body = staff_client.get(_change_url(batch)).content.decode()

    assert 'name="fields"' not in body
    table = body[body.index('<table class="sheaf-json">') :]
    table = table[: table.index("</table>")]
    assert '<th scope="col">name</th><th scope="col">type</th>' in table
    assert "<tr><td>invoice number</td><td>string</td>" in table
    assert "<tr><td>date</td><td>date</td>" in table


def test_a_documents_result_and_reviews_show_as_escaped_tables(staff_client, document):
    body = staff_client.get(_change_url(document)).content.decode()

    assert HOSTILE not in body
    assert "Invoice INV-17 &lt;script&gt;alert(&quot;owned&quot;)&lt;/script&gt;" in body
    # One row per field, a column per key of the fields' values.
    assert '<th scope="row">invoice number</th><td>INV-17</td>' in body
    assert '<th scope="row">total</th><td><span class="sheaf-json-empty">-</span></td>' in body
    # The review: who set which value.
    assert (
        '<th scope="row">total</th><td>12.50</td><td>alice@example.com</td><td>2026-03-01</td>'
        in body
    )
    assert '"fields": {' not in body


def test_a_documents_page_links_to_its_review_page_which_opens_for_its_owner(
    staff_client, alice_client, document
):
    body = staff_client.get(_change_url(document)).content.decode()

    review = f"/dashboard/documents/{document.pk}/"
    assert f'<a href="{review}">Open its review page</a>' in body
    assert "INV-17" in alice_client.get(review).content.decode()


def test_a_user_who_is_not_staff_cannot_open_a_documents_admin_page(alice_client, document):
    response = alice_client.get(_change_url(document))

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert Document.objects.get(pk=document.pk).status == "completed"


def test_staff_cannot_add_a_batch_by_hand(staff_client):
    # A batch is made by `batch_create` (its run, its documents, its quota), never by a form.
    response = staff_client.get("/admin/batches/batchprocess/add/")

    assert response.status_code == 403
    assert "/admin/batches/batchprocess/add/" not in staff_client.get("/admin/").content.decode()
