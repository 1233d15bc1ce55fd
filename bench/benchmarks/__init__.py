"""One module per benchmark, each measuring against the harness and writing its own section of
the results page. They run, and their sections appear, in the order of BENCHMARKS; those of
STANDALONE run only when named with --only."""

from __future__ import annotations

from typing import Any, Protocol

from bench.benchmarks import (
    claude,
    http,
    live,
    overhead,
    poll,
    quality,
    read,
    rss,
    throughput,
    upload,
)
from bench.harness import Bench


class Benchmark(Protocol):
    def measure(self, bench: Bench) -> Any:
        """Run the benchmark on the bench's database and processes; its figures."""
        ...

    def report(self, bench: Bench, result: Any) -> list[str]:
        """Its section of the results page, as Markdown lines."""
        ...


BENCHMARKS: dict[str, Benchmark] = {
    "overhead": overhead,
    "throughput": throughput,
    "claude": claude,
    "upload": upload,
    "rss": rss,
    "http": http,
    "poll": poll,
    "live": live,
}
# Run only when named with --only (a full run leaves them out): `live` wants a Redis server.
NAMED_ONLY = frozenset({"live"})

# Measured in the bench's own process on documents it generates, with no database, cluster or
# web server: `--only NAME` runs one and writes its own block of BENCHMARKS.md, under this title.
STANDALONE: dict[str, tuple[str, Benchmark]] = {
    "quality": ("Extraction quality", quality),
    "read": ("Reading PDFs", read),
}
