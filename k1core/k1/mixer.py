"""The causal context mixer: one pre-LayerNorm multi-head causal self-attention layer.

Why attention and not a causal convolution: the published K-1 saw one byte at a time (a bigram
model). One attention layer lets every position read the whole window (up to `context` bytes)
for about 4*D^2 + 2*T*D multiply-adds per token, while a convolution would only see its kernel
width. The tree of agents then plays the role of the feed-forward blocks, routed per token.

It is the GPT's attention sublayer (k1core/layers.py) with its own parameter names, so both
models share one implementation and one kernel seam.
"""
from __future__ import annotations

import numpy as np

from k1core.kernels import KernelSet
from k1core.layers import attention_backward, attention_forward, causal_mask, linear_backward, linear_forward


def mixer_param_shapes(d_model: int) -> dict[str, tuple]:
    """Names and shapes of the mixer's parameters."""
    return {
        "mix.ln.g": (d_model,), "mix.ln.b": (d_model,),
        "mix.w_qkv": (d_model, 3 * d_model), "mix.b_qkv": (3 * d_model,),
        "mix.w_out": (d_model, d_model), "mix.b_out": (d_model,),
    }


def mixer_forward(x, p, n_heads: int, k: KernelSet):
    """h = x + Attn(LN(x)) for x (B, T, D); returns (h, cache)."""
    b, t, d = x.shape
    flat = x.reshape(b * t, d)
    a, ln_cache = k.layernorm_forward(flat, p["mix.ln.g"], p["mix.ln.b"])  # (B*T, D)
    qkv = linear_forward(a, p["mix.w_qkv"], p["mix.b_qkv"])  # (B*T, 3D)
    o, att_cache = attention_forward(qkv, b, n_heads, causal_mask(t, x.dtype), k)  # (B*T, D)
    h = flat + linear_forward(o, p["mix.w_out"], p["mix.b_out"])
    return h.reshape(b, t, d), (a, ln_cache, o, att_cache)


def mixer_backward(dh, p, g, cache, k: KernelSet):
    """Write the mixer's parameter gradients into g (each mixer parameter is used once, so they are
    written, not accumulated) and return dx for x (B, T, D)."""
    a, ln_cache, o, att_cache = cache
    b, t, d = dh.shape
    flat = dh.reshape(b * t, d)
    do = linear_backward(flat, o, p["mix.w_out"], g["mix.w_out"], g["mix.b_out"])  # (B*T, D)
    dqkv = attention_backward(do, att_cache, k)  # (B*T, 3D)
    da = linear_backward(dqkv, a, p["mix.w_qkv"], g["mix.w_qkv"], g["mix.b_qkv"])
    dx, g["mix.ln.g"][...], g["mix.ln.b"][...] = k.layernorm_backward(da, ln_cache, p["mix.ln.g"])
    return (flat + dx).reshape(b, t, d)


def mixer_flops_per_token(d_model: int, context: int) -> float:
    """Forward multiply-adds x2 per token: projections plus average causal attention span."""
    avg_span = (context + 1) / 2
    return 2.0 * (4 * d_model * d_model + 2 * avg_span * d_model)
