"""A fake Anthropic API on loopback, for tests and offline demos (standard library only).

It speaks the real HTTP API that the official ``anthropic`` SDK calls, so the SDK is used unchanged
with ``base_url=fake.base_url`` (or ``ANTHROPIC_BASE_URL``)::

    with FakeAnthropic() as fake:
        client = anthropic.Anthropic(api_key="sk-ant-fake", base_url=fake.base_url, max_retries=0)
        fake.script(status=529)                 # the next POST /v1/messages answers 529
        ...
        assert fake.count("/v1/messages") == 2

Endpoints: ``POST /v1/messages`` (JSON or ``stream=true`` SSE), ``POST /v1/messages/count_tokens``,
``POST|GET /v1/messages/batches``, ``GET|DELETE /v1/messages/batches/{id}``,
``POST /v1/messages/batches/{id}/cancel``, ``GET /v1/messages/batches/{id}/results`` (JSONL),
``GET /v1/models`` and ``GET /v1/models/{id}``.

Without a script, ``POST /v1/messages`` answers like Claude making the forced tool call (or,
with ``output_config.format`` of type ``json_schema`` and no tool, like structured output in a text
block): it finds the field names in the schema and "extracts" each from a ``Label: value`` line
of the document text in the user message (see ``_extract``). Run standalone with
``python -m tests.support.fake_anthropic --port 8090 [--latency 0.5]``.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import copy
import hashlib
import json
import math
import random
import re
import secrets
import string
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.loopback import LoopbackHandler, LoopbackServer

__all__ = [
    "CACHE_MINIMUM_TOKENS",
    "CREDIT_BALANCE_TOO_LOW",
    "ERROR_TYPES",
    "FAKE_API_KEY",
    "FakeAnthropic",
    "RecordedRequest",
    "cache_minimum_tokens",
    "fake_anthropic",
]

FAKE_API_KEY = "sk-ant-fake-0000"

# HTTP status -> Anthropic error type (https://docs.anthropic.com/en/api/errors).
ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}

DEFAULT_MESSAGES: dict[int, str] = {
    400: "Invalid request.",
    401: "invalid x-api-key",
    402: "There's an issue with your billing or payment information.",
    403: "Your API key does not have permission to use the specified resource.",
    404: "Not found.",
    408: "Request timed out.",
    409: "Conflict.",
    413: "Request exceeds the maximum allowed number of bytes.",
    429: "Number of requests has exceeded your per-minute rate limit.",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
    504: "Request timed out",
    529: "Overloaded",
}

# Out of credit, the real API answers 400 invalid_request_error with this message (not 402).
CREDIT_BALANCE_TOO_LOW = (
    "Your credit balance is too low to access the Anthropic API. "
    "Please go to Plans & Billing to upgrade or purchase credits."
)

# The shortest prefix (in tokens) each model caches: below it a cache breakpoint is ignored,
# without an error (Anthropic's prompt caching guide). The longest matching name prefix wins;
# a model not listed caches nothing under the largest of these.
CACHE_MINIMUM_TOKENS: dict[str, int] = {
    "claude-haiku-4-5": 4096,
    "claude-opus-4-5": 4096,
    "claude-opus-4-6": 4096,
    "claude-opus-4-7": 4096,
    "claude-opus-4": 1024,
    "claude-sonnet-4": 1024,
    "claude-sonnet-4-6": 2048,
    "claude-3-7-sonnet": 1024,
    "claude-3-5-haiku": 2048,
    "claude-3-haiku": 2048,
}

# The keys the API accepts in each kind of request content block, and which of them may be null
# (the request types' Optional fields). Anything else is refused with a 400, as the API does:
# echoing a response block as it was parsed (with its null `caller`) is not a valid request.
BLOCK_KEYS: dict[str, set[str]] = {
    "text": {"type", "text", "cache_control", "citations"},
    "image": {"type", "source", "cache_control", "transformations"},
    "document": {"type", "source", "cache_control", "citations", "context", "title"},
    "tool_use": {"type", "id", "name", "input", "cache_control", "caller", "toolset_name"},
    "tool_result": {"type", "tool_use_id", "content", "is_error", "cache_control", "toolset_name"},
}
NULLABLE_BLOCK_KEYS = {
    "cache_control",
    "citations",
    "context",
    "title",
    "toolset_name",
    "transformations",
}

MESSAGES_PATH = "/v1/messages"
MAX_REQUEST_BYTES = 32 * 1024 * 1024  # the Messages API's request size limit
MAX_BATCH_BYTES = 256 * 1024 * 1024  # the Message Batches API's limit on one batch
MAX_PDF_PAGES = 100
_UNLIMITED_RPM = 1_000_000
_UNLIMITED_TPM = 1_000_000_000
_PDF_CHARS_PER_PAGE = 6000  # about 1,500 tokens per PDF page
_IMAGE_CHARS = 6400  # about 1,600 tokens per image
_CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_DOCUMENT_TAG = re.compile(r"<(document[\w-]*|doc)\b[^>]*>(.*?)</\1\s*>", re.IGNORECASE | re.DOTALL)
_ID_CHARS = string.ascii_letters + string.digits


def _new_id(prefix: str) -> str:
    return prefix + "01" + "".join(secrets.choice(_ID_CHARS) for _ in range(22))


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _now() -> datetime:
    return datetime.now(UTC)


def error_body(
    status: int,
    message: str | None = None,
    *,
    error_type: str | None = None,
    error_code: str | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    """The JSON body Anthropic sends with an error status."""
    error: dict[str, Any] = {
        "type": error_type
        or ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error"),
        "message": message or DEFAULT_MESSAGES.get(status, f"Error {status}"),
    }
    if error_code:
        error["details"] = {"error_code": error_code}
    body: dict[str, Any] = {"type": "error", "error": error}
    if request_id:
        body["request_id"] = request_id
    return body


@dataclass
class RecordedRequest:
    """One HTTP request the fake received (``status`` is filled in once it was answered)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: Any  # the parsed JSON body, or None
    raw: bytes
    at: float  # time.monotonic() on arrival
    status: int | None = None
    request_id: str = ""

    @property
    def json(self) -> Any:
        return self.body


@dataclass
class _Script:
    status: int
    headers: dict[str, str]
    body: Any  # dict, str, bytes, a callable(RecordedRequest) -> body, or None
    times: int | None
    path: str
    method: str | None
    delay: float
    disconnect: bool
    message: str | None
    error_type: str | None
    error_code: str | None


@dataclass
class _Bucket:
    """A token bucket refilled continuously at ``per_minute``/60 a second, like Anthropic's limits.

    It holds at most ``capacity`` (a full minute's worth unless a shorter burst was asked for).
    """

    per_minute: int
    capacity: float = 0.0
    level: float = -1.0
    stamp: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        if self.capacity <= 0:
            self.capacity = float(self.per_minute)
        if self.level < 0:
            self.level = self.capacity

    def refill(self, now: float) -> None:
        rate = self.per_minute / 60.0
        self.level = min(self.capacity, self.level + (now - self.stamp) * rate)
        self.stamp = now

    def wait_for(self, amount: float) -> float:
        """Seconds until ``amount`` is available (inf if it never fits)."""
        if amount <= self.level:
            return 0.0
        if amount > self.capacity:
            return math.inf
        return (amount - self.level) * 60.0 / self.per_minute

    def reset_at(self, now: float) -> float:
        """Seconds until the bucket is full again."""
        return (self.capacity - self.level) * 60.0 / self.per_minute


