"""Sampling from a language model: the next byte from logits (temperature, top-k, greedy at 0), and
a whole continuation; every model generates through `generate_ids` and evaluates through `mean_loss`,
so all behave alike."""
from __future__ import annotations

import numpy as np

from typing import Callable

from k1core.errors import UserError


def sample_next(logits: np.ndarray, temperature: float, top_k: int | None,
                rng: np.random.Generator) -> int:
    """One token id drawn from softmax(logits / temperature) restricted to the top_k largest."""
    if temperature < 0:
        raise UserError(f"temperature must be >= 0, got {temperature}")
    if top_k is not None and top_k < 1:
        raise UserError(f"top_k must be >= 1, got {top_k}")
    z = np.asarray(logits, dtype=np.float64)
    if temperature == 0:
        return int(np.argmax(z))
    z = z / temperature
    if top_k is not None and top_k < z.size:
        cutoff = np.partition(z, -top_k)[-top_k]
        z = np.where(z >= cutoff, z, -np.inf)
    probs = np.exp(z - z.max())
    probs /= probs.sum()
    return int(rng.choice(z.size, p=probs))


def generate_ids(next_logits: Callable[[np.ndarray], np.ndarray], prompt_ids, max_new_tokens: int,
                 temperature: float, top_k: int | None, seed: int, context: int) -> np.ndarray:
    """The prompt followed by `max_new_tokens` sampled ids; `next_logits(window)` gives the logits (V,)
    of the byte after a window of at most `context` ids. The RNG is its own: sampling never
    disturbs training."""
    ids = [int(i) for i in np.asarray(prompt_ids, dtype=np.int64).reshape(-1)]
    if not ids:
        raise UserError("the prompt must hold at least one byte")
    rng = np.random.default_rng(seed)
    for _ in range(max_new_tokens):
        ids.append(sample_next(next_logits(np.asarray(ids[-context:], dtype=np.int64)), temperature, top_k, rng))
    return np.asarray(ids, dtype=np.int64)


def mean_loss(loss: Callable[[np.ndarray, np.ndarray], float], batches) -> float:
    """Mean of loss(x, y) over `batches`, weighted by token count (every model's `evaluate`)."""
    total, count = 0.0, 0
    for x, y in batches:
        total += loss(x, y) * y.size
        count += y.size
    return total / max(count, 1)
