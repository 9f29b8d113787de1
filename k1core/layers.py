"""Matrix layers of the GPT (linear, causal multi-head attention), forward and backward side by side.

Activations are kept as (N, C) with N = B*T so every dense product is one large `@`; weight
gradients are written straight into the ParamStore's gradient views (`out=`), which avoids a
temporary per product. Element-wise work goes through a `KernelSet` (see kernels.py).
"""
from __future__ import annotations

import math

import numpy as np

from k1core.errors import UserError
from k1core.kernels import KernelSet


def check_heads(d_model: int, n_heads: int) -> None:
    """Multi-head attention splits the width evenly over the heads (every model's config checks this)."""
    if d_model % n_heads:
        raise UserError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")


def linear_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """x (N, I) @ w (I, O) + b (O,) -> (N, O)."""
    y = x @ w
    if b is not None:
        y += b
    return y


def linear_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray, dw: np.ndarray,
                    db: np.ndarray | None) -> np.ndarray:
    """Writes dw = x^T dy and db = sum(dy) into the gradient views; returns dx = dy w^T (N, I)."""
    np.matmul(x.T, dy, out=dw)
    if db is not None:
        np.sum(dy, axis=0, out=db)
    return dy @ w.T


def causal_mask(context: int, dtype) -> np.ndarray:
    """(T, T) additive mask: 0 on and below the diagonal, -inf above (no attending to the future)."""
    mask = np.zeros((context, context), dtype=dtype)
    mask[np.triu_indices(context, k=1)] = -np.inf
    return mask


def attention_forward(qkv: np.ndarray, batch: int, n_heads: int, mask: np.ndarray, k: KernelSet):
    """Causal multi-head attention on fused projections qkv (B*T, 3C); returns y (B*T, C) and a cache."""
    n, three_c = qkv.shape
    c = three_c // 3
    t, hs = n // batch, c // n_heads
    heads = qkv.reshape(batch, t, 3, n_heads, hs).transpose(2, 0, 3, 1, 4)  # (3, B, H, T, hs) view
    # scale folded into q: one (B,H,T,hs) pass, not (B,H,T,T). A Python float, not np.sqrt's float64:
    # under NumPy 2 a float64 scalar promotes the float32 array, and all attention would run in float64.
    q = heads[0] * (1.0 / math.sqrt(hs))
    key, v = heads[1], heads[2]
    att = q @ key.transpose(0, 1, 3, 2)  # (B, H, T, T)
    k.causal_softmax_forward(att, mask[:t, :t])
    out = att @ v  # (B, H, T, hs)
    y = out.transpose(0, 2, 1, 3).reshape(n, c)  # (B*T, C), one copy
    return y, (q, key, v, att)


def attention_backward(dy: np.ndarray, cache, k: KernelSet) -> np.ndarray:
    """d qkv (B*T, 3C) from dy (B*T, C)."""
    q, key, v, att = cache
    b, h, t, hs = q.shape
    dout = dy.reshape(b, t, h, hs).transpose(0, 2, 1, 3)  # (B, H, T, hs) view
    datt = dout @ v.transpose(0, 1, 3, 2)  # (B, H, T, T)
    dqkv = np.empty((b, t, 3, h, hs), dtype=dy.dtype)
    dheads = dqkv.transpose(2, 0, 3, 1, 4)  # (3, B, H, T, hs) view into dqkv
    np.matmul(att.transpose(0, 1, 3, 2), dout, out=dheads[2])  # dv
    dscores = k.softmax_backward(datt, att)
    np.matmul(dscores.transpose(0, 1, 3, 2), q, out=dheads[1])  # dk (q already carries the scale)
    np.matmul(dscores, key, out=dheads[0])  # dq before the scale
    dheads[0] *= 1.0 / math.sqrt(hs)
    return dqkv.reshape(b * t, 3 * h * hs)
