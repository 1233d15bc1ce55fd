"""The readers on real-world PDFs nobody on the team wrote (the shared corpus, an extra pass:
skipped when the corpus is not beside the checkout)."""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from pathlib import Path

import pytest

from documents.readers import ReadResult, read_document
from extraction.contract import ExtractionError
from tests.documents.test_readers import (
    PDF,
    _fresh_pool,  # noqa: F401 - the fixture: a pool of readers for this module alone
    failure,
)
from tests.support.corpus import corpus_file

pytestmark = pytest.mark.corpus


def read_corpus(relative: str) -> ReadResult:
    path = corpus_file(relative)
    return read_document(path, content_type=PDF, filename=path.name)


def outcome(relative: str) -> tuple[str, int | None]:
    """("text", pages) for a file that reads, else (error code, None)."""
    try:
        result = read_corpus(relative)
    except ExtractionError as error:
        assert Path(relative).name in error.message, error.message
        return error.code, None
    assert result.text.strip() and not result.truncated, relative
    assert result.text.count("\f") == result.page_count - 1, relative
    return "text", result.page_count


def sample_files() -> list[dict]:
    """The entries of sample-files/files.json whose file was copied into the corpus."""
    listed = json.loads(corpus_file("sample-files/files.json").read_text())["data"]
    folder = corpus_file("sample-files/files.json").parent
    return [entry for entry in listed if (folder / entry["path"]).is_file()]


def test_each_sample_pdf_reads_with_its_page_count_or_fails_clearly() -> None:
    expected, actual = {}, {}
    for entry in sample_files():
        if entry["path"].startswith("017-"):
            expected[entry["path"]] = ("malformed", None)
        elif entry["encrypted"]:
            expected[entry["path"]] = ("encrypted", None)
        elif "imagemagick" in entry["producer"]:  # ImageMagick PDFs are one bitmap per page
            expected[entry["path"]] = ("no_text_layer", None)
        else:
            expected[entry["path"]] = ("text", entry["pages"])
        actual[entry["path"]] = outcome(f"sample-files/{entry['path']}")
    assert len(expected) >= 15
    assert actual == expected


def test_the_unreadable_page_tree_is_malformed_with_the_reason() -> None:
    error = failure(read_corpus, "sample-files/017-unreadable-meta-data/unreadablemetadata.pdf")
    assert error.message == (
        "unreadablemetadata.pdf is not a readable PDF: Invalid object in /Pages."
    )


def test_an_image_only_pdf_says_it_has_no_text_layer() -> None:
    error = failure(read_corpus, "sample-files/007-imagemagick-images/imagemagick-lzw.pdf")
    assert error.code == "no_text_layer"
    assert error.message.startswith("imagemagick-lzw.pdf has no text layer")


def test_crazyones_text_matches_its_transcript() -> None:
    result = read_corpus("pypdf-resources/resources/crazyones.pdf")
    transcript = corpus_file("pypdf-resources/resources/crazyones.txt").read_text()

    def words(text: str) -> str:
        # The transcript keeps the ligatures "ﬁ" and "ﬀ"; pdfium gives their letters, which is
        # what a search or an engine looks for. NFKC makes the two the same letters.
        return " ".join(unicodedata.normalize("NFKC", text).split())

    assert words(result.text) == words(transcript)
    assert result.page_count == 1


ENCRYPTION = "pypdf-resources/resources/encryption"


def _password_rows() -> list[tuple[str, str, str]]:
    table = corpus_file(f"{ENCRYPTION}/PASSWORDS.tsv").read_text()
    rows = list(csv.reader(io.StringIO(table), delimiter="\t"))[1:]
    return [(name, user, owner) for name, user, owner, _aes in rows]


def _opens_with_the_empty_password(name: str, user: str, owner: str) -> bool:
    # The empty password opens a file when it is the user password or the owner password. Under
    # R2-R4 an empty owner password means "the user password" (PDF 1.7, algorithm 3), so only R5/R6
    # files (AES-256) really have an empty owner password: r5/r6-user-password.pdf open as owner.
    if user in {"", "-"}:
        return True
    return owner == "" and Path(name).name.startswith(("r5-", "r6-"))


def test_the_password_table_lists_every_encryption_sample() -> None:
    listed = {Path(name).name for name, _user, _owner in _password_rows()}
    folder = corpus_file(f"{ENCRYPTION}/PASSWORDS.tsv").parent
    assert {path.name for path in folder.glob("*.pdf")} <= listed


def test_encrypted_pdfs_open_with_the_empty_password_or_say_password_protected() -> None:
    expected, actual = {}, {}
    for name, user, owner in _password_rows():
        opens = _opens_with_the_empty_password(name, user, owner)
        expected[name] = ("text", 1) if opens else ("encrypted", None)
        actual[name] = outcome(f"{ENCRYPTION}/{name}")
        if not opens:
            error = failure(read_corpus, f"{ENCRYPTION}/{name}")
            assert error.message == (
                f"{Path(name).name} is a password-protected PDF; remove the password and upload "
                "it again."
            )
    assert len(expected) >= 15
    assert actual == expected


def test_every_corpus_pdf_ends_in_text_or_an_extraction_error() -> None:
    for path in sorted(corpus_file("README.md").parent.rglob("*.pdf")):
        try:
            read_document(path, content_type=PDF, filename=path.name)
        except ExtractionError as error:
            assert error.code in {"encrypted", "no_text_layer", "malformed"}, path
