"""What the benchmarks upload: short TXT invoices made here, and PDFs: the shared corpus's where it
is found (the figures in BENCHMARKS.md were measured on it), else Sheaf's generated sample invoices.

Every upload has bytes of its own (one serial number across both kinds), so that no document can
reuse the result of an earlier identical upload and skip the engine.
"""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

from samples.invoices import invoices as sample_invoices

PROMPT = "invoice number, issue date, total with currency, supplier VAT id"

_INVOICES = itertools.count(1)


def invoice(n: int) -> bytes:
    """A short invoice; every call gives different bytes (a global serial number), so that no
    document can reuse the result of an earlier identical upload and skip the engine."""
    serial = next(_INVOICES)
    return (
        f"Northwind Office Supplies Ltd\n"
        f"Invoice number: INV-{serial:06}\n"
        f"Issue date: 2025-{n % 12 + 1:02}-{n % 28 + 1:02}\n"
        f"Supplier VAT id: GB{123456789 + n}\n"
        f"Description: paper, toner and staples\n"
        f"Total: {n % 900 + 100}.{n % 100:02} EUR\n"
    ).encode()


def invoices(count: int) -> list[tuple[str, bytes]]:
    """`count` uploads (file name, bytes) of distinct TXT invoices."""
    return [(f"invoice-{n:05}.txt", invoice(n)) for n in range(count)]


SAMPLE_PDFS = 12


def corpus_pdfs(corpus: Path | None) -> list[Path]:
    """Every PDF of the corpus (by content: it starts with %PDF-), in a fixed order; without a
    corpus, SAMPLE_PDFS generated sample invoices (seeded, so every run reads the same files)."""
    if corpus is None:
        folder = Path(tempfile.mkdtemp(prefix="sheaf-bench-samples-"))
        for sample in sample_invoices(SAMPLE_PDFS, seed=1):
            (folder / sample.filename).write_bytes(sample.pdf)
        corpus = folder
    paths = [
        path
        for path in sorted(corpus.rglob("*"))
        if path.is_file() and path.read_bytes()[:5] == b"%PDF-"
    ]
    if not paths:
        raise RuntimeError(f"no PDF in {corpus}: pass --corpus or set SHEAF_CORPUS")
    return paths


def corpus_mix(pdfs: list[Path], count: int) -> list[tuple[str, bytes]]:
    """`count` uploads cycling through the corpus PDFs, each with different bytes (a comment
    after the last %%EOF, which PDF readers skip), so no document reuses another's result."""
    uploads = []
    for n in range(count):
        path = pdfs[n % len(pdfs)]
        serial = next(_INVOICES)
        uploads.append((path.name, path.read_bytes() + f"\n% sheaf-bench {serial}\n".encode()))
    return uploads
