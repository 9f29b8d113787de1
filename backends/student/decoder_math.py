"""One decoder layer's math, written once against an array module `xp` (numpy or jax.numpy).

NumPy runs it in a Python loop as the reference; JAX runs the same function inside lax.scan for
training, so the two backends cannot drift apart. Frozen weights are stacked per layer in the
layout the matrix product wants, (in, out), with q|k|v and gate|up fused into one product each.
"""
from __future__ import annotations

import numpy as np

from backends.student.architectures import StudentConfig

NEG_INF = -1e30


def rms_norm(xp, x, gain, eps):
    """x / rms(x) * gain over the last axis; gain already holds gemma3's (1 + w)."""
    return x * (1.0 / xp.sqrt(xp.mean(x * x, axis=-1, keepdims=True) + eps)) * gain


def rope_tables(positions: np.ndarray, head_dim: int, theta: float, xp=np):
    """cos, sin of shape (B, T, head_dim) for rotate-half RoPE at integer `positions` (B, T)."""
    inv = 1.0 / (theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim))  # (hd/2,)
    ang = xp.asarray(positions)[..., None].astype(xp.float32) * xp.asarray(inv, dtype=xp.float32)
    ang = xp.concatenate([ang, ang], axis=-1)
    return xp.cos(ang), xp.sin(ang)


def apply_rope(xp, x, cos, sin):
    """x (B, T, ..., hd) rotated by cos/sin (B, T, hd) in the rotate-half convention (HF, NEOX)."""
    half = x.shape[-1] // 2
    rotated = xp.concatenate([-x[..., half:], x[..., :half]], axis=-1)
    extra = (slice(None), slice(None)) + (None,) * (x.ndim - 3)
    return x * cos[extra] + rotated * sin[extra]


def attention_mask(xp, segments, positions, window: int = 0):
    """Allowed (B, T, S): same non-pad segment, causal, and within `window` tokens when window > 0."""
    same = (segments[:, :, None] == segments[:, None, :]) & (segments[:, None, :] != 0)
    delta = positions[:, :, None] - positions[:, None, :]
    allowed = same & (delta >= 0)
    if window:
        allowed = allowed & (delta < window)
    return allowed


def activation(xp, cfg: StudentConfig, gate):
    if cfg.activation == "silu":
        return gate / (1.0 + xp.exp(-gate))
    c = np.float32(np.sqrt(2.0 / np.pi))
    return 0.5 * gate * (1.0 + xp.tanh(c * (gate + 0.044715 * gate * gate * gate)))


class ExactArithmetic:
    """Products and attention in the working precision: training and the default forward pass.

    `ggml_numerics.LlamaCppArithmetic` overrides both methods to round where llama.cpp does.
    """

    def matmul(self, x, w, product: str):
        """x (..., in) @ w (in, out); `product` names the frozen weight ('wqkv', 'wo', 'wgu', 'wd')."""
        return x @ w

    def attention_operand(self, a):
        """Q, K, V or the softmax probabilities as the attention products see them."""
        return a


EXACT = ExactArithmetic()


def lora_delta(lora: dict, name: str, x, scale: float, dropout):
    """scale * (dropout(x) @ A) @ B for a LoRA target, 0.0 when `name` is not targeted."""
    if name not in lora:
        return 0.0
    a, b = lora[name]  # (in, r), (r, out)
    return ((dropout(x) @ a) @ b) * scale


