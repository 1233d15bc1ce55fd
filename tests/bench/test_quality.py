"""The quality benchmark on a small development set: it reads every file through Sheaf's reader,
scores what the offline engine returns, and says what it cannot measure yet. The rates are the
benchmark's business (BENCHMARKS.md), not a test's."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from bench.benchmarks import STANDALONE, quality
from bench.harness import Bench
from bench.scoring import Outcome
from samples.devset import write


def _bench(tmp_path: Path, devset: Path | None, details: Path | None = None) -> Bench:
    args = argparse.Namespace(devset=devset, devset_count=4, devset_seed=2, quality_details=details)
    return Bench(args=args, tmp=tmp_path, env={}, database="none (in-process)")


def test_it_scores_every_document_and_counts_a_refused_one_as_all_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "set"
    write(folder, 6, seed=4)
    # The OCR speed beside the scoring (16 s of OCR) is not what this test checks: the report's
    # test below measures it on the same scan.
    monkeypatch.setattr(quality, "_ocr_side_by_side", lambda folder, entries: None)
    details = tmp_path / "details.json"

    result = quality.measure(_bench(tmp_path, folder, details))

    entries = json.loads((folder / "labels.json").read_text())["documents"]
    assert [d.entry["file"] for d in result.documents] == [e["file"] for e in entries]
    for document in result.documents:
        assert set(document.outcomes) == set(quality.SCORED)
        if document.error is not None:
            assert document.extract_seconds is None or document.values == {}
            assert set(document.outcomes.values()) == {Outcome.MISSING}
    born_digital = [d for d in result.documents if d.entry["kind"] == "born-digital"]
    assert born_digital and all(d.error is None for d in born_digital)
    # E-invoices go through the pipeline's XML step, which fills these fields from their XML.
    einvoices = [d for d in result.documents if d.entry["kind"] == "einvoice"]
    assert einvoices and all(d.error is None for d in einvoices)
    assert {d.values["supplier"] for d in einvoices} == {
        d.entry["fields"]["supplier"] for d in einvoices
    }
    written = json.loads(details.read_text())
    assert [item["file"] for item in written] == [e["file"] for e in entries]


def test_its_report_has_the_tables_and_says_what_is_not_measured_yet(tmp_path: Path) -> None:
    bench = _bench(tmp_path, None)

    result = quality.measure(bench)  # writes its own set of 4 files
    lines = quality.report(bench, result)

    text = "\n".join(lines)
    assert "quality" in STANDALONE
    assert "| kind | documents | read | invoice number | date | total | currency | supplier" in text
    assert "| language |" in text and "| layout |" in text
    assert "python -m samples.devset --count 4 --seed 2" in text
    if result.rows_note is not None:  # until the field syntax has tables
        assert "Line items: not extracted" in text
    assert "- Engine: " in text and "- OCR: " in text
