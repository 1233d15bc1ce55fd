"""The benchmark's own helpers: what it uploads must be what a browser or client would send, and
the PDFs it makes distinct must still read like the files they come from. Its commands start as
the README and BENCHMARKS.md run them: as scripts in bench/."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
from django.test import RequestFactory
from pypdf import PdfReader

from bench.benchmarks import BENCHMARKS, STANDALONE
from bench.inputs import corpus_mix
from bench.measurement import percentile
from bench.report import write_report
from bench.web import multipart
from samples.invoices import invoice
from tests.conftest import REPO


def test_corpus_mix_makes_every_upload_distinct_and_still_the_same_pdf(tmp_path):
    original = tmp_path / "invoice.pdf"
    original.write_bytes(invoice(1).pdf)

    uploads = corpus_mix([original], 3)

    assert [name for name, _ in uploads] == ["invoice.pdf"] * 3
    assert len({data for _, data in uploads}) == 3
    expected = PdfReader(original).pages[0].extract_text()
    for _, data in uploads:
        reader = PdfReader(io.BytesIO(data))
        assert len(reader.pages) == 1
        assert reader.pages[0].extract_text() == expected


def test_multipart_body_arrives_as_the_form_fields_and_files_a_view_reads(alice):
    body, content_type = multipart(
        [("prompt", "invoice number"), ("name", "Ünïcode batch")],
        [("files", "a.pdf", b"%PDF-1.4 one"), ("files", "b.pdf", b"%PDF-1.4 two\r\n--x")],
    )

    request = RequestFactory().post("/api/v1/batches/", data=body, content_type=content_type)
    request.user = alice  # the upload handler keeps files only for a signed-in sender

    assert request.POST["prompt"] == "invoice number"
    assert request.POST["name"] == "Ünïcode batch"
    files = request.FILES.getlist("files")
    assert [(f.name, b"".join(f.chunks())) for f in files] == [
        ("a.pdf", b"%PDF-1.4 one"),
        ("b.pdf", b"%PDF-1.4 two\r\n--x"),
    ]


@pytest.mark.parametrize(("q", "expected"), [(0, 1.0), (50, 2.5), (95, 3.85), (100, 4.0)])
def test_percentile_interpolates_between_the_closest_ranks(q, expected):
    assert percentile([4.0, 1.0, 3.0, 2.0], q) == pytest.approx(expected)


def test_a_full_run_replaces_only_its_own_database_block(tmp_path):
    path = tmp_path / "BENCHMARKS.md"
    path.write_text(
        "# Benchmarks\n\nintro\n\n<!-- bench:sqlite:start -->\nold\n<!-- bench:sqlite:end -->\n"
        "\n## Analysis\nkept\n"
    )

    write_report(path, "new results", "sqlite")
    write_report(path, "pg results", "postgres")

    text = path.read_text()
    assert "old" not in text
    assert "<!-- bench:sqlite:start -->\nnew results\n<!-- bench:sqlite:end -->" in text
    assert text.index("## Analysis\nkept") < text.index("<!-- bench:postgres:start -->\npg results")


def _help(script: str) -> subprocess.CompletedProcess[str]:
    """`bench/<script> --help` as the README runs it: a script, from the checkout."""
    return subprocess.run(  # noqa: S603 (our own interpreter and scripts)
        [sys.executable, f"bench/{script}", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("script", ["run.py", "profile_drain.py", "profile_claude.py"])
def test_each_bench_command_starts_as_a_script(script):
    # A script's own folder comes first on sys.path: a bench module named like a standard
    # library module (http, site, ...) would be imported in its place.
    out = _help(script)

    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("usage:")


def test_the_command_offers_every_benchmark_alone():
    assert "--only {" + ",".join([*BENCHMARKS, *STANDALONE]) + "}" in _help("run.py").stdout
