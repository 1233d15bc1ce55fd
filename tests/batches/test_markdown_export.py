"""The Markdown export shows HTML from documents, filenames and batch names as text: a viewer
that renders the file must not run a ``<script>`` that came in with an upload."""

from __future__ import annotations

import html
import re

import pytest
from django.test import Client

from accounts.models import User
from documents.models import Document
from tests.factories import BatchFactory, DocumentFactory

pytestmark = pytest.mark.django_db

NAME = '<script>alert("batch")</script> March'
FILENAME = "<img src=x onerror=alert(1)>.pdf"
VALUE = "ACME <b>Ltd</b> & Sons</td><script>steal()</script>"
MESSAGE = "page 1 of <iframe src=//evil>.pdf is an image with no text layer"


def test_html_in_a_batch_name_a_filename_a_value_and_an_error_is_shown_as_text(
    alice: User, alice_client: Client
) -> None:
    batch = BatchFactory(
        user=alice, name=NAME, fields=[{"name": "supplier", "type": "string", "description": ""}]
    )
    DocumentFactory(
        batch=batch,
        original_filename=FILENAME,
        status=Document.Status.COMPLETED,
        result={
            "engine": "local",
            "model": None,
            "fields": {"supplier": {"value": VALUE, "quote": VALUE, "page": 1, "verified": True}},
        },
    )
    DocumentFactory(
        batch=batch,
        original_filename="scan.pdf",
        status=Document.Status.FAILED,
        error_code="no_text_layer",
        error_message=f"{MESSAGE}\nsecond line",
    )

    response = alice_client.get(f"/api/v1/batches/{batch.pk}/results/?format=md")

    assert response.status_code == 200
    text = response.content.decode("utf-8")
    # The only markup left is the line break Sheaf itself writes inside a cell.
    assert re.findall(r"<[^>]*>", text) == ["<br>"]
    title, *lines = text.splitlines()
    assert html.unescape(title) == f"# {NAME}"
    rows = [html.unescape(line) for line in lines if line.startswith("| ")]
    assert any(f"| {FILENAME} | completed |" in row and f"| {VALUE} |" in row for row in rows)
    assert f"Failed: `no_text_layer` {MESSAGE}<br>second line" in html.unescape(text)


def test_markdown_syntax_in_a_value_and_a_filename_stays_text_not_a_link(
    alice: User, alice_client: Client
) -> None:
    link = "[pay here](javascript:alert(1)) ![x](https://evil.example/t.png) *now* a|b"
    batch = BatchFactory(
        user=alice, fields=[{"name": "supplier", "type": "string", "description": ""}]
    )
    DocumentFactory(
        batch=batch,
        original_filename="[invoice](https://evil.example).pdf",
        status=Document.Status.COMPLETED,
        result={
            "engine": "local",
            "model": None,
            "fields": {"supplier": {"value": link, "quote": link, "page": 1, "verified": True}},
        },
    )

    text = alice_client.get(f"/api/v1/batches/{batch.pk}/results/?format=md").content.decode()

    # No link, image or emphasis can start: each of their characters is written escaped, and a
    # Markdown viewer shows the value as it was extracted.
    assert "](" not in text.replace("\\](", "")
    assert r"\[pay here\](javascript:alert(1)) !\[x\](https://evil.example/t.png)" in text
    assert r"\*now\* a\|b" in text
    assert r"\[invoice\](https://evil.example).pdf" in text