@dataclass
class _Batch:
    id: str
    requests: list[dict[str, Any]]
    created_at: datetime
    created_mono: float
    polls: int = 0
    status: str = "in_progress"
    ended_at: datetime | None = None
    cancel_initiated_at: datetime | None = None
    results: list[dict[str, Any]] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Token accounting and prompt caching


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _without_cache_control(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_cache_control(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [_without_cache_control(v) for v in value]
    return value


def _pdf_bytes(block: dict[str, Any]) -> bytes | None:
    source = block.get("source") or {}
    if source.get("type") != "base64" or source.get("media_type") != "application/pdf":
        return None
    try:
        return base64.b64decode(source.get("data") or "", validate=False)
    except (binascii.Error, ValueError):
        return b""


def _pdf_pages(data: bytes) -> int:
    return max(1, len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", data)))


def _chars(value: Any) -> int:
    """Rough size in characters of a piece of request content (4 characters ~ 1 token)."""
    if value is None:
        return 0
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return sum(_chars(v) for v in value)
    if not isinstance(value, dict):
        return len(str(value))
    kind = value.get("type")
    if kind == "text":
        return len(value.get("text") or "")
    if kind == "document":
        source = value.get("source") or {}
        pdf = _pdf_bytes(value)
        if pdf is not None:
            return _pdf_pages(pdf) * _PDF_CHARS_PER_PAGE
        if source.get("type") == "text":
            return len(source.get("data") or "")
        if source.get("type") == "content":
            return _chars(source.get("content"))
        return len(_canonical(_without_cache_control(source)))
    if kind == "image":
        return _IMAGE_CHARS
    if kind == "tool_use":
        return len(_canonical(value.get("input")))
    if kind == "tool_result":
        return _chars(value.get("content"))
    return len(_canonical(_without_cache_control(value)))


@dataclass
class _Unit:
    """One cacheable piece of a prompt, in the API's caching order: tools, system, messages."""

    key: str
    chars: int
    cache_control: dict[str, Any] | None


def _prompt_units(body: dict[str, Any]) -> list[_Unit]:
    units: list[_Unit] = []
    for tool in body.get("tools") or []:
        if isinstance(tool, dict):
            clean = _without_cache_control(tool)
            units.append(
                _Unit(
                    "tool:" + _canonical(clean), len(_canonical(clean)), tool.get("cache_control")
                )
            )
    system = body.get("system")
    if isinstance(system, str) and system:
        units.append(_Unit("system:" + system, len(system), None))
    elif isinstance(system, list):
        for block in system:
            if isinstance(block, dict):
                units.append(
                    _Unit(
                        "system:" + _canonical(_without_cache_control(block)),
                        _chars(block),
                        block.get("cache_control"),
                    )
                )
    for message in body.get("messages") or []:
        if not isinstance(message, dict):
            continue
        role = message.get("role", "user")
        content = message.get("content")
        if isinstance(content, str):
            units.append(_Unit(f"{role}:" + content, len(content) + 4, None))
        elif isinstance(content, list):
            for block in content:
                if isinstance(block, dict):
                    units.append(
                        _Unit(
                            f"{role}:" + _canonical(_without_cache_control(block)),
                            _chars(block) + 1,
                            block.get("cache_control"),
                        )
                    )
    if isinstance(body.get("cache_control"), dict) and units:
        # Automatic caching: the breakpoint goes on the last block.
        last = units[-1]
        if last.cache_control is None:
            units[-1] = _Unit(last.key, last.chars, body["cache_control"])
    return units


def _ttl_seconds(cache_control: dict[str, Any] | None) -> float:
    return 3600.0 if (cache_control or {}).get("ttl") == "1h" else 300.0


@dataclass
class _CachePlan:
    total: int
    read: int
    write: int
    write_ttl: str
    entries: list[tuple[str, float]]  # (prefix hash, ttl seconds) to store or refresh


# ---------------------------------------------------------------------------------------------
# The fake "model": schema discovery and deterministic extraction


def _resolve(schema: Any, root: Any, depth: int = 0) -> Any:
    """Follow ``$ref`` and unwrap nullable ``anyOf``/``oneOf`` to the object schema inside."""
    if depth > 20 or not isinstance(schema, dict):
        return schema
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part) if isinstance(target, dict) else None
        return _resolve(target, root, depth + 1)
    for key in ("anyOf", "oneOf", "allOf"):
        branches = schema.get(key)
        if isinstance(branches, list):
            real = [b for b in branches if not (isinstance(b, dict) and b.get("type") == "null")]
            if len(real) == 1:
                return _resolve(real[0], root, depth + 1)
    return schema


def _types(schema: Any, root: Any) -> set[str]:
    """The JSON types a (value) schema allows."""
    if not isinstance(schema, dict):
        return set()
    found: set[str] = set()
    kind = schema.get("type")
    if isinstance(kind, str):
        found.add(kind)
    elif isinstance(kind, list):
        found.update(k for k in kind if isinstance(k, str))
    if isinstance(schema.get("$ref"), str):
        found |= _types(_resolve(schema, root), root)
    for key in ("anyOf", "oneOf", "allOf"):
        for branch in schema.get(key) or []:
            found |= _types(branch, root)
    if not found and "enum" in schema:
        found.add("string")
    return found


def _is_field_schema(schema: Any, root: Any) -> bool:
    schema = _resolve(schema, root)
    return (
        isinstance(schema, dict)
        and isinstance(schema.get("properties"), dict)
        and "value" in schema["properties"]
    )


def _find_fields(schema: Any, root: Any, depth: int = 0) -> tuple[list[str], dict[str, Any]] | None:
    """Path to the object with one property per field, and its properties (field -> schema)."""
    schema = _resolve(schema, root)
    if depth > 8 or not isinstance(schema, dict):
        return None
    props = schema.get("properties")
    if isinstance(props, dict) and props:
        if all(_is_field_schema(v, root) for v in props.values()):
            return [], {k: _resolve(v, root) for k, v in props.items()}
        for name, sub in props.items():
            found = _find_fields(sub, root, depth + 1)
            if found is not None:
                return [name, *found[0]], found[1]
    return None


def _norm(label: str) -> str:
    label = label.strip().lstrip("-*•#>").strip().lower()
    label = re.sub(r"[_\-]+", " ", label)
    return re.sub(r"\s+", " ", label).strip()


def _find_line(text: str, names: list[str]) -> tuple[str, str, int] | None:
    """The first ``Label: value`` line whose label is (else contains) one of ``names``."""
    wanted = [n for n in (_norm(x) for x in names if x) if n]
    if not wanted:
        return None
    exact: tuple[str, str, int] | None = None
    partial: tuple[str, str, int] | None = None
    for page_number, page in enumerate(text.split("\f"), start=1):
        for line in page.splitlines():
            if ":" not in line:
                continue
            label, value = line.split(":", 1)
            label, value = _norm(label), value.strip()
            if not value or not label:
                continue
            hit = (value, line.strip(), page_number)
            if exact is None and label in wanted:
                exact = hit
            elif partial is None and any(w in label for w in wanted):
                partial = hit
        if exact is not None:
            break
    return exact or partial


def _convert(value: Any, value_schema: Any, root: Any) -> Any:
    """Shape an extracted string as the value schema's type asks (None if it cannot)."""
    if not isinstance(value, str):
        return value
    kinds = _types(value_schema, root) - {"null"}
    if not kinds or "string" in kinds:
        return value
    if "number" in kinds or "integer" in kinds:
        cleaned = re.sub(r"[^0-9.\-]", "", value.replace(",", ""))
        try:
            number = float(cleaned)
        except ValueError:
            return None
        if "integer" in kinds and "number" not in kinds:
            return int(number) if number.is_integer() else None
        return int(number) if number.is_integer() and "." not in cleaned else number
    if "boolean" in kinds:
        lowered = value.strip().lower()
        if lowered in {"yes", "true", "y", "1", "x", "checked"}:
            return True
        if lowered in {"no", "false", "n", "0", "unchecked"}:
            return False
        return None
    if "array" in kinds:
        return [part.strip() for part in re.split(r"[;,]", value) if part.strip()]
    return value


def _document_text(messages: list[Any]) -> tuple[str, list[bytes]]:
    """The document text in the user turns, and any base64 PDFs sent as document blocks.

    The text is that of text-source document blocks and ``<document...>``/``<doc>`` tags when there
    are any; otherwise all user text, unless a PDF was sent (the text is then only instructions).
    """
    texts: list[str] = []
    documents: list[str] = []
    pdfs: list[bytes] = []
    for message in messages:
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        for block in blocks or []:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "text":
                texts.append(block.get("text") or "")
            elif block.get("type") == "document":
                source = block.get("source") or {}
                pdf = _pdf_bytes(block)
                if pdf is not None:
                    pdfs.append(pdf)
                elif source.get("type") == "text":
                    documents.append(source.get("data") or "")
                elif source.get("type") == "content":
                    documents.extend(
                        b.get("text") or ""
                        for b in source.get("content") or []
                        if isinstance(b, dict) and b.get("type") == "text"
                    )
    joined = "\n".join(texts)
    tagged = [m.group(2) for m in _DOCUMENT_TAG.finditer(joined)]
    if documents or tagged:
        return "\n".join(documents + tagged), pdfs
    return ("" if pdfs else joined), pdfs


# ---------------------------------------------------------------------------------------------
# The server


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # many workers may connect at once (the default backlog is 5)
    fake: FakeAnthropic

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError):
            return  # the client hung up (e.g. it timed out while we slept)
        self.fake._errors.append(traceback.format_exc())
        super().handle_error(request, client_address)


class _Handler(LoopbackHandler):
    label = "fake-anthropic"
    server: _Server


class _Reply:
    def __init__(
        self,
        status: int,
        body: Any = None,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> None:
        self.status = status
        self.body = body
        self.headers = dict(headers or {})
        self.content_type = content_type


class FakeAnthropic(LoopbackServer):
    """A loopback Anthropic API. Use as a context manager (or ``start()``/``stop()``).

    Knobs (plain attributes, safe to change while running):

    * ``latency``: seconds added to every ``POST /v1/messages`` (and ``count_tokens``) answer,
      a float or a ``(min, max)`` tuple for a uniform random delay. Rate-limit 429s are immediate.
    * ``pdf_answer``: ``{field: value | (value, quote) | (value, quote, page)}`` used for fields
      when the document came only as a base64 PDF block (no text); unlisted fields are null.
    * ``fabricate``: ``{field: (value, quote[, page])}`` forced answers regardless of the text.
    * ``invalid_json_once``: when True, the next generated answer does not fit the schema (the tool
      input lacks the fields object; structured output text is cut-off JSON); then resets to False.
    * ``batch_delay`` (seconds) and ``batch_polls`` (retrieves answered "in_progress" first): a
      batch ends on the first retrieve after both are satisfied (defaults 0 and 0: the first
      retrieve).
    * ``batch_outcomes``: ``{custom_id: "errored" | "errored:<error type>" | "expired" | "canceled"
      | "succeeded" | <full result dict>}``; unlisted requests succeed.
    * ``cache_min_tokens``: a cache breakpoint whose prefix is shorter is not cached (default
      None: the model's own minimum, ``CACHE_MINIMUM_TOKENS``, as the real API does).
    * ``credit_exhausted``: when True, every paid call (``POST /v1/messages`` and batch creation)
      answers 400 ``invalid_request_error`` saying the credit balance is too low, as the real
      API does for an account out of credit; other endpoints keep working.
    * ``api_key``: when set, requests with another key get 401; by default any key is accepted
      (but a request with neither ``x-api-key`` nor ``Authorization`` gets 401).
    * ``max_request_bytes``: a larger ``POST /v1/messages`` body gets 413 (default 32 MB).
    * ``max_batch_bytes``: a larger ``POST /v1/messages/batches`` body gets 413 (default 256 MB,
      the Message Batches API's limit).
    * ``upload_bytes_per_second``: read request bodies no faster than this (None: at once), as
      a slow link would deliver them; a client that gives up mid-body gets nothing made.
    * ``verbose``: log each request to stderr.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        latency: float | tuple[float, float] = 0.0,
        verbose: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.latency: float | tuple[float, float] = latency
        self.pdf_answer: dict[str, Any] = {}
        self.fabricate: dict[str, tuple[Any, ...]] = {}
        self.invalid_json_once = False
        self.batch_delay = 0.0
        self.batch_polls = 0
        self.batch_outcomes: dict[str, Any] = {}
        self.cache_min_tokens: int | None = None
        self.credit_exhausted = False
        self.api_key: str | None = None
        self.max_request_bytes = MAX_REQUEST_BYTES
        self.max_batch_bytes = MAX_BATCH_BYTES
        self.upload_bytes_per_second: float | None = None
        self.verbose = verbose
        self._lock = threading.RLock()
        self._requests: list[RecordedRequest] = []
        self._scripts: list[_Script] = []
        self._cache: dict[str, float] = {}  # prefix hash -> expiry (monotonic)
        self._batches: dict[str, _Batch] = {}
        self._errors: list[str] = []
        self._buckets: dict[str, _Bucket] = {}
        self.rate_limit()

    # -- lifecycle ------------------------------------------------------------------------------

    def _server_classes(self) -> tuple[type[_Server], type[_Handler]]:
        return _Server, _Handler

    # -- configuration --------------------------------------------------------------------------

    def script(
        self,
        status: int = 200,
        *,
        body: Any = None,
        headers: dict[str, str] | None = None,
        times: int | None = 1,
        path: str = MESSAGES_PATH,
        method: str | None = "POST",
        delay: float = 0.0,
        disconnect: bool = False,
        message: str | None = None,
        error_type: str | None = None,
        error_code: str | None = None,
    ) -> None:
        """Queue a scripted answer for the next ``times`` matching requests (None: every one).

        Scripts are used first-in first-out; each matches requests to ``path`` (exact, or a prefix
        ending in ``*``, or ``"*"`` for any path) with ``method`` (None: any method). An error
        status without ``body`` gets Anthropic's error JSON (``message``, ``error_type`` and
        ``error_code`` override its parts; ``error_code`` goes to ``error.details.error_code``).
        A 200 without ``body`` is the normal generated answer plus ``headers``. ``body`` may be a
        dict, str, bytes or a callable taking the RecordedRequest. ``delay`` adds seconds (after
        the latency); ``disconnect`` closes the connection without answering (the SDK raises
        APIConnectionError).
        """
        if times is not None and times < 1:
            raise ValueError("times must be at least 1 (or None for every request)")
        with self._lock:
            self._scripts.append(
                _Script(
                    status=status,
                    headers={k.lower(): str(v) for k, v in (headers or {}).items()},
                    body=body,
                    times=times,
                    path=path,
                    method=method.upper() if method else None,
                    delay=delay,
                    disconnect=disconnect,
                    message=message,
                    error_type=error_type,
                    error_code=error_code,
                )
            )

    def clear_scripts(self) -> None:
        with self._lock:
            self._scripts.clear()

    @property
    def scripts_pending(self) -> int:
        with self._lock:
            return len(self._scripts)

    def rate_limit(
        self,
        requests_per_minute: int | None = None,
        input_tokens_per_minute: int | None = None,
        output_tokens_per_minute: int | None = None,
        *,
        burst_seconds: float = 60.0,
    ) -> None:
        """Enforce per-minute limits on ``POST /v1/messages`` (token buckets refilled continuously).

        Beyond them the answer is 429 ``rate_limit_error`` with ``retry-after``. A limit left None
        is effectively unlimited (but still reported in the headers). Calling it resets the buckets
        (full). ``burst_seconds`` caps each bucket at that many seconds' worth of its limit (the
        real API may enforce 60 RPM as 1 request a second): e.g. 1.0 allows almost no burst.
        """
        with self._lock:
            share = max(1e-3, min(1.0, burst_seconds / 60.0))

            def bucket(limit: int | None, unlimited: int) -> _Bucket:
                per_minute = limit or unlimited
                return _Bucket(per_minute, capacity=max(1.0, per_minute * share))

            self._buckets = {
                "requests": bucket(requests_per_minute, _UNLIMITED_RPM),
                "input-tokens": bucket(input_tokens_per_minute, _UNLIMITED_TPM),
                "output-tokens": bucket(output_tokens_per_minute, _UNLIMITED_TPM),
            }

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()

    def reset(self) -> None:
        """Forget requests, scripts, cache, batches and limits; restore default knobs."""
        with self._lock:
            self._requests.clear()
            self._scripts.clear()
            self._cache.clear()
            self._batches.clear()
            self._errors.clear()
            self.latency = 0.0
            self.pdf_answer = {}
            self.fabricate = {}
            self.invalid_json_once = False
            self.batch_delay = 0.0
            self.batch_polls = 0
            self.batch_outcomes = {}
            self.cache_min_tokens = None
            self.credit_exhausted = False
            self.api_key = None
            self.max_request_bytes = MAX_REQUEST_BYTES
            self.max_batch_bytes = MAX_BATCH_BYTES
            self.upload_bytes_per_second = None
        self.rate_limit()

    # -- inspection -----------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def count(
        self,
        path: str | None = MESSAGES_PATH,
        *,
        method: str | None = None,
        status: int | None = None,
    ) -> int:
        """How many requests matched ``path`` (as in ``script``; None: any), method and status."""
        with self._lock:
            return sum(
                1
                for r in self._requests
                if (path is None or self._path_matches(path, r.path))
                and (method is None or r.method == method.upper())
                and (status is None or r.status == status)
            )

    @property
    def errors(self) -> list[str]:
        """Tracebacks of bugs inside the fake itself (should stay empty)."""
        with self._lock:
            return list(self._errors)

    @property
    def batches(self) -> dict[str, dict[str, Any]]:
        """Submitted batches: id -> {"status", "custom_ids", "requests", "results"}."""
        with self._lock:
            return {
                b.id: {
                    "status": b.status,
                    "custom_ids": [r["custom_id"] for r in b.requests],
                    "requests": copy.deepcopy(b.requests),
                    "results": copy.deepcopy(b.results),
                }
                for b in self._batches.values()
            }

    # -- request handling -----------------------------------------------------------------------

    @staticmethod
    def _path_matches(pattern: str, path: str) -> bool:
        if pattern == "*":
            return True
        if pattern.endswith("*"):
            return path.startswith(pattern[:-1])
        return path == pattern.rstrip("/") or path == pattern

    def _take_script(self, method: str, path: str) -> _Script | None:
        with self._lock:
            for index, script in enumerate(self._scripts):
                if (script.method is None or script.method == method) and self._path_matches(
                    script.path, path
                ):
                    if script.times is not None:
                        script.times -= 1
                        if script.times <= 0:
                            del self._scripts[index]
                    return script
        return None

    def _latency(self) -> float:
        latency = self.latency
        if isinstance(latency, tuple | list):
            low, high = latency
            return random.uniform(float(low), float(high))  # noqa: S311 - not security related
        return float(latency or 0.0)

    def _handle(self, handler: _Handler) -> None:
        request_id = _new_id("req_")
        split = urlsplit(handler.path)
        path = split.path.rstrip("/") or "/"
        raw = self._read_body(handler)
        headers = {k.lower(): v for k, v in handler.headers.items()}
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        record = RecordedRequest(
            method=handler.command,
            path=path,
            query=parse_qs(split.query),
            headers=headers,
            body=parsed,
            raw=raw,
            at=time.monotonic(),
            request_id=request_id,
        )
        with self._lock:
            self._requests.append(record)
        try:
            reply = self._dispatch(record, raw)
        except Exception:
            with self._lock:
                self._errors.append(traceback.format_exc())
            reply = _Reply(500, error_body(500, "fake server bug (see fake.errors)"))
        if reply is None:  # scripted disconnect
            record.status = 0
            handler.close_connection = True
            with contextlib.suppress(OSError):
                handler.connection.shutdown(2)
            return
        record.status = reply.status
        self._send(handler, reply, request_id)

    def _read_body(self, handler: _Handler) -> bytes:
        rate = self.upload_bytes_per_second
        length = int(handler.headers.get("Content-Length") or 0)
        if not rate or not length:
            return handler.read_body()
        pieces, left = [], length
        while left:
            piece = handler.rfile.read(min(left, 64 * 1024))
            if not piece:
                break  # the client hung up mid-body
            pieces.append(piece)
            left -= len(piece)
            time.sleep(len(piece) / rate)
        return b"".join(pieces)

    def _send(self, handler: _Handler, reply: _Reply, request_id: str) -> None:
        body = reply.body
        if isinstance(body, dict) and body.get("type") == "error" and "request_id" not in body:
            body = {**body, "request_id": request_id}
        if isinstance(body, bytes):
            data = body
        elif isinstance(body, str):
            data = body.encode()
        elif body is None:
            data = b""
        else:
            data = json.dumps(body).encode()
        handler.send_response(reply.status)
        handler.send_header("Content-Type", reply.content_type)
        handler.send_header("Content-Length", str(len(data)))
        handler.send_header("request-id", request_id)
        handler.send_header("anthropic-organization-id", "00000000-0000-4000-8000-00000000fa4e")
        for name, value in self._limit_headers().items():
            if name not in reply.headers:
                handler.send_header(name, value)
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)
        handler.wfile.flush()

    def _limit_headers(self) -> dict[str, str]:
        now = time.monotonic()
        wall = _now()
        out: dict[str, str] = {}
        with self._lock:
            for name, bucket in self._buckets.items():
                bucket.refill(now)
                out[f"anthropic-ratelimit-{name}-limit"] = str(bucket.per_minute)
                out[f"anthropic-ratelimit-{name}-remaining"] = str(int(bucket.level))
                out[f"anthropic-ratelimit-{name}-reset"] = _rfc3339(
                    wall + timedelta(seconds=math.ceil(bucket.reset_at(now)))
                )
            tokens = self._buckets["input-tokens"]
            out["anthropic-ratelimit-tokens-limit"] = str(tokens.per_minute)
            out["anthropic-ratelimit-tokens-remaining"] = str(int(tokens.level))
            out["anthropic-ratelimit-tokens-reset"] = out["anthropic-ratelimit-input-tokens-reset"]
        return out

    def _dispatch(self, record: RecordedRequest, raw: bytes) -> _Reply | None:
        method, path = record.method, record.path
        is_messages = path in (MESSAGES_PATH, MESSAGES_PATH + "/count_tokens") and method == "POST"

        script = self._take_script(method, path)
        delay = (self._latency() if is_messages else 0.0) + (script.delay if script else 0.0)
        if script is not None:
            if delay:
                time.sleep(delay)
            if script.disconnect:
                return None
            if script.status != 200 or script.body is not None:
                return self._scripted_reply(script, record)
            reply = self._route(record, raw, delay=0.0)
            reply.headers.update(script.headers)
            return reply
        return self._route(record, raw, delay=delay)

    def _scripted_reply(self, script: _Script, record: RecordedRequest) -> _Reply:
        body = script.body(record) if callable(script.body) else copy.deepcopy(script.body)
        if body is None:
            body = error_body(
                script.status,
                script.message,
                error_type=script.error_type,
                error_code=script.error_code,
            )
        headers = {k: v for k, v in script.headers.items() if k != "content-type"}
        return _Reply(
            script.status,
            body,
            headers,
            content_type=script.headers.get("content-type", "application/json"),
        )

    def _route(self, record: RecordedRequest, raw: bytes, *, delay: float) -> _Reply:
        method, path, body = record.method, record.path, record.body
        auth = self._check_auth(record)
        if auth is not None:
            return auth
        if method == "POST" and raw and body is None:
            return _Reply(
                400,
                error_body(400, "There was an issue with the request body: it is not valid JSON."),
            )
        parts = path.strip("/").split("/")
        paid = method == "POST" and path in (MESSAGES_PATH, MESSAGES_PATH + "/batches")
        if paid and self.credit_exhausted:
            return _Reply(400, error_body(400, CREDIT_BALANCE_TOO_LOW))
        if path == MESSAGES_PATH and method == "POST":
            return self._messages(record, raw, delay)
        if path == MESSAGES_PATH + "/count_tokens" and method == "POST":
            if delay:
                time.sleep(delay)
            problem = self._validate_params(body, need_max_tokens=False)
            if problem:
                return _Reply(400, error_body(400, problem))
            return _Reply(200, {"input_tokens": _prompt_plan_total(body)})
        if parts[:3] == ["v1", "messages", "batches"]:
            if method == "POST" and len(parts) == 3 and len(raw) > self.max_batch_bytes:
                return _Reply(413, error_body(413))
            return self._batches_route(method, parts[3:], body, record.query)
        if parts[:2] == ["v1", "models"]:
            return self._models_route(method, parts[2:])
        return _Reply(404, error_body(404, f"Not found: {method} {path}"))

    def _check_auth(self, record: RecordedRequest) -> _Reply | None:
        key = record.headers.get("x-api-key")
        authorization = record.headers.get("authorization", "")
        if key is None and authorization.lower().startswith("bearer "):
            key = authorization[7:].strip()
        if not key:
            return _Reply(401, error_body(401, "x-api-key header is required"))
        if self.api_key is not None and key != self.api_key:
            return _Reply(401, error_body(401, "invalid x-api-key"))
        if "anthropic-version" not in record.headers:
            return _Reply(400, error_body(400, "anthropic-version: header is required"))
        return None

    # -- POST /v1/messages ----------------------------------------------------------------------

    @staticmethod
    def _validate_params(body: Any, *, need_max_tokens: bool = True) -> str | None:
        if not isinstance(body, dict):
            return "request body must be a JSON object"
        if not isinstance(body.get("model"), str) or not body["model"]:
            return "model: Field required"
        if need_max_tokens and not isinstance(body.get("max_tokens"), int):
            return "max_tokens: Field required"
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return (
                "messages: Field required"
                if messages is None
                else "messages: at least one message is required"
            )
        for index, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
                return f"messages.{index}.role: Input should be 'user' or 'assistant'"
        if messages[0].get("role") != "user":
            return 'messages: first message must use the "user" role'
        problem = _check_tool_pairs(messages) or _check_block_keys(body)
        if problem:
            return problem
        tools = body.get("tools") or []
        names = [t.get("name") for t in tools if isinstance(t, dict)]
        choice = body.get("tool_choice")
        if (
            isinstance(choice, dict)
            and choice.get("type") == "tool"
            and choice.get("name") not in names
        ):
            return f"tool_choice.name: tool {choice.get('name')!r} was not found in tools"
        if isinstance(choice, dict) and choice.get("type") in ("any", "tool") and not names:
            return "tool_choice: tools must be provided when tool_choice is any or tool"
        for index, message in enumerate(messages):
            content = message.get("content")
            for j, block in enumerate(content if isinstance(content, list) else []):
                if not isinstance(block, dict):
                    continue
                pdf = _pdf_bytes(block) if block.get("type") == "document" else None
                if pdf is not None:
                    if not pdf.startswith(b"%PDF"):
                        return (
                            f"messages.{index}.content.{j}.pdf.source.base64.data: "
                            "The PDF specified was not valid."
                        )
                    if _pdf_pages(pdf) > MAX_PDF_PAGES:
                        return (
                            f"messages.{index}.content.{j}.pdf.source.base64.data: "
                            f"A maximum of {MAX_PDF_PAGES} PDF pages may be provided."
                        )
        return None

    def _messages(self, record: RecordedRequest, raw: bytes, delay: float) -> _Reply:
        if len(raw) > self.max_request_bytes:
            return _Reply(413, error_body(413))
        body = record.body
        problem = self._validate_params(body)
        if problem:
            return _Reply(400, error_body(400, problem))
        plan = self._cache_plan(body)
        limited = self._admit(plan, int(body["max_tokens"]))
        if limited is not None:
            return limited
        if delay:
            time.sleep(delay)
        message = self._answer(body, plan, service_tier="standard")
        self._settle_output(int(body["max_tokens"]), message["usage"]["output_tokens"])
        if body.get("stream"):
            return _Reply(200, _sse(message), content_type="text/event-stream; charset=utf-8")
        return _Reply(200, message)

    def _cache_plan(self, body: dict[str, Any]) -> _CachePlan:
        units = _prompt_units(body)
        total_chars = sum(u.chars for u in units)
        total = max(1, total_chars // 4 + 4)
        model = str(body.get("model"))
        minimum = (
            cache_minimum_tokens(model) if self.cache_min_tokens is None else self.cache_min_tokens
        )
        breakpoints: list[tuple[str, int, dict[str, Any]]] = []
        digest = hashlib.sha256(model.encode())
        chars = 0
        for unit in units:
            digest.update(b"\x00" + unit.key.encode())
            chars += unit.chars
            if unit.cache_control is not None:
                tokens = chars // 4
                if tokens >= minimum and tokens > 0:
                    breakpoints.append((digest.copy().hexdigest(), tokens, unit.cache_control))
        if not breakpoints:
            return _CachePlan(total, 0, 0, "5m", [])
        now = time.monotonic()
        read = 0
        with self._lock:
            for key, tokens, _ in reversed(breakpoints):
                expiry = self._cache.get(key)
                if expiry is not None and expiry > now:
                    read = tokens
                    break
        last_tokens = breakpoints[-1][1]
        write = max(0, last_tokens - read)
        ttl = "1h" if breakpoints[-1][2].get("ttl") == "1h" else "5m"
        entries = [(key, _ttl_seconds(cc)) for key, _, cc in breakpoints]
        return _CachePlan(total, read, write, ttl, entries)

    def _admit(self, plan: _CachePlan, max_tokens: int) -> _Reply | None:
        """Take from the rate-limit buckets, or answer 429 if the request does not fit."""
        now = time.monotonic()
        uncached = plan.total - plan.read
        with self._lock:
            needs = {
                "requests": 1.0,
                "input-tokens": float(uncached),
                "output-tokens": float(max_tokens),
            }
            waits = {}
            for name, bucket in self._buckets.items():
                bucket.refill(now)
                amount = (
                    min(needs[name], bucket.capacity) if name == "output-tokens" else needs[name]
                )
                waits[name] = bucket.wait_for(amount)
            worst = max(waits, key=lambda n: waits[n])
            if waits[worst] > 0:
                retry = 60 if math.isinf(waits[worst]) else max(1, math.ceil(waits[worst]))
                what = {
                    "requests": "requests",
                    "input-tokens": "input tokens",
                    "output-tokens": "output tokens",
                }[worst]
                message = (
                    f"This request would exceed your organization's rate limit of "
                    f"{self._buckets[worst].per_minute} {what} per minute. "
                    f"For details, refer to: https://docs.claude.com/en/api/rate-limits."
                )
                return _Reply(429, error_body(429, message), {"retry-after": str(retry)})
            for name, bucket in self._buckets.items():
                amount = (
                    min(needs[name], bucket.capacity) if name == "output-tokens" else needs[name]
                )
                bucket.level -= amount
            for key, ttl in plan.entries:
                self._cache[key] = max(self._cache.get(key, 0.0), now + ttl)
        return None

    def _settle_output(self, max_tokens: int, used: int) -> None:
        with self._lock:
            bucket = self._buckets["output-tokens"]
            reserved = min(float(max_tokens), bucket.capacity)
            bucket.level = min(bucket.capacity, bucket.level + max(0.0, reserved - used))

    def _answer(
        self, body: dict[str, Any], plan: _CachePlan, *, service_tier: str
    ) -> dict[str, Any]:
        """The generated Message for a validated request."""
        with self._lock:
            broken = self.invalid_json_once
            self.invalid_json_once = False
            fabricate = dict(self.fabricate)
            pdf_answer = dict(self.pdf_answer)
        max_tokens = int(body.get("max_tokens") or 4096)
        tools = [t for t in body.get("tools") or [] if isinstance(t, dict)]
        choice = body.get("tool_choice") if isinstance(body.get("tool_choice"), dict) else {}
        tool: dict[str, Any] | None = None
        if tools and choice.get("type") != "none":
            if choice.get("type") == "tool":
                tool = next(t for t in tools if t.get("name") == choice.get("name"))
            else:
                tool = next((t for t in tools if "input_schema" in t), None)
        output_format = (body.get("output_config") or {}).get("format") or {}

        stop_reason = "end_turn"
        content: list[dict[str, Any]]
        if tool is not None:
            answer = _extract(tool.get("input_schema") or {}, body, fabricate, pdf_answer, broken)
            text = json.dumps(answer)
            output_tokens = max(1, len(text) // 4)
            if output_tokens > max_tokens:
                answer, output_tokens, stop_reason = {}, max_tokens, "max_tokens"
            else:
                stop_reason = "tool_use"
            content = [
                {
                    "type": "tool_use",
                    "id": _new_id("toolu_"),
                    "name": tool.get("name"),
                    "input": answer,
                }
            ]
        elif output_format.get("type") == "json_schema":
            answer = _extract(output_format.get("schema") or {}, body, fabricate, pdf_answer, False)
            text = json.dumps(answer)
            if broken:
                text = text[: max(1, len(text) // 2)]
            output_tokens = max(1, len(text) // 4)
            if output_tokens > max_tokens:
                text, output_tokens, stop_reason = text[: max_tokens * 4], max_tokens, "max_tokens"
            content = [{"type": "text", "text": text}]
        else:
            text = "I am a fake Anthropic model; give me a tool or an output schema to fill in."
            output_tokens = max(1, len(text) // 4)
            content = [{"type": "text", "text": text}]

        input_tokens = max(0, plan.total - plan.read - plan.write)
        return {
            "id": _new_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": body.get("model"),
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "cache_creation_input_tokens": plan.write,
                "cache_read_input_tokens": plan.read,
                "cache_creation": {
                    "ephemeral_5m_input_tokens": plan.write if plan.write_ttl == "5m" else 0,
                    "ephemeral_1h_input_tokens": plan.write if plan.write_ttl == "1h" else 0,
                },
                "service_tier": service_tier,
            },
        }

    # -- Message Batches ------------------------------------------------------------------------

    def _batch_json(self, batch: _Batch) -> dict[str, Any]:
        counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        if batch.status == "ended":
            for result in batch.results:
                counts[result["result"]["type"]] += 1
        else:
            counts["processing"] = len(batch.requests)
        return {
            "id": batch.id,
            "type": "message_batch",
            "processing_status": batch.status,
            "request_counts": counts,
            "created_at": _rfc3339(batch.created_at),
            "expires_at": _rfc3339(batch.created_at + timedelta(hours=24)),
            "ended_at": _rfc3339(batch.ended_at) if batch.ended_at else None,
            "cancel_initiated_at": (
                _rfc3339(batch.cancel_initiated_at) if batch.cancel_initiated_at else None
            ),
            "archived_at": None,
            "results_url": (
                f"{self.base_url}/v1/messages/batches/{batch.id}/results"
                if batch.status == "ended"
                else None
            ),
        }

    def _end_batch(self, batch: _Batch) -> None:
        results = []
        for item in batch.requests:
            custom_id = item["custom_id"]
            with self._lock:
                outcome = self.batch_outcomes.get(custom_id, "succeeded")
            if batch.cancel_initiated_at is not None and outcome == "succeeded":
                outcome = "canceled"
            if isinstance(outcome, dict):
                result = copy.deepcopy(outcome)
            elif outcome == "succeeded":
                params = item["params"]
                result = {
                    "type": "succeeded",
                    "message": self._answer(params, self._batch_plan(params), service_tier="batch"),
                }
            elif outcome.startswith("errored"):
                _, _, kind = outcome.partition(":")
                kind = kind or "api_error"
                status = next((s for s, t in ERROR_TYPES.items() if t == kind), 500)
                result = {
                    "type": "errored",
                    "error": error_body(status, error_type=kind, request_id=_new_id("req_")),
                }
            elif outcome in ("expired", "canceled"):
                result = {"type": outcome}
            else:
                raise ValueError(f"unknown batch outcome {outcome!r} for {custom_id}")
            results.append({"custom_id": custom_id, "result": result})
        results.reverse()  # results come back in no particular order; make sure it is not ours
        batch.results = results
        batch.status = "ended"
        batch.ended_at = _now()

    def _batch_plan(self, params: dict[str, Any]) -> _CachePlan:
        plan = self._cache_plan(params)
        now = time.monotonic()
        with self._lock:
            for key, ttl in plan.entries:
                self._cache[key] = max(self._cache.get(key, 0.0), now + ttl)
        return plan

    def _batches_route(
        self, method: str, rest: list[str], body: Any, query: dict[str, list[str]]
    ) -> _Reply:
        if not rest:
            if method == "POST":
                return self._create_batch(body)
            if method == "GET":
                return self._list_batches(query)
            return _Reply(405, error_body(405, f"{method} is not allowed here"))
        with self._lock:
            batch = self._batches.get(rest[0])
        if batch is None:
            return _Reply(404, error_body(404, f"No batch found with id {rest[0]!r}"))
        action = rest[1] if len(rest) > 1 else ""
        if method == "GET" and action == "":
            with self._lock:
                batch.polls += 1
                if batch.status != "ended" and (
                    batch.cancel_initiated_at is not None
                    or (
                        time.monotonic() - batch.created_mono >= self.batch_delay
                        and batch.polls > self.batch_polls
                    )
                ):
                    self._end_batch(batch)
                return _Reply(200, self._batch_json(batch))
        if method == "POST" and action == "cancel":
            with self._lock:
                if batch.status == "in_progress":
                    batch.status = "canceling"
                    batch.cancel_initiated_at = _now()
                return _Reply(200, self._batch_json(batch))
        if method == "GET" and action == "results":
            with self._lock:
                if batch.status != "ended":
                    return _Reply(
                        404,
                        error_body(
                            404, f"Batch {batch.id} has not finished processing; no results yet."
                        ),
                    )
                lines = "".join(json.dumps(r) + "\n" for r in batch.results)
            return _Reply(200, lines.encode(), content_type="application/binary")
        if method == "DELETE" and action == "":
            with self._lock:
                if batch.status != "ended":
                    return _Reply(
                        400,
                        error_body(400, "Batch is still processing; cancel it before deleting it."),
                    )
                del self._batches[batch.id]
            return _Reply(200, {"id": batch.id, "type": "message_batch_deleted"})
        return _Reply(404, error_body(404, f"Not found: {method} .../{'/'.join(rest)}"))

    def _list_batches(self, query: dict[str, list[str]]) -> _Reply:
        """One page of the batches, most recently created first, as the API pages them:
        ``limit`` (1 to 1,000, default 20), and ``after_id`` (the page after that batch, i.e.
        older ones) or ``before_id`` (newer ones)."""
        try:
            limit = int(query.get("limit", ["20"])[0])
        except ValueError:
            limit = 0
        if not 1 <= limit <= 1000:
            return _Reply(400, error_body(400, "limit: Input should be between 1 and 1000"))
        after = query.get("after_id", [None])[0]
        before = query.get("before_id", [None])[0]
        with self._lock:
            newest_first = list(reversed(self._batches.values()))
            ids = [b.id for b in newest_first]
            for cursor in (after, before):
                if cursor is not None and cursor not in ids:
                    return _Reply(404, error_body(404, f"No batch found with id {cursor!r}"))
            if after is not None:
                window = newest_first[ids.index(after) + 1 :]
                page, has_more = window[:limit], len(window) > limit
            elif before is not None:
                window = newest_first[: ids.index(before)]
                page, has_more = window[-limit:], len(window) > limit
            else:
                page, has_more = newest_first[:limit], len(newest_first) > limit
            data = [self._batch_json(b) for b in page]
        return _Reply(
            200,
            {
                "data": data,
                "has_more": has_more,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
            },
        )

    def _create_batch(self, body: Any) -> _Reply:
        requests = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not requests:
            return _Reply(400, error_body(400, "requests: at least one request is required"))
        seen: set[str] = set()
        for index, item in enumerate(requests):
            custom_id = item.get("custom_id") if isinstance(item, dict) else None
            if not isinstance(custom_id, str) or not _CUSTOM_ID.match(custom_id):
                return _Reply(
                    400,
                    error_body(
                        400,
                        f"requests.{index}.custom_id: String should match pattern "
                        "'^[a-zA-Z0-9_-]{1,64}$'",
                    ),
                )
            if custom_id in seen:
                return _Reply(
                    400,
                    error_body(
                        400, f"requests.{index}.custom_id: custom_id {custom_id!r} is not unique"
                    ),
                )
            seen.add(custom_id)
            problem = self._validate_params(item.get("params"))
            if problem:
                return _Reply(400, error_body(400, f"requests.{index}.params.{problem}"))
            if (item.get("params") or {}).get("stream"):
                return _Reply(
                    400,
                    error_body(
                        400,
                        f"requests.{index}.params.stream: streaming is not supported in batches",
                    ),
                )
        batch = _Batch(
            id=_new_id("msgbatch_"),
            requests=copy.deepcopy(requests),
            created_at=_now(),
            created_mono=time.monotonic(),
        )
        with self._lock:
            self._batches[batch.id] = batch
            return _Reply(200, self._batch_json(batch))

    # -- Models ---------------------------------------------------------------------------------

    def _models_route(self, method: str, rest: list[str]) -> _Reply:
        if method != "GET":
            return _Reply(404, error_body(404, "Not found"))
        with self._lock:
            used = {
                r.body.get("model")
                for r in self._requests
                if isinstance(r.body, dict) and isinstance(r.body.get("model"), str)
            }
        names = sorted({"claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-1"} | used)

        def info(name: str) -> dict[str, Any]:
            return {
                "type": "model",
                "id": name,
                "display_name": name.replace("-", " ").title(),
                "created_at": "2025-01-01T00:00:00Z",
                "lifecycle": "active",
            }

        if rest:
            return _Reply(200, info(rest[0]))
        data = [info(n) for n in names]
        return _Reply(
            200,
            {"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]},
        )


def _blocks(message: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    content = message.get("content")
    if not isinstance(content, list):
        return []
    return [b for b in content if isinstance(b, dict) and b.get("type") == kind]


def _check_tool_pairs(messages: list[dict[str, Any]]) -> str | None:
    """Every ``tool_use`` needs a ``tool_result`` in the next (user) message, as the API insists."""
    for index, message in enumerate(messages):
        if message.get("role") == "user":
            results = {b.get("tool_use_id") for b in _blocks(message, "tool_result")}
            previous = messages[index - 1] if index else {}
            uses = {b.get("id") for b in _blocks(previous, "tool_use")}
            stray = sorted(str(r) for r in results - uses)
            if stray:
                return (
                    f"messages.{index}.content: unexpected `tool_use_id` found in `tool_result` "
                    f"blocks: {', '.join(stray)}. Each `tool_result` block must have a "
                    "corresponding `tool_use` block in the previous message."
                )
        else:
            uses = [str(b.get("id")) for b in _blocks(message, "tool_use")]
            following = messages[index + 1] if index + 1 < len(messages) else None
            if uses and following is not None:
                answered = {b.get("tool_use_id") for b in _blocks(following, "tool_result")}
                missing = [u for u in uses if u not in answered]
                if missing:
                    return (
                        f"messages.{index}: `tool_use` ids were found without `tool_result` "
                        f"blocks immediately after: {', '.join(missing)}. Each `tool_use` block "
                        "must have a corresponding `tool_result` block in the next message."
                    )
    return None


def _check_block_keys(body: dict[str, Any]) -> str | None:
    """Refuse a content block with a key its request type does not have, or a null where the
    type allows none, with the API's wording."""
    places: list[tuple[str, Any]] = []
    system = body.get("system")
    if isinstance(system, list):
        places += [(f"system.{j}", block) for j, block in enumerate(system)]
    for index, message in enumerate(body.get("messages") or []):
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            places += [(f"messages.{index}.content.{j}", block) for j, block in enumerate(content)]
    for where, block in places:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        allowed = BLOCK_KEYS.get(str(kind))
        if allowed is None:
            continue
        for key, value in block.items():
            if key not in allowed:
                return f"{where}.{kind}.{key}: Extra inputs are not permitted"
            if value is None and key not in NULLABLE_BLOCK_KEYS:
                return f"{where}.{kind}.{key}: Input should not be null"
    return None


