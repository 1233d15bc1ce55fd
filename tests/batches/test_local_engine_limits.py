"""The offline engine runs under a per-document deadline (SHEAF_LOCAL_ENGINE_SECONDS), in the
reader sandbox: a text made to be slow fails its document with `timeout`, and the engine goes on
with the next one."""

from __future__ import annotations

import random

from django.core.files.uploadedfile import SimpleUploadedFile

from batches import pipeline
from batches.services import batch_create
from documents.models import Document
from extraction.fields import parse_fields

WORDS = [
    "invoice", "number", "date", "total", "amount", "due", "supplier", "vat", "tax", "customer",
    "reference", "order", "issue", "balance", "subtotal", "currency",
]  # fmt: skip
FIELDS = (
    "invoice number\nissue date\ntotal\nsupplier VAT id\ncustomer\ndue date\norder reference\n"
    "tax amount\nbalance due\nsubtotal\ncurrency\ncustomer number\nsupplier name\norder date\n"
    "amount due\nvat amount\ntotal tax\nreference number\nissue number\ndue amount"
)


def near_miss_labels(chars: int = 400_000, *, seed: int = 14) -> str:
    """Lines whose labels are misspelt field names plus a random word ("invoxce numbar qzkfe:
    123"): no label matches exactly, so every field compares itself with every label."""
    rng = random.Random(seed)  # noqa: S311 (test data, seeded on purpose)
    letters = "abcdefghijklmnopqrstuvwxyz"

    def misspelt(word: str) -> str:
        at = rng.randrange(len(word))
        return word[:at] + rng.choice(letters) + word[at + 1 :]

    lines: list[str] = []
    size = 0
    while size < chars:
        noise = "".join(rng.choice(letters) for _ in range(5))
        line = f"{misspelt(rng.choice(WORDS))} {misspelt(rng.choice(WORDS))} {noise}: "
        line += str(rng.randint(1, 99_999))
        lines.append(line)
        size += len(line) + 1
    return "\n".join(lines)[:chars]


def process_all() -> None:
    while (claim := pipeline.document_claim()) is not None:
        pipeline.document_process(claim=claim)


def test_near_miss_labels_fail_at_the_deadline_and_the_next_document_is_extracted(
    alice, settings
) -> None:
    settings.SHEAF_EXTRACTION_ENGINE = "local"
    settings.SHEAF_LOCAL_ENGINE_SECONDS = 1
    text = near_miss_labels()
    assert len(text) == 400_000
    batch = batch_create(
        user=alice,
        files=[
            SimpleUploadedFile("near-miss.txt", text.encode()),
            SimpleUploadedFile("invoice.txt", b"Invoice number: INV-17\nTotal due: 12.50 EUR\n"),
        ],
        prompt="invoice fields",
        fields=parse_fields(FIELDS),
    )

    process_all()

    slow = batch.documents.get(original_filename="near-miss.txt")
    assert (slow.status, slow.error_code, slow.attempts) == (Document.Status.FAILED, "timeout", 1)
    # The kernel stops it at the CPU limit, or the parent at the wall clock if the machine is busy.
    assert slow.error_message.startswith(
        "near-miss.txt took too long to extract with the offline engine: it "
    )
    assert slow.error_message.endswith(
        ". Split it into smaller documents, or use the Claude engine."
    )
    invoice = batch.documents.get(original_filename="invoice.txt")
    assert invoice.status == Document.Status.COMPLETED
    assert invoice.result["fields"]["invoice number"]["value"] == "INV-17"
    assert invoice.result["fields"]["total"]["value"] == "12.50 EUR"


def test_the_same_document_completes_under_the_default_deadline(alice, settings) -> None:
    settings.SHEAF_EXTRACTION_ENGINE = "local"
    text = near_miss_labels(chars=40_000)
    batch = batch_create(
        user=alice,
        files=[SimpleUploadedFile("near-miss.txt", text.encode())],
        prompt="invoice fields",
        fields=parse_fields(FIELDS),
    )

    process_all()

    document = batch.documents.get()
    assert document.status == Document.Status.COMPLETED, document.error_message
    assert set(document.result["fields"]) == {field["name"] for field in parse_fields(FIELDS)}
