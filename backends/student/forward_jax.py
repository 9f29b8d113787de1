"""JAX forward pass and loss for LoRA training: layers run under lax.scan over stacked weights,
and vocabulary logits are computed only at positions that carry loss, a chunk at a time.

The vocabulary projection is about a fifth of a 0.5B model's step; restricting it to target
positions and rematerialising each chunk in the backward pass keeps both time and memory down.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from backends.student.decoder_math import batch_context, decoder_layer, rms_norm

REMAT_LOGITS_BYTES = 1 << 30  # keep logits for the backward pass up to this size, recompute beyond


def dropout_fn(key, rate: float):
    """Inverted dropout with a fresh mask per call (each LoRA target draws its own), identity at rate 0."""
    if rate <= 0.0:
        return lambda x: x
    calls = iter(range(1_000_000))

    def drop(x):
        keep = jax.random.bernoulli(jax.random.fold_in(key, next(calls)), 1.0 - rate, x.shape)
        return jnp.where(keep, x / (1.0 - rate), 0.0)

    return drop


def hidden_states(cfg, layers, head, lora, tokens, positions, segments, flags, lora_scale, key=None, dropout=0.0,
                  frozen_below: int = 0):
    """Final-norm hidden states (B, T, D) for tokens (B, T); `flags` (L,) marks sliding-window layers.

    Layers below `frozen_below` take no gradient: their LoRA stays as it is, and a backward pass stops
    at the first layer above them instead of running through the whole stack."""
    ctx = batch_context(jnp, cfg, positions, segments)
    h = jnp.take(head["embed"], tokens, axis=0) * cfg.embed_scale  # (B, T, D)
    keys = jax.random.split(key if key is not None else jax.random.PRNGKey(0), cfg.n_layers)

    def body(h, xs):
        w, lo, local, k = xs
        lora_pairs = {name: (a, b) for name, (a, b) in lo.items()}
        return decoder_layer(jnp, cfg, h, w, lora_pairs, ctx, local, lora_scale, dropout_fn(k, dropout)), None

    per_layer = (layers, lora, flags, keys)
    if frozen_below:
        below = jax.tree.map(lambda x: jax.lax.stop_gradient(x[:frozen_below]), per_layer)
        h = jax.lax.stop_gradient(jax.lax.scan(body, h, below)[0])
        per_layer = jax.tree.map(lambda x: x[frozen_below:], per_layer)
    h, _ = jax.lax.scan(body, h, per_layer)
    return rms_norm(jnp, h, head["norm"], cfg.norm_eps)


def chunked_nll(h, out_w, index, targets, weights, chunk: int):
    """Sum of weighted next-token NLL at `index` (B, P) of h (B, T, D); logits (B, chunk, V) at a time."""
    B, P = index.shape
    sel = jnp.take_along_axis(h, index[..., None], axis=1)  # (B, P, D)
    n = P // chunk

    def one(hc, tc, wc):
        logits = jnp.einsum("bcd,vd->bcv", hc, out_w)  # (B, chunk, V)
        lse = jax.nn.logsumexp(logits, axis=-1)
        tgt = jnp.take_along_axis(logits, tc[..., None], axis=-1)[..., 0]
        return jnp.sum((lse - tgt) * wc)

    if B * P * out_w.shape[0] * 4 > REMAT_LOGITS_BYTES:
        # Storing every chunk's logits for the backward pass would cost too much memory: recompute
        # them instead (one more vocabulary product, about a tenth of a 0.5B model's step).
        one = jax.checkpoint(one)

    def body(total, xs):
        return total + one(*xs), None

    split = lambda x: jnp.moveaxis(x.reshape(B, n, chunk, *x.shape[2:]), 1, 0)  # noqa: E731
    total, _ = jax.lax.scan(body, jnp.float32(0.0), (split(sel), split(targets), split(weights)))
    return total


def batch_nll(cfg, layers, head, lora, batch, flags, lora_scale, chunk, key=None, dropout=0.0, frozen_below: int = 0):
    """Summed NLL over the loss positions of one packed batch (dict of (B, T) / (B, P) arrays)."""
    h = hidden_states(cfg, layers, head, lora, batch["tokens"], batch["positions"], batch["segments"],
                      flags, lora_scale, key, dropout, frozen_below)
    return chunked_nll(h, head["out"], batch["loss_index"], batch["targets"], batch["loss_weight"], chunk)
