"""The jitted LoRA training step: gradient accumulation over micro-batches, global-norm clipping and
AdamW, all inside one XLA program; frozen weights are arguments (never baked-in constants)."""
from __future__ import annotations

from functools import lru_cache

import jax
import jax.numpy as jnp

from backends.student.forward_jax import batch_nll


@lru_cache(maxsize=8)  # one compile per distinct config within a process
def make_train_step(cfg, lora_scale: float, chunk: int, dropout: float, beta1: float, beta2: float,
                    eps: float, weight_decay: float, grad_clip: float, frozen_below: int = 0):
    """step(lora, m, v, t, layers, head, flags, batches (M, B, ...), lr, key) -> (lora, m, v, nll, n_tokens, gnorm);
    layers below `frozen_below` are not trained: no gradient reaches them and no update (weight decay
    included) changes them."""

    def micro_loss(lora, layers, head, flags, batch, key):
        return batch_nll(cfg, layers, head, lora, batch, flags, lora_scale, chunk, key, dropout, frozen_below)

    grad_fn = jax.value_and_grad(micro_loss)

    def step(lora, m, v, t, layers, head, flags, batches, lr, key):
        M = batches["tokens"].shape[0]

        def accumulate(carry, xs):
            grads, nll = carry
            batch, k = xs
            value, g = grad_fn(lora, layers, head, flags, batch, k)
            return (jax.tree.map(jnp.add, grads, g), nll + value), None

        zeros = jax.tree.map(jnp.zeros_like, lora)
        (grads, nll), _ = jax.lax.scan(accumulate, (zeros, jnp.float32(0.0)), (batches, jax.random.split(key, M)))
        n_tokens = jnp.maximum(jnp.sum(batches["loss_weight"]), 1.0)
        grads = jax.tree.map(lambda g: g / n_tokens, grads)  # mean NLL over every loss token of the step
        gnorm = jnp.sqrt(sum(jnp.sum(g * g) for g in jax.tree.leaves(grads)))
        if grad_clip > 0:
            grads = jax.tree.map(lambda g: g * jnp.minimum(1.0, grad_clip / (gnorm + 1e-12)), grads)
        t = t + 1
        m = jax.tree.map(lambda m_, g: beta1 * m_ + (1 - beta1) * g, m, grads)
        v = jax.tree.map(lambda v_, g: beta2 * v_ + (1 - beta2) * g * g, v, grads)
        bc1, bc2 = 1 - beta1 ** t, 1 - beta2 ** t
        updated = jax.tree.map(lambda p, m_, v_: p * (1 - lr * weight_decay) - lr * (m_ / bc1) / (jnp.sqrt(v_ / bc2) + eps),
                               lora, m, v)
        if frozen_below:
            updated = jax.tree.map(lambda p, u: jnp.concatenate([p[:frozen_below], u[frozen_below:]]), lora, updated)
        lora = updated
        return lora, m, v, t, nll, n_tokens, gnorm

    return jax.jit(step, donate_argnums=(0, 1, 2))


@lru_cache(maxsize=8)
def make_eval_nll(cfg, lora_scale: float, chunk: int):
    """eval(lora, layers, head, flags, batch) -> (summed NLL, number of loss tokens), no dropout."""

    def evaluate(lora, layers, head, flags, batch):
        nll = batch_nll(cfg, layers, head, lora, batch, flags, lora_scale, chunk)
        return nll, jnp.sum(batch["loss_weight"])

    return jax.jit(evaluate)
