"""One module per benchmark, each measuring against the harness and writing its own section of
the results page. They run, and their sections appear, in the order of BENCHMARKS."""

from __future__ import annotations

from typing import Any, Protocol

from bench.benchmarks import claude, http, overhead, read, rss, throughput, upload
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
    "read": read,
}
