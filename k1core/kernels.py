"""Element-wise and row-wise kernels of the GPT and K-1 layers: the seam a compute backend swaps.

Every kernel is a plain function over NumPy arrays and works in the dtype it is given (float32 in
training, float64 in gradient checks). A kernels-only backend (Numba) supplies a `KernelSet` with the
same names and signatures; the layers call kernels only through the set they were handed. Forward
and backward of each kernel sit side by side.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from k1core.optim import adamw_update

GELU_C = math.sqrt(2.0 / math.pi)  # tanh approximation of GELU (Hendrycks & Gimpel)
GELU_A = 0.044715


def _row_mean(x: np.ndarray) -> np.ndarray:
    """Mean of each row of x (N, C) as (N, 1); a BLAS matrix-vector product beats ndarray.mean here."""
    avg = np.full(x.shape[-1], 1.0 / x.shape[-1], dtype=x.dtype)
    return (x @ avg)[:, None]


def layernorm_forward(x: np.ndarray, gain: np.ndarray, bias: np.ndarray, eps: float = 1e-5):
    """Normalise rows of x (N, C); returns y and the (xhat, rstd) cache for the backward."""
    xhat = x - _row_mean(x)  # (N, C)
    var = _row_mean(np.square(xhat))  # (N, 1)
    var += eps
    rstd = np.reciprocal(np.sqrt(var, out=var), out=var)  # (N, 1)
    xhat *= rstd
    y = xhat * gain
    y += bias
    return y, (xhat, rstd)


def layernorm_backward(dy: np.ndarray, cache, gain: np.ndarray):
    """dx (N, C), dgain (C,), dbias (C,) from dy (N, C)."""
    xhat, rstd = cache
    dgain = (dy * xhat).sum(axis=0)
    dbias = dy.sum(axis=0)
    dx = dy * gain  # d xhat, (N, C)
    proj = _row_mean(dx * xhat)  # (N, 1)
    dx -= _row_mean(dx)
    dx -= xhat * proj
    dx *= rstd
    return dx, dgain, dbias


def gelu_forward(u: np.ndarray):
    """GELU (tanh form) of u; returns y and the (u, tanh) cache."""
    t = np.square(u)
    t *= GELU_A * GELU_C
    t += GELU_C
    t *= u
    np.tanh(t, out=t)  # tanh(c (u + a u^3))
    y = t + 1.0
    y *= u
    y *= 0.5
    return y, (u, t)


def gelu_backward(dy: np.ndarray, cache) -> np.ndarray:
    """du = dy * 0.5 (1 + t + u (1 - t^2) c (1 + 3 a u^2))."""
    u, t = cache
    du = np.square(u)
    du *= 3.0 * GELU_A * GELU_C
    du += GELU_C
    sech2 = np.square(t)
    np.subtract(1.0, sech2, out=sech2)
    du *= sech2
    du *= u
    du += t
    du += 1.0
    du *= 0.5
    du *= dy
    return du


def softmax_forward(scores: np.ndarray) -> np.ndarray:
    """Softmax over the last axis of scores (..., K), in place.

    Not in the KernelSet: the backend kernels assume square (T, T) attention blocks, while K-1's
    router gates take this shape-generic reference on their small (n, children) blocks."""
    scores -= scores.max(axis=-1, keepdims=True)
    np.exp(scores, out=scores)
    scores /= scores.sum(axis=-1, keepdims=True)
    return scores


def causal_softmax_forward(scores: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Softmax over the last axis of scores (..., T, T) after adding the causal -inf mask; in place."""
    scores += mask
    return softmax_forward(scores)


def softmax_backward(datt: np.ndarray, att: np.ndarray) -> np.ndarray:
    """d scores = att * (datt - sum(datt * att)) over the last axis (any shape); overwrites and returns datt."""
    inner = (datt * att).sum(axis=-1, keepdims=True)
    datt -= inner
    datt *= att
    return datt


def softmax_xent_forward_backward(logits: np.ndarray, targets: np.ndarray):
    """Mean cross-entropy (nats) of logits (N, V) against targets (N,), and dlogits; consumes logits."""
    n = logits.shape[0]
    rows = np.arange(n)
    logits -= logits.max(axis=-1, keepdims=True)
    target_logit = logits[rows, targets].astype(np.float64)
    probs = np.exp(logits, out=logits)
    total = probs.sum(axis=-1, keepdims=True)  # (N, 1)
    loss = float(np.mean(np.log(total[:, 0].astype(np.float64)) - target_logit))
    probs /= total
    probs[rows, targets] -= 1.0
    probs *= 1.0 / n
    return loss, probs


def embedding_backward(dtable: np.ndarray, ids: np.ndarray, dout: np.ndarray) -> None:
    """Scatter-add rows of dout (N, C) into dtable (V, C) at ids (N,).

    As one-hot (V, N) @ dout: with a byte vocabulary that product is ~20x faster than np.add.at.
    """
    onehot = np.zeros((dtable.shape[0], ids.shape[0]), dtype=dout.dtype)  # (V, N)
    onehot[ids, np.arange(ids.shape[0])] = 1.0
    dtable += onehot @ dout


def dropout_forward(x: np.ndarray, p: float, rng: np.random.Generator):
    """Inverted dropout in place; returns x and the scaled keep-mask (None when p == 0)."""
    if p == 0.0:
        return x, None
    keep = rng.random(x.shape, dtype=x.dtype) >= p
    mask = keep.astype(x.dtype)
    mask *= 1.0 / (1.0 - p)
    x *= mask
    return x, mask


def dropout_backward(dy: np.ndarray, mask) -> np.ndarray:
    """Gradient through the keep-mask (a new array; dy itself is still needed by the residual)."""
    return dy if mask is None else dy * mask


@dataclass(frozen=True)
class KernelSet:
    """The kernels a backend provides; the NumPy set below is the reference every backend must match."""

    name: str
    layernorm_forward: Callable
    layernorm_backward: Callable
    gelu_forward: Callable
    gelu_backward: Callable
    causal_softmax_forward: Callable
    softmax_backward: Callable
    softmax_xent_forward_backward: Callable
    embedding_backward: Callable
    dropout_forward: Callable
    dropout_backward: Callable
    adamw_update: Callable = adamw_update  # the optimizer's element-wise update over flat (slices of) buffers


NUMPY_KERNELS = KernelSet(
    name="numpy",
    layernorm_forward=layernorm_forward,
    layernorm_backward=layernorm_backward,
    gelu_forward=gelu_forward,
    gelu_backward=gelu_backward,
    causal_softmax_forward=causal_softmax_forward,
    softmax_backward=softmax_backward,
    softmax_xent_forward_backward=softmax_xent_forward_backward,
    embedding_backward=embedding_backward,
    dropout_forward=dropout_forward,
    dropout_backward=dropout_backward,
)
