"""Instrumented engines for pipeline tests and benchmarks, plugged in with SHEAF_EXTRA_ENGINES.

They stand in for a remote model: they sleep like a network call and record every call, so a
test can prove that no document was extracted twice.
"""

from __future__ import annotations

import itertools
import os
import random
import time
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import ClassVar

from documents.models import Document
from extraction.contract import Engine, ExtractionRequest, ExtractionResult


@dataclass(frozen=True)
class EngineCall:
    attempt: int  # the document's attempt that made the call
    process_group: int  # of the worker: a cluster started in its own session is one group
    started: float  # time.time() when the call began


class CountingEngine(Engine):
    """Sleeps a random latency (SHEAF_TEST_LATENCY="min,max" seconds) and appends one line per
    call, "<document id> <attempt> <process group> <time>", to the file named by
    SHEAF_TEST_ENGINE_LOG.

    The line is written when the call starts, in one `write` to a file opened for appending: a
    call cut off by a kill -9 is still counted (the kernel keeps what was written), and lines
    from concurrent workers never interleave.
    """

    name = "counting"

    def extract(self, request: ExtractionRequest) -> ExtractionResult:
        log = os.environ.get("SHEAF_TEST_ENGINE_LOG")
        if log:
            attempt = Document.objects.values_list("attempts", flat=True).get(
                pk=request.document_id
            )
            line = f"{request.document_id} {attempt} {os.getpgrp()} {time.time()}\n".encode()
            fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        low, high = (float(x) for x in os.environ.get("SHEAF_TEST_LATENCY", "0,0").split(","))
        time.sleep(random.uniform(low, high))  # noqa: S311
        fields = {
            spec["name"]: {"value": None, "quote": None, "page": None, "verified": False}
            for spec in request.fields
        }
        return ExtractionResult(
            result={"engine": self.name, "model": None, "fields": fields}, cost_usd=Decimal("0")
        )


def engine_calls(log: Path) -> dict[str, list[EngineCall]]:
    """The calls a CountingEngine recorded in `log`, by document id, in the order they started."""
    calls: dict[str, list[EngineCall]] = defaultdict(list)
    for line in log.read_text().splitlines():
        document_id, attempt, group, started = line.split()
        calls[document_id].append(EngineCall(int(attempt), int(group), float(started)))
    return calls


def assert_called_once_but_for_kills(
    document: Document, calls: list[EngineCall], *, killed: dict[int, float]
) -> None:
    """A completed document's engine was called by its completing attempt, at most once per
    attempt, and any other call was cut off by a kill: its worker's process group was killed
    (`killed`: group -> time.time() of the kill) before the document's next call began."""
    context = (document.pk, document.attempts, calls, killed)
    attempts = [call.attempt for call in calls]
    assert len(attempts) == len(set(attempts)), context
    assert max(attempts) == document.attempts, context
    ordered = sorted(calls, key=lambda call: call.started)
    for call, after in itertools.pairwise(ordered):
        assert call.process_group in killed, context
        assert call.started < killed[call.process_group] <= after.started, context


class RecordingLocalEngine(Engine):
    """The offline engine, recording which fields each document asked it for (class-wide, so a
    test sees the calls of the instance the pipeline made)."""

    name = "recording"
    fields_asked: ClassVar[dict[str, list[str]]] = {}

    def extract(self, request: ExtractionRequest) -> ExtractionResult:
        from extraction.local.engine import LocalEngine

        self.fields_asked[request.document_id] = [spec["name"] for spec in request.fields]
        return LocalEngine().extract(request)


class PricedEngine(Engine):
    """The offline engine at a price: every call costs, and is estimated at, `PRICE` dollars, so
    budgets can be reached without a provider. A document whose name starts with "broken" fails
    for good after its call was paid (as an answer that does not fit would). Calls are counted
    per document, class-wide (the pipeline makes an engine per configuration and process)."""

    name = "priced"
    title = "priced engine"
    costs_money = True
    PRICE = Decimal("1.00")
    calls: ClassVar[dict[str, int]] = defaultdict(int)

    def extract(self, request: ExtractionRequest) -> ExtractionResult:
        from extraction.contract import ExtractionError
        from extraction.local.engine import LocalEngine

        self.calls[request.document_id] += 1
        if request.filename.startswith("broken"):
            raise ExtractionError(
                "invalid_output",
                f"{request.filename}: the answer did not fit the fields.",
                cost_usd=self.PRICE,
            )
        outcome = LocalEngine().extract(request)
        return ExtractionResult(result={**outcome.result, "engine": self.name}, cost_usd=self.PRICE)

    def estimate(self, *, characters: int, pages: int | None, fields: int) -> Decimal:
        return self.PRICE


class PricedCountingEngine(CountingEngine):
    """The counting engine (every call logged, for a cluster test) at PricedEngine's price."""

    name = "priced-counting"
    costs_money = True

    def extract(self, request: ExtractionRequest) -> ExtractionResult:
        outcome = super().extract(request)
        return ExtractionResult(result=outcome.result, cost_usd=PricedEngine.PRICE)

    def estimate(self, *, characters: int, pages: int | None, fields: int) -> Decimal:
        return PricedEngine.PRICE
