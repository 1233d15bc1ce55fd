"""An engine run in another process (the reader sandbox's "extract" operation): the request and
the outcome as JSON, and the function the child calls. No Django: the child has none."""

from __future__ import annotations

import importlib
from dataclasses import asdict
from decimal import Decimal
from typing import Any

from extraction.contract import (
    Engine,
    ErrorKind,
    ExtractionError,
    ExtractionRequest,
    ExtractionResult,
    PageLayout,
    Word,
)


def arguments_for(engine: Engine, request: ExtractionRequest) -> dict[str, Any]:
    """The operation's JSON arguments: which engine class to build, and the request (without
    `read_original`: an engine that reads the original's bytes is not run this way)."""
    cls = type(engine)
    return {
        "engine": f"{cls.__module__}:{cls.__qualname__}",
        "request": {
            "text": request.text,
            "prompt": request.prompt,
            "fields": request.fields,
            "filename": request.filename,
            "content_type": request.content_type,
            "page_count": request.page_count,
            "document_id": request.document_id,
            "layout": [asdict(page) for page in request.layout],
        },
    }


def extract_operation(arguments: dict[str, Any]) -> dict[str, Any]:
    """In the child: build the engine and the request, extract, and answer the outcome or the
    engine's error as JSON."""
    module, _, name = arguments["engine"].partition(":")
    engine: Engine = getattr(importlib.import_module(module), name)()
    given = arguments["request"]
    layout = tuple(
        PageLayout(**{**page, "words": tuple(Word(**word) for word in page["words"])})
        for page in given.pop("layout")
    )
    try:
        outcome = engine.extract(ExtractionRequest(**given, layout=layout))
    except ExtractionError as error:
        return {"error": {"code": error.code, "message": error.message, "kind": error.kind}}
    cost = None if outcome.cost_usd is None else str(outcome.cost_usd)
    return {"result": outcome.result, "cost_usd": cost, "usage": outcome.usage}


def outcome_of(answer: dict[str, Any]) -> ExtractionResult:
    """The child's answer as the engine's outcome, or its ExtractionError raised here."""
    if "error" in answer:
        error = answer["error"]
        raise ExtractionError(error["code"], error["message"], kind=ErrorKind(error["kind"]))
    cost = answer["cost_usd"]
    return ExtractionResult(
        result=answer["result"],
        cost_usd=None if cost is None else Decimal(cost),
        usage=answer["usage"],
    )