def cache_minimum_tokens(model: str) -> int:
    """The shortest prefix `model` caches (see CACHE_MINIMUM_TOKENS)."""
    names = [name for name in CACHE_MINIMUM_TOKENS if model.startswith(name)]
    if not names:
        return max(CACHE_MINIMUM_TOKENS.values())
    return CACHE_MINIMUM_TOKENS[max(names, key=len)]


def _prompt_plan_total(body: dict[str, Any]) -> int:
    return max(1, sum(u.chars for u in _prompt_units(body)) // 4 + 4)


def _extract(
    schema: dict[str, Any],
    body: dict[str, Any],
    fabricate: dict[str, tuple[Any, ...]],
    pdf_answer: dict[str, Any],
    broken: bool,
) -> dict[str, Any]:
    """Fill the schema's fields from ``Label: value`` lines of the document text."""
    text, pdfs = _document_text(body.get("messages") or [])
    found = _find_fields(schema, schema)
    if found is None:
        # No {value, quote, page} objects: treat the top-level properties as plain fields.
        root = _resolve(schema, schema)
        props = root.get("properties") if isinstance(root, dict) else None
        path: list[str] = []
        fields = {k: {"properties": {"value": v}, "_flat": True} for k, v in (props or {}).items()}
    else:
        path, fields = found
    if broken:
        return {"error": "this answer does not follow the schema"}
    use_pdf = not text.strip() and bool(pdfs)
    out: dict[str, Any] = {}
    for name, field_schema in fields.items():
        props = field_schema.get("properties") or {}
        value_schema = props.get("value")
        value: Any = None
        quote: str | None = None
        page: int | None = None
        if name in fabricate:
            forced = tuple(fabricate[name])
            value, quote = forced[0], forced[1] if len(forced) > 1 else None
            page = forced[2] if len(forced) > 2 else 1
        elif use_pdf:
            given = pdf_answer.get(name)
            if isinstance(given, tuple | list):
                value = given[0]
                quote = given[1] if len(given) > 1 else None
                page = given[2] if len(given) > 2 else (1 if quote else None)
            else:
                value = given
                quote = str(given) if given is not None else None
                page = 1 if given is not None else None
        else:
            title = field_schema.get("title") if isinstance(field_schema.get("title"), str) else ""
            hit = _find_line(text, [name, title])
            if hit is not None:
                value = _convert(hit[0], value_schema, schema)
                quote, page = hit[1], hit[2]
        if field_schema.get("_flat"):
            out[name] = value
            continue
        entry: dict[str, Any] = {}
        for key in props:
            if key == "value":
                entry[key] = value
            elif key == "quote":
                entry[key] = quote
            elif key == "page":
                entry[key] = page
            elif key == "confidence":
                entry[key] = 0.9 if value is not None else 0.0
            else:
                entry[key] = None
        out[name] = entry
    for key in reversed(path):
        out = {key: out}
    return out


def _sse(message: dict[str, Any]) -> bytes:
    """The Message as the stream of server-sent events the API sends for ``stream=true``."""
    events: list[tuple[str, dict[str, Any]]] = []
    start = {
        **message,
        "content": [],
        "stop_reason": None,
        "usage": {**message["usage"], "output_tokens": 1},
    }
    events.append(("message_start", {"type": "message_start", "message": start}))
    for index, block in enumerate(message["content"]):
        if block["type"] == "tool_use":
            events.append(
                (
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {**block, "input": {}},
                    },
                )
            )
            events.append(
                (
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {
                            "type": "input_json_delta",
                            "partial_json": json.dumps(block["input"]),
                        },
                    },
                )
            )
        else:
            events.append(
                (
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {"type": "text", "text": ""},
                    },
                )
            )
            events.append(
                (
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "text_delta", "text": block.get("text", "")},
                    },
                )
            )
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                "usage": {"output_tokens": message["usage"]["output_tokens"]},
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events).encode()