def decoder_layer(xp, cfg: StudentConfig, h, w: dict, lora: dict, ctx: dict, local, lora_scale: float,
                  dropout=lambda x: x, arith: ExactArithmetic = EXACT):
    """h (B, T, D) -> h after one pre-norm attention + gated-MLP block (LoRA deltas included).

    ctx holds per-batch tables shared by all layers: 'cos'/'sin' and 'mask' for global layers and
    'cos_local'/'sin_local'/'mask_local' for sliding-window layers; `local` picks between them.
    `arith` decides the precision of the frozen products and of attention (exact unless emulating).
    """
    B, T, _ = h.shape
    nq, nkv, hd = cfg.n_heads * cfg.head_dim, cfg.n_kv_heads * cfg.head_dim, cfg.head_dim
    group = cfg.n_heads // cfg.n_kv_heads

    x = rms_norm(xp, h, w["attn_norm"], cfg.norm_eps)
    qkv = arith.matmul(x, w["wqkv"], "wqkv")  # (B, T, nq + 2 nkv)
    if cfg.attn_bias:
        qkv = qkv + w["bqkv"]
    q = qkv[..., :nq] + lora_delta(lora, "q_proj", x, lora_scale, dropout)
    k = qkv[..., nq:nq + nkv] + lora_delta(lora, "k_proj", x, lora_scale, dropout)
    v = qkv[..., nq + nkv:] + lora_delta(lora, "v_proj", x, lora_scale, dropout)
    q = q.reshape(B, T, cfg.n_kv_heads, group, hd)
    k = k.reshape(B, T, cfg.n_kv_heads, hd)
    v = v.reshape(B, T, cfg.n_kv_heads, hd)
    if cfg.qk_norm:
        q = rms_norm(xp, q, w["q_norm"], cfg.norm_eps)
        k = rms_norm(xp, k, w["k_norm"], cfg.norm_eps)
    cos = xp.where(local, ctx["cos_local"], ctx["cos"])
    sin = xp.where(local, ctx["sin_local"], ctx["sin"])
    mask = xp.where(local, ctx["mask_local"], ctx["mask"])  # (B, T, S)
    q, k = apply_rope(xp, q, cos, sin), apply_rope(xp, k, cos, sin)
    q, k, v = arith.attention_operand(q), arith.attention_operand(k), arith.attention_operand(v)

    # Grouped-query attention without repeating k/v: each kv head serves `group` query heads.
    scores = xp.einsum("btkgh,bskh->bkgts", q, k) * cfg.query_scale()  # (B, KV, G, T, S)
    scores = xp.where(mask[:, None, None], scores, NEG_INF)
    scores = scores - xp.max(scores, axis=-1, keepdims=True)
    p = xp.exp(scores)
    p = arith.attention_operand(p / xp.sum(p, axis=-1, keepdims=True))
    o = xp.einsum("bkgts,bskh->btkgh", p, v).reshape(B, T, nq)
    attn = arith.matmul(o, w["wo"], "wo") + lora_delta(lora, "o_proj", o, lora_scale, dropout)
    if cfg.sandwich_norm:
        attn = rms_norm(xp, attn, w["post_attn_norm"], cfg.norm_eps)
    h = h + attn

    x = rms_norm(xp, h, w["mlp_norm"], cfg.norm_eps)
    gu = arith.matmul(x, w["wgu"], "wgu")  # (B, T, 2F)
    gate = gu[..., :cfg.ffn_dim] + lora_delta(lora, "gate_proj", x, lora_scale, dropout)
    up = gu[..., cfg.ffn_dim:] + lora_delta(lora, "up_proj", x, lora_scale, dropout)
    act = activation(xp, cfg, gate) * up
    mlp = arith.matmul(act, w["wd"], "wd") + lora_delta(lora, "down_proj", act, lora_scale, dropout)
    if cfg.sandwich_norm:
        mlp = rms_norm(xp, mlp, w["post_mlp_norm"], cfg.norm_eps)
    return h + mlp


def batch_context(xp, cfg: StudentConfig, positions, segments) -> dict:
    """RoPE tables and masks for global and sliding-window layers, shared by every layer."""
    cos, sin = rope_tables(positions, cfg.head_dim, cfg.rope_theta, xp)
    ctx = {"cos": cos, "sin": sin, "mask": attention_mask(xp, segments, positions)}
    if cfg.sliding_window and cfg.sliding_pattern:
        ctx["cos_local"], ctx["sin_local"] = rope_tables(positions, cfg.head_dim, cfg.rope_local_theta or cfg.rope_theta, xp)
        ctx["mask_local"] = attention_mask(xp, segments, positions, cfg.sliding_window)
    else:
        ctx["cos_local"], ctx["sin_local"], ctx["mask_local"] = ctx["cos"], ctx["sin"], ctx["mask"]
    return ctx
