"""An engine whose provider is briefly unavailable, plugged in with SHEAF_EXTRA_ENGINES.

The first extraction of each document fails with a transient error (as a 529 "overloaded" answer
would); every later one is handed to the offline engine. Calls are counted per document so that a
test can prove each document was tried exactly as often as the retry policy says.
"""

from __future__ import annotations

import threading
from collections import Counter

from extraction.contract import (
    Engine,
    ErrorKind,
    ExtractionError,
    ExtractionRequest,
    ExtractionResult,
)
from extraction.local.engine import LocalEngine


class FlakyEngine(Engine):
    name = "flaky"

    # The pipeline builds a new engine for every document, so what it remembers is per class.
    calls: Counter[str] = Counter()
    _lock = threading.Lock()

    @classmethod
    def reset(cls) -> None:
        with cls._lock:
            cls.calls.clear()

    def extract(self, request: ExtractionRequest) -> ExtractionResult:
        with self._lock:
            self.calls[request.document_id] += 1
            first = self.calls[request.document_id] == 1
        if first:
            raise ExtractionError(
                "provider_error",
                f"{request.filename}: the extraction service is overloaded; it will be retried.",
                kind=ErrorKind.TRANSIENT,
            )
        outcome = LocalEngine().extract(request)
        return ExtractionResult(result={**outcome.result, "engine": self.name}, cost_usd=None)
