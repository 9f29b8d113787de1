"""Sampling the next byte from logits: temperature, top-k, greedy at temperature 0."""
from __future__ import annotations

import numpy as np

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
