"""Finding the shared corpus: an explicit SHEAF_CORPUS is taken at its word, present or not."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.corpus import find_corpus


def test_an_existing_sheaf_corpus_folder_is_the_corpus(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SHEAF_CORPUS", str(tmp_path))

    assert find_corpus() == tmp_path


@pytest.mark.parametrize("missing", ["/nonexistent", "README.md"])
def test_a_sheaf_corpus_that_is_not_a_folder_means_no_corpus(monkeypatch, missing: str) -> None:
    monkeypatch.setenv("SHEAF_CORPUS", missing)

    assert find_corpus() is None