try:  # a pytest fixture for test modules that import it; the fake itself does not need pytest
    import pytest
except ImportError:  # pragma: no cover - standalone use without pytest installed
    pytest = None  # type: ignore[assignment]

if pytest is not None:

    @pytest.fixture
    def fake_anthropic(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAnthropic]:
        """A running FakeAnthropic, with ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY pointing at it."""
        with FakeAnthropic() as fake:
            monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.base_url)
            monkeypatch.setenv("ANTHROPIC_API_KEY", FAKE_API_KEY)
            yield fake


def _parse_latency(text: str) -> float | tuple[float, float]:
    if "," in text:
        low, high = text.split(",", 1)
        return (float(low), float(high))
    return float(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.fake_anthropic",
        description="Serve a fake Anthropic API (Messages and Message Batches) on loopback.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090, help="0 picks a free port")
    parser.add_argument(
        "--latency",
        type=_parse_latency,
        default=0.0,
        help="seconds per /v1/messages answer, or MIN,MAX",
    )
    parser.add_argument("--rpm", type=int, help="requests per minute limit")
    parser.add_argument("--itpm", type=int, help="input tokens per minute limit")
    parser.add_argument("--otpm", type=int, help="output tokens per minute limit")
    parser.add_argument(
        "--burst-seconds", type=float, default=60.0, help="bucket size in seconds of the limits"
    )
    parser.add_argument(
        "--batch-delay", type=float, default=0.0, help="seconds before a message batch ends"
    )
    parser.add_argument(
        "--cache-min-tokens", type=int, help="override every model's minimum cacheable prefix"
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="log every request")
    args = parser.parse_args(argv)

    fake = FakeAnthropic(args.host, args.port, latency=args.latency, verbose=args.verbose)
    fake.batch_delay = args.batch_delay
    fake.cache_min_tokens = args.cache_min_tokens
    if args.rpm or args.itpm or args.otpm:
        fake.rate_limit(args.rpm, args.itpm, args.otpm, burst_seconds=args.burst_seconds)
    fake.start()
    print(fake.base_url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
