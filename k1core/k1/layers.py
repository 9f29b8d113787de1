"""Small dense layers of the K-1 model, each forward next to its backward (micrograd style).

Plain functions over NumPy arrays: a forward returns (output, cache) and the matching backward
takes (d_output, cache) and returns input and parameter gradients.
"""
from __future__ import annotations

import numpy as np

LN_EPS = 1e-5


def layernorm_forward(x, gain, bias):
    """Normalise the last axis of x (..., D) and apply gain/bias (D,)."""
    mu = x.mean(axis=-1, keepdims=True)
    xc = x - mu
    rstd = 1.0 / np.sqrt((xc * xc).mean(axis=-1, keepdims=True) + LN_EPS)
    xhat = xc * rstd
    return xhat * gain + bias, (xhat, rstd, gain)


def layernorm_backward(dy, cache):
    """Gradients (dx, dgain, dbias) of layernorm_forward."""
    xhat, rstd, gain = cache
    d = dy.shape[-1]
    flat_dy, flat_xhat = dy.reshape(-1, d), xhat.reshape(-1, d)
    dgain = (flat_dy * flat_xhat).sum(axis=0)
    dbias = flat_dy.sum(axis=0)
    dxhat = dy * gain
    dx = rstd * (dxhat - dxhat.mean(axis=-1, keepdims=True)
                 - xhat * (dxhat * xhat).mean(axis=-1, keepdims=True))
    return dx, dgain, dbias


def embedding_forward(ids, tok_emb, pos_emb):
    """Token plus learned position embeddings: ids (B, T) -> (B, T, D)."""
    t = ids.shape[1]
    return tok_emb[ids] + pos_emb[:t][None, :, :]


def embedding_backward(dx, ids, vocab_size: int, context: int):
    """Gradients (dtok_emb (V, D), dpos_emb (context, D)) of embedding_forward."""
    b, t, d = dx.shape
    dtok = np.zeros((vocab_size, d), dtype=dx.dtype)
    np.add.at(dtok, ids.reshape(-1), dx.reshape(-1, d))
    dpos = np.zeros((context, d), dtype=dx.dtype)
    dpos[:t] = dx.sum(axis=0)
    return dtok, dpos


def softmax(z, axis=-1):
    """Numerically stable softmax."""
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def softmax_backward(dp, p, axis=-1):
    """Gradient of softmax given its output p and upstream dp."""
    return p * (dp - (dp * p).sum(axis=axis, keepdims=True))


def cross_entropy_forward(logits, targets):
    """Mean cross-entropy (nats) of logits (N, V) against int targets (N,), plus per-token losses."""
    z = logits - logits.max(axis=-1, keepdims=True)
    logz = np.log(np.exp(z).sum(axis=-1))
    per_token = logz - z[np.arange(len(targets)), targets]
    return float(per_token.mean()), per_token, (z, logz, targets)


def cross_entropy_backward(cache, scale: float = 1.0):
    """Gradient of `scale` x mean cross-entropy w.r.t. the logits."""
    z, logz, targets = cache
    p = np.exp(z - logz[:, None])
    p[np.arange(len(targets)), targets] -= 1.0
    return p * (scale / len(targets))
