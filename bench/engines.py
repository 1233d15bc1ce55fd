"""The benchmark's stand-in for a remote model, plugged in with SHEAF_EXTRA_ENGINES.

`SleepEngine` waits a fixed SHEAF_BENCH_LATENCY seconds, like a network call that does no work in
the worker, and returns an empty result of the usual shape, so any time above the latency is the
pipeline's own.
"""

from __future__ import annotations

import os
import time
from decimal import Decimal

from extraction.contract import Engine, ExtractionRequest, ExtractionResult


class SleepEngine(Engine):
    name = "sleep"

    def extract(self, request: ExtractionRequest) -> ExtractionResult:
        time.sleep(float(os.environ.get("SHEAF_BENCH_LATENCY", "0")))
        fields = {
            spec["name"]: {"value": None, "quote": None, "page": None, "verified": False}
            for spec in request.fields
        }
        return ExtractionResult(
            result={"engine": self.name, "model": None, "fields": fields}, cost_usd=Decimal("0")
        )
