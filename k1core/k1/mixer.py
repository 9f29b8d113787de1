"""The causal context mixer: one pre-LayerNorm multi-head causal self-attention layer.

Why attention and not a causal convolution: the published K-1 saw one byte at a time (a bigram
model). One attention layer lets every position read the whole window (up to `context` bytes)
for about 4*D^2 + 2*T*D multiply-adds per token, while a convolution would only see its kernel
width. The tree of agents then plays the role of the feed-forward blocks, routed per token.
"""
from __future__ import annotations

import numpy as np

from k1core.k1.layers import layernorm_backward, layernorm_forward, softmax, softmax_backward


def mixer_param_shapes(d_model: int) -> dict[str, tuple]:
    """Names and shapes of the mixer's parameters."""
    return {
        "mix.ln.g": (d_model,), "mix.ln.b": (d_model,),
        "mix.w_qkv": (d_model, 3 * d_model), "mix.b_qkv": (3 * d_model,),
        "mix.w_out": (d_model, d_model), "mix.b_out": (d_model,),
    }


def mixer_forward(x, p, n_heads: int):
    """h = x + Attn(LN(x)) for x (B, T, D); returns (h, cache)."""
    b, t, d = x.shape
    hd = d // n_heads
    a, ln_cache = layernorm_forward(x, p["mix.ln.g"], p["mix.ln.b"])
    qkv = a @ p["mix.w_qkv"] + p["mix.b_qkv"]  # (B, T, 3D)
    q, k, v = (qkv[..., i * d:(i + 1) * d].reshape(b, t, n_heads, hd).transpose(0, 2, 1, 3)
               for i in range(3))  # each (B, nh, T, hd)
    scale = 1.0 / np.sqrt(hd)
    scores = (q @ k.transpose(0, 1, 3, 2)) * scale  # (B, nh, T, T)
    scores = np.where(np.tril(np.ones((t, t), dtype=bool)), scores, -np.inf)
    att = softmax(scores)
    o = (att @ v).transpose(0, 2, 1, 3).reshape(b, t, d)  # (B, T, D)
    h = x + o @ p["mix.w_out"] + p["mix.b_out"]
    return h, (a, ln_cache, q, k, v, att, o, scale)


def mixer_backward(dh, p, g, cache, n_heads: int):
    """Accumulate parameter gradients into g (dict of arrays) and return dx for x (B, T, D)."""
    a, ln_cache, q, k, v, att, o, scale = cache
    b, t, d = dh.shape
    hd = d // n_heads
    g["mix.w_out"] += o.reshape(-1, d).T @ dh.reshape(-1, d)
    g["mix.b_out"] += dh.sum(axis=(0, 1))
    do = (dh @ p["mix.w_out"].T).reshape(b, t, n_heads, hd).transpose(0, 2, 1, 3)  # (B, nh, T, hd)
    datt = do @ v.transpose(0, 1, 3, 2)
    dv = att.transpose(0, 1, 3, 2) @ do
    dscores = softmax_backward(datt, att) * scale  # masked entries have att == 0
    dq = dscores @ k
    dk = dscores.transpose(0, 1, 3, 2) @ q
    dqkv = np.concatenate([z.transpose(0, 2, 1, 3).reshape(b, t, d) for z in (dq, dk, dv)], axis=-1)
    g["mix.w_qkv"] += a.reshape(-1, d).T @ dqkv.reshape(-1, 3 * d)
    g["mix.b_qkv"] += dqkv.sum(axis=(0, 1))
    da = dqkv @ p["mix.w_qkv"].T
    dx, dg, db = layernorm_backward(da, ln_cache)
    g["mix.ln.g"] += dg
    g["mix.ln.b"] += db
    return dh + dx


def mixer_flops_per_token(d_model: int, context: int) -> float:
    """Forward multiply-adds x2 per token: projections plus average causal attention span."""
    avg_span = (context + 1) / 2
    return 2.0 * (4 * d_model * d_model + 2 * avg_span * d_model)
