"""Extraction engines by name. A batch records the engine it was submitted with."""

from __future__ import annotations

import threading

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from extraction.contract import Engine, ErrorKind, ExtractionError

BUILT_IN_ENGINES = {
    "local": "extraction.local.engine.LocalEngine",
    "anthropic": "extraction.claude.engine.AnthropicEngine",
}


def available_engines() -> dict[str, str]:
    """Engine names with the dotted path of their class. Imported only when used: the Claude
    engine's SDK alone costs a worker about 50 MB."""
    # Benchmarks and end-to-end tests plug in instrumented engines (e.g. one that sleeps).
    return {**BUILT_IN_ENGINES, **settings.SHEAF_EXTRA_ENGINES}


def get_engine(name: str) -> Engine:
    engines = available_engines()
    if name == "anthropic" and not settings.ANTHROPIC_API_KEY:
        raise ExtractionError(
            "provider_error",
            "The Claude engine has no ANTHROPIC_API_KEY on this server.",
            kind=ErrorKind.CRITICAL,
        )
    if name not in engines:
        raise ExtractionError(
            "provider_error",
            f"The {name!r} extraction engine is not available on this server.",
            kind=ErrorKind.CRITICAL,
        )
    # One instance per configuration and process, so an engine's HTTP client (and its pooled
    # connections) serves every document instead of being built for each.
    key = (
        name,
        settings.ANTHROPIC_API_KEY,
        settings.ANTHROPIC_BASE_URL,
        settings.SHEAF_ANTHROPIC_MODEL,
    )
    with _instances_lock:
        if key not in _instances:
            _instances[key] = import_string(engines[name])()
        return _instances[key]


_instances: dict[tuple[str, ...], Engine] = {}
_instances_lock = threading.Lock()


# What each engine does, in the words the upload and batch pages use. Keep them true: a user decides
# how far to trust the values by what these say.
ENGINE_SUMMARIES = {
    "local": (
        "Sheaf's offline engine: finds each field beside its label in the document's text and "
        "normalises dates and amounts. No language model; nothing leaves this server. Scanned "
        "pages without a text layer cannot be read."
    ),
    "anthropic": (
        "Claude (Anthropic) reads each document and quotes where every value is; Sheaf checks "
        "each quote against the document's text."
    ),
}


def engine_summary(name: str) -> str:
    return ENGINE_SUMMARIES.get(name, f"The {name!r} engine.")


def engine_estimate_rates(name: str) -> dict[str, str] | None:
    """What the upload page prices files with before they are sent (see
    `extraction.claude.pricing.estimate_rates`): None for a free engine, empty for a paid one
    whose model has no price configured (the page then counts tokens only)."""
    if name != "anthropic":
        return None
    from extraction.claude.pricing import estimate_rates

    try:
        return estimate_rates(settings.SHEAF_ANTHROPIC_MODEL)
    except ExtractionError:
        return {}


def engine_for_new_batch(choice: str, *, api_key: str) -> str:
    """The engine a new batch uses: SHEAF_EXTRACTION_ENGINE, where auto means Claude when an
    Anthropic key is set, else the offline engine."""
    engines = available_engines()
    if choice == "auto":
        return "anthropic" if api_key else "local"
    if choice not in engines:
        raise ImproperlyConfigured(f"SHEAF_EXTRACTION_ENGINE={choice} is not available here")
    return choice
