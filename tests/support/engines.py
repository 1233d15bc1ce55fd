"""Instrumented engines for pipeline tests and benchmarks, plugged in with SHEAF_EXTRA_ENGINES.

They stand in for a remote model: they sleep like a network call and record every call, so a
test can prove that no document was extracted twice.
"""

from __future__ import annotations

import os
import random
import time
from decimal import Decimal

from batches.extraction.base import ExtractionRequest, ExtractionResult


class CountingEngine:
    """Sleeps a random latency (SHEAF_TEST_LATENCY="min,max" seconds) and appends the document
    id to the file named by SHEAF_TEST_ENGINE_LOG, one line per call."""

    name = "counting"

    def extract(self, request: ExtractionRequest) -> ExtractionResult:
        low, high = (float(x) for x in os.environ.get("SHEAF_TEST_LATENCY", "0,0").split(","))
        time.sleep(random.uniform(low, high))  # noqa: S311
        log = os.environ.get("SHEAF_TEST_ENGINE_LOG")
        if log:
            with open(log, "a") as handle:
                handle.write(f"{request.document_id}\n")
        fields = {
            spec["name"]: {"value": None, "quote": None, "page": None, "verified": False}
            for spec in request.fields
        }
        return ExtractionResult(
            result={"engine": self.name, "model": None, "fields": fields}, cost_usd=Decimal("0")
        )
