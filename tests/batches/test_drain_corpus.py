"""The real pipeline over every PDF of the shared real-world corpus, checked against the corpus's
ground truth (an extra pass: skipped when the corpus is not beside the checkout)."""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.plans import PlanKey, get_plan
from batches import services
from batches.models import BatchProcess
from batches.tasks import drain
from documents.models import Document
from tests.batches.test_drain import (
    DRAIN_BUDGET,
    _documents,
    assert_a_second_drain_changes_nothing,
)
from tests.support.corpus import corpus_file
from tests.support.snapshot import Snapshot

pytestmark = pytest.mark.corpus

UNREADABLE_PAGE_TREE = "unreadablemetadata.pdf"  # 017: files.json counts its pages; it must fail

# Encrypted files from pypdf's resources that PASSWORDS.tsv does not list; their passwords are in
# pypdf's own tests (tests/test_reader.py): encrypted-file.pdf needs "test", and
# encrypted_doc_no_id.pdf opens with the empty password.
UNLISTED_ENCRYPTED = {"encrypted-file.pdf": False, "encrypted_doc_no_id.pdf": True}


def corpus_pdfs() -> list[Path]:
    """Every PDF of both corpus folders (the other files are sources, transcripts, licences)."""
    root = corpus_file("README.md").parent
    return sorted(
        path
        for folder in ("sample-files", "pypdf-resources")
        for path in (root / folder).rglob("*.pdf")
    )


def sample_files() -> dict[str, dict[str, Any]]:
    """The entries of files.json whose file was copied into the corpus, by file name."""
    listing = corpus_file("sample-files/files.json")
    return {
        Path(entry["path"]).name: entry
        for entry in json.loads(listing.read_text())["data"]
        if (listing.parent / entry["path"]).is_file()
    }


def password_protected() -> dict[str, bool]:
    """Encrypted corpus file name -> whether the empty password opens it."""
    text = corpus_file("pypdf-resources/resources/encryption/PASSWORDS.tsv").read_text()
    opens: dict[str, bool] = {}
    for name, user, owner, _aes in list(csv.reader(io.StringIO(text), delimiter="\t"))[1:]:
        name = Path(name).name
        if user == "-":
            continue  # not encrypted at all
        # An empty user password opens the file. An empty owner password does too, but only under
        # R5/R6: under R2-R4 an empty owner password means "the same as the user password".
        opens[name] = user == "" or (owner == "" and name.startswith(("r5-", "r6-")))
    encrypted_samples = {name: False for name, e in sample_files().items() if e["encrypted"]}
    return opens | UNLISTED_ENCRYPTED | encrypted_samples


def _normalised(text: str) -> str:
    # The transcript keeps the ligatures "ﬁ" and "ﬀ"; pdfium gives their letters. NFKC makes the
    # two the same letters.
    return " ".join(unicodedata.normalize("NFKC", text).split())


@pytest.fixture
def drained_corpus(request, settings, snapshot: Snapshot) -> BatchProcess:
    """A Growth batch of every corpus PDF, drained once by the real pipeline. The drain takes 5 s
    and leaves the same rows each time: it runs for the module's first test, and the later ones
    start from a copy of what it left (tests/support/snapshot.py)."""
    settings.SHEAF_EXTRACTION_ENGINE = "local"
    pdfs = corpus_pdfs()
    growth = get_plan(PlanKey.GROWTH)
    assert len(pdfs) <= growth.files_per_batch
    largest = max(path.stat().st_size for path in pdfs)
    if largest > growth.max_file_size:
        settings.SHEAF_PLAN_LIMITS = {"growth": {"max_file_size": largest}}

    if snapshot.restore(settings.MEDIA_ROOT):
        return BatchProcess.objects.get(name="Corpus")

    batch = services.batch_create(
        user=request.getfixturevalue("grace"),
        files=[SimpleUploadedFile(path.name, path.read_bytes()) for path in pdfs],
        prompt="title, author, date",
        name="Corpus",
    )
    drain(budget_seconds=DRAIN_BUDGET)
    batch.refresh_from_db()
    snapshot.take(settings.MEDIA_ROOT)
    return batch


