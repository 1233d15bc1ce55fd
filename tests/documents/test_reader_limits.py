"""The readers' wall-clock limit is the one batchsite/settings.py (and the README) documents."""

from __future__ import annotations

import itertools
from pathlib import Path
from types import SimpleNamespace

import pytest

from documents import readers, sandbox
from extraction.contract import ExtractionError


def test_a_csv_read_that_outlasts_the_default_limit_names_45_seconds(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Every look at the sandbox's clock moves it 50 s on, so the read outlasts the limit at once.
    clock = itertools.count(step=50)
    monkeypatch.setattr(sandbox, "time", SimpleNamespace(monotonic=lambda: next(clock)))
    path = tmp_path / "slow.csv"
    path.write_text("".join(f"Row {n},{n}\n" for n in range(100)))
    with pytest.raises(ExtractionError) as caught:
        readers.read_document(path, content_type="text/csv", filename="slow.csv")
    assert caught.value.code == "timeout"
    assert caught.value.message == "slow.csv took too long to read: it took more than 45 s."
