"""Dollar prices per million tokens, so every call (and every run, before it starts) has a cost.

Anthropic list prices (USD per MTok). Cache writes are 1.25x the input price (5-minute TTL), cache
reads 0.1x; Message Batches halve every component. Model ids resolve by longest matching prefix, so
dated ids (`claude-3-5-haiku-20241022`) and `-latest` aliases share one row.
"""
from __future__ import annotations

from dataclasses import dataclass

from k1core.errors import UserError

BATCH_DISCOUNT = 0.5


@dataclass(frozen=True)
class Price:
    """USD per million tokens for each kind of token a call can bill."""

    input: float
    output: float
    cache_write: float
    cache_read: float

    def cost_usd(self, input_tokens: int, output_tokens: int, cache_read_tokens: int = 0,
                 cache_write_tokens: int = 0, batched: bool = False) -> float:
        """Dollars for one call; `input_tokens` excludes the cached ones, as Anthropic reports it."""
        dollars = (input_tokens * self.input + output_tokens * self.output
                   + cache_write_tokens * self.cache_write + cache_read_tokens * self.cache_read) / 1e6
        return dollars * (BATCH_DISCOUNT if batched else 1.0)


FREE = Price(0.0, 0.0, 0.0, 0.0)


def _anthropic(input_price: float, output_price: float) -> Price:
    return Price(input_price, output_price, cache_write=input_price * 1.25, cache_read=input_price * 0.1)


ANTHROPIC_PRICES = {
    "claude-3-haiku": _anthropic(0.25, 1.25),
    "claude-3-5-haiku": _anthropic(0.80, 4.00),
    "claude-haiku-4-5": _anthropic(1.00, 5.00),
    "claude-3-5-sonnet": _anthropic(3.00, 15.00),
    "claude-3-7-sonnet": _anthropic(3.00, 15.00),
    "claude-sonnet-4": _anthropic(3.00, 15.00),
    "claude-3-opus": _anthropic(15.00, 75.00),
    "claude-opus-4-5": _anthropic(5.00, 25.00),
    "claude-opus-4": _anthropic(15.00, 75.00),
}


def anthropic_price(model: str) -> Price:
    """The price row for an Anthropic model id, or UserError listing the known families."""
    matches = [prefix for prefix in ANTHROPIC_PRICES if model.startswith(prefix)]
    if not matches:
        raise UserError(
            f"no price known for Anthropic model '{model}'; known families: {', '.join(ANTHROPIC_PRICES)}"
        )
    return ANTHROPIC_PRICES[max(matches, key=len)]
