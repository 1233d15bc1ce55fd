"""What Claude calls cost, in dollars, from their token usage and SHEAF_ANTHROPIC_PRICES.

Kept apart from the border module (`engine.py`), so pricing an estimate never loads the SDK.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

from extraction.contract import ErrorKind, ExtractionError


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_creation_input_tokens + other.cache_creation_input_tokens,
            self.cache_read_input_tokens + other.cache_read_input_tokens,
        )

    def as_dict(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
        }


MILLION = Decimal(1_000_000)


def price_of(model: str) -> dict[str, Decimal]:
    """Dollars per million tokens for a model, from SHEAF_ANTHROPIC_PRICES (the longest matching
    model-name prefix wins, so dated model ids find their family)."""
    table = settings.SHEAF_ANTHROPIC_PRICES
    names = sorted((name for name in table if model.startswith(name)), key=len, reverse=True)
    if not names:
        raise ExtractionError(
            "provider_error",
            f"No price is configured for model {model!r} (SHEAF_ANTHROPIC_PRICES).",
            kind=ErrorKind.CRITICAL,
        )
    row = {key: Decimal(str(value)) for key, value in table[names[0]].items()}
    row.setdefault("cache_write", row["input"] * Decimal("1.25"))
    row.setdefault("cache_read", row["input"] * Decimal("0.1"))
    return row


def cost_of(usage: Usage, *, model: str, batch_discount: bool = False) -> Decimal:
    """The dollar cost of a call; the Message Batches API costs half."""
    price = price_of(model)
    cost = (
        usage.input_tokens * price["input"]
        + usage.output_tokens * price["output"]
        + usage.cache_creation_input_tokens * price["cache_write"]
        + usage.cache_read_input_tokens * price["cache_read"]
    ) / MILLION
    if batch_discount:
        cost /= 2
    return cost.quantize(Decimal("0.000001"))


# The shortest prompt prefix, in tokens, each model caches: a `cache_control` breakpoint on a
# shorter prefix is ignored without an error, and the call costs the full input price (Anthropic's
# prompt caching guide). The longest matching model-name prefix wins. Where published figures
# disagree (Sonnet 4.6: 1,024 or 2,048; Opus 4.7: 2,048 or 4,096) the larger is kept, so that
# Sheaf never counts on a cache the model does not make; an unknown model gets the largest.
CACHE_MINIMUM_TOKENS: dict[str, int] = {
    "claude-haiku-4-5": 4096,
    "claude-opus-4-5": 4096,
    "claude-opus-4-6": 4096,
    "claude-opus-4-7": 4096,
    "claude-opus-4": 1024,
    "claude-sonnet-4-6": 2048,
    "claude-sonnet-4": 1024,
    "claude-3-7-sonnet": 1024,
    "claude-3-5-haiku": 2048,
    "claude-3-haiku": 2048,
}
CHARACTERS_PER_TOKEN = 4


def cache_minimum(model: str) -> int:
    """The shortest prefix, in tokens, that `model` caches."""
    names = [name for name in CACHE_MINIMUM_TOKENS if model.startswith(name)]
    if not names:
        return max(CACHE_MINIMUM_TOKENS.values())
    return CACHE_MINIMUM_TOKENS[max(names, key=len)]


def cacheable(*, characters: int, model: str) -> bool:
    """Whether a prompt prefix of this many characters is long enough for `model` to cache
    (~4 characters a token)."""
    return characters // CHARACTERS_PER_TOKEN >= cache_minimum(model)


# The estimate's guesses: a page without text read yet (a scan, or a PDF before it is read) is
# about this many tokens; instructions and answers add these.
TOKENS_PER_PAGE = 1500
INSTRUCTION_TOKENS = 600
ANSWER_TOKENS = 50
TOKENS_PER_FIELD = 100


def estimate_cost(*, characters: int, pages: int | None, fields: int, model: str) -> Decimal:
    """What a document will probably cost before it is sent: ~4 characters a token for text,
    ~1,500 tokens a page for a scanned PDF, ~100 output tokens a field."""
    if characters:
        input_tokens = characters // CHARACTERS_PER_TOKEN
    else:
        input_tokens = (pages or 1) * TOKENS_PER_PAGE
    usage = Usage(
        input_tokens=input_tokens + INSTRUCTION_TOKENS,
        output_tokens=TOKENS_PER_FIELD * fields + ANSWER_TOKENS,
    )
    return cost_of(usage, model=model)


def estimate_rates(model: str) -> dict[str, str]:
    """What the upload page's estimate (static/js/estimate.js) needs to compute `estimate_cost`
    for files not sent yet, as the page's data attributes. The economy lane costs half."""
    price = price_of(model)
    return {
        "input-per-million": str(price["input"]),
        "output-per-million": str(price["output"]),
        "characters-per-token": str(CHARACTERS_PER_TOKEN),
        "tokens-per-page": str(TOKENS_PER_PAGE),
        "instruction-tokens": str(INSTRUCTION_TOKENS),
        "answer-tokens": str(ANSWER_TOKENS),
        "tokens-per-field": str(TOKENS_PER_FIELD),
        "economy-factor": "0.5",
    }