@pytest.mark.django_db(transaction=True)
def test_the_drain_leaves_every_corpus_document_terminal_with_a_specific_message(drained_corpus):
    documents = _documents(drained_corpus)

    assert sorted(documents) == sorted(path.name for path in corpus_pdfs())
    unfinished = {
        name: d.status
        for name, d in documents.items()
        if d.status in (Document.Status.QUEUED, Document.Status.PROCESSING)
    }
    assert unfinished == {}
    for name, document in documents.items():
        assert document.status in (Document.Status.COMPLETED, Document.Status.FAILED), name
        assert document.lease_token is None, name
        if document.status == Document.Status.FAILED:
            assert document.error_code in {"encrypted", "no_text_layer", "malformed"}, name
            assert name in document.error_message, document.error_message
            assert document.attempts == 1, name  # a bad file is not retried
        else:
            assert document.result["engine"] == "local", name
            assert document.text.strip(), name
            assert document.error_code == "", name

    assert drained_corpus.status == BatchProcess.Status.COMPLETED_WITH_ERRORS
    failed = sum(d.status == Document.Status.FAILED for d in documents.values())
    assert drained_corpus.total_documents == drained_corpus.processed_documents == len(documents)
    assert drained_corpus.failed_documents == failed
    assert drained_corpus.completed_at is not None


@pytest.mark.django_db(transaction=True)
def test_page_counts_match_files_json_and_the_unreadable_page_tree_fails_as_malformed(
    drained_corpus,
):
    documents = _documents(drained_corpus)

    broken = documents[UNREADABLE_PAGE_TREE]
    assert (broken.status, broken.error_code) == ("failed", "malformed")
    assert broken.error_message.startswith(f"{UNREADABLE_PAGE_TREE} is not a readable PDF")

    counted = {
        name: entry["pages"]
        for name, entry in sample_files().items()
        if name != UNREADABLE_PAGE_TREE
        and not entry["encrypted"]
        and "imagemagick" not in entry["producer"]
    }
    assert counted
    assert {name: documents[name].page_count for name in counted} == counted
    assert {name: documents[name].status for name in counted} == dict.fromkeys(counted, "completed")


@pytest.mark.django_db(transaction=True)
def test_password_protected_pdfs_fail_unless_the_empty_password_opens_them(drained_corpus):
    documents = _documents(drained_corpus)

    protected = password_protected()
    assert protected.keys() <= documents.keys()
    for name, opens in protected.items():
        document = documents[name]
        if opens:
            assert document.error_code != "encrypted", (name, document.error_message)
            if document.status == Document.Status.COMPLETED:
                assert document.page_count and document.text.strip(), name
        else:
            assert (document.status, document.error_code) == ("failed", "encrypted"), name
            assert "password-protected" in document.error_message, document.error_message
    opened = [name for name, opens in protected.items() if opens and name.startswith("r")]
    assert opened and all(documents[name].status == "completed" for name in opened)


@pytest.mark.django_db(transaction=True)
def test_image_only_pdfs_fail_with_no_text_layer(drained_corpus):
    documents = _documents(drained_corpus)
    image_only = [name for name, e in sample_files().items() if "imagemagick" in e["producer"]]

    assert image_only
    for name in image_only:
        document = documents[name]
        assert (document.status, document.error_code) == ("failed", "no_text_layer"), name
        assert "no text layer" in document.error_message
        assert document.result is None


@pytest.mark.django_db(transaction=True)
def test_the_stored_text_of_crazyones_matches_its_transcript(drained_corpus):
    document = _documents(drained_corpus)["crazyones.pdf"]
    transcript = corpus_file("pypdf-resources/resources/crazyones.txt").read_text()

    assert document.status == Document.Status.COMPLETED
    assert _normalised(document.text) == _normalised(transcript)
    assert document.page_count == 1


@pytest.mark.django_db(transaction=True)
def test_a_second_drain_changes_nothing(drained_corpus):
    assert_a_second_drain_changes_nothing(drained_corpus)
