"""Numba kernels for the GPT/K-1 layers: one pass over memory where NumPy makes several.

Each kernel matches the NumPy reference in k1core/kernels.py (same signature, same caches, so a
KernelSet may mix the two). NumPy makes one temporary and one memory pass per ufunc; here a row or
an element is read once and finished in registers. Numba in this build has no SVML, so libm's
scalar tanh/exp would lose to NumPy's SIMD ufuncs: tanh uses a rational approximation (Eigen's,
max error ~1e-7, vectorised by LLVM). `NUMBA_KERNELS` holds, per kernel, whichever of Numba and
NumPy measured faster in bench/bench_kernels.py. Compiled code is cached on disk (cache=True).
"""
from __future__ import annotations

import dataclasses
import math
import types

import numpy as np

from k1core import kernels as ref
from k1core.lazy import require
from k1core.optim import AdamWConfig

numba = require("numba", "numba")
prange = numba.prange
# Reassociation/contraction let LLVM vectorise reductions. No 'nnan'/'ninf': a diverging model must
# still show inf/nan as the reference does. error_model="numpy" makes x / 0 give inf instead of
# raising, which removes the per-division check that otherwise stops every loop from vectorising.
FAST = {"reassoc", "contract", "arcp", "nsz", "afn"}
jit = numba.njit(cache=True, fastmath=FAST, error_model="numpy")
# Below this many elements a kernel runs serially. Numba's OpenMP pool and BLAS's pool are two
# pools of n threads each: a parallel kernel between two threaded matrix products leaves 2n threads
# spinning on n cores. On two cores, running 64K-1M element kernels serially made a GPT step about
# 4x and a K-1 step about 3x faster (docs/benchmarks.md); a serial pass over 1M floats costs ~1 ms,
# so only larger inputs can repay the pool.
PARALLEL_MIN_ELEMENTS = 1 << 20


def _serial_copy(fn):
    """The same Python function under another qualified name, so Numba caches its serial build apart."""
    copy = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + "_serial", fn.__defaults__, fn.__closure__)
    copy.__qualname__ = fn.__qualname__ + "_serial"
    return copy


class pjit:
    """A kernel compiled twice: with prange threads for large first arguments, serial for small ones.

    Generation (one window of <= context tokens) and small models gain nothing from threads, and on
    a loaded machine every parallel launch can wait for a descheduled worker.
    """

    def __init__(self, fn):
        self.parallel = numba.njit(cache=True, fastmath=FAST, error_model="numpy", parallel=True)(fn)
        self.serial = jit(_serial_copy(fn))

    def threads_for(self, first) -> int:
        """Threads the kernel will use on an input whose first array is `first`."""
        return numba.get_num_threads() if first.size >= PARALLEL_MIN_ELEMENTS else 1

    def __call__(self, first, *rest):
        return (self.parallel if self.threads_for(first) > 1 else self.serial)(first, *rest)


# ---- LayerNorm ---------------------------------------------------------------------------------
@pjit
def _layernorm_forward(x, gain, bias, eps, y, xhat, rstd):
    n, c = x.shape
    for i in prange(n):
        mean = 0.0
        for j in range(c):
            mean += x[i, j]
        mean /= c
        var = 0.0
        for j in range(c):
            d = x[i, j] - mean
            xhat[i, j] = d
            var += d * d
        r = 1.0 / math.sqrt(var / c + eps)
        rstd[i, 0] = r
        for j in range(c):
            xh = xhat[i, j] * r
            xhat[i, j] = xh
            y[i, j] = xh * gain[j] + bias[j]


def layernorm_forward(x, gain, bias, eps: float = 1e-5):
    """Fused LayerNorm of rows of x (N, C); returns y and the (xhat, rstd) cache like the reference."""
    x = np.ascontiguousarray(x)
    y, xhat = np.empty_like(x), np.empty_like(x)
    rstd = np.empty((x.shape[0], 1), dtype=x.dtype)
    _layernorm_forward(x, gain, bias, eps, y, xhat, rstd)
    return y, (xhat, rstd)


@pjit
def _layernorm_backward(dy, xhat, rstd, gain, dx, partial_g, partial_b):
    n, c = dy.shape
    chunks = partial_g.shape[0]
    for k in prange(chunks):  # one chunk of rows per thread; dgain/dbias summed per chunk
        for i in range(k * n // chunks, (k + 1) * n // chunks):
            mean_d, proj = 0.0, 0.0
            for j in range(c):
                d = dy[i, j] * gain[j]
                mean_d += d
                proj += d * xhat[i, j]
                partial_g[k, j] += dy[i, j] * xhat[i, j]
                partial_b[k, j] += dy[i, j]
            mean_d /= c
            proj /= c
            r = rstd[i, 0]
            for j in range(c):
                dx[i, j] = (dy[i, j] * gain[j] - mean_d - xhat[i, j] * proj) * r


def layernorm_backward(dy, cache, gain):
    """dx (N, C), dgain (C,), dbias (C,) in one pass over dy and xhat."""
    xhat, rstd = cache
    dy = np.ascontiguousarray(dy)
    chunks = max(1, min(_layernorm_backward.threads_for(dy), dy.shape[0]))
    partial_g = np.zeros((chunks, dy.shape[1]), dtype=dy.dtype)
    partial_b = np.zeros_like(partial_g)
    dx = np.empty_like(dy)
    _layernorm_backward(dy, xhat, rstd, gain, dx, partial_g, partial_b)
    return dx, partial_g.sum(axis=0), partial_b.sum(axis=0)


# ---- GELU (tanh form) ---------------------------------------------------------------------------
# Constants of the element-wise kernels as float32: a Python float is a float64 to Numba, and one
# float64 operand turns a float32 kernel into float64 arithmetic at half the SIMD width (GELU ran 2x
# slower). Float64 inputs still compute in float64; these kernels are float32-accurate in both.
F32 = np.float32
_TANH_LIMIT = F32(7.90531110763549805)  # where float32 tanh rounds to +-1
_TANH_P = tuple(F32(c) for c in (-2.76076847742355e-16, 2.00018790482477e-13, -8.60467152213735e-11,
                                 5.12229709037114e-08, 1.48572235717979e-05, 6.37261928875436e-04,
                                 4.89352455891786e-03))
_TANH_Q = tuple(F32(c) for c in (1.19825839466702e-06, 1.18534705686654e-04, 2.26843463243900e-03,
                                 4.89352518554385e-03))
_ONE, _HALF, _THREE = F32(1.0), F32(0.5), F32(3.0)
_GELU_C, _GELU_A = F32(ref.GELU_C), F32(ref.GELU_A)


@numba.njit(cache=True, fastmath=FAST, error_model="numpy", inline="always")
def fast_tanh(z):
    """Eigen's rational tanh (odd degree-13 / even degree-6); arithmetic and selects only, so it
    vectorises. Beyond |z| = 7.905, where float32 tanh rounds to +-1, it returns exactly +-1 so the
    GELU gradient u (1 - tanh^2) ... is exactly 0 or 1 for large |u|, as in the reference."""
    saturated = _ONE if z > 0 else -_ONE
    z = min(max(z, -_TANH_LIMIT), _TANH_LIMIT)
    z2 = z * z
    p = _TANH_P[0]
    for c in _TANH_P[1:]:
        p = p * z2 + c
    q = _TANH_Q[0]
    for c in _TANH_Q[1:]:
        q = q * z2 + c
    return z * p / q if abs(z) < _TANH_LIMIT else saturated


@pjit
def _gelu_forward(u, y, t):
    for i in prange(u.size):
        x = u[i]
        th = fast_tanh(_GELU_C * (x + _GELU_A * x * x * x))
        t[i] = th
        y[i] = _HALF * x * (_ONE + th)


def gelu_forward(u):
    """GELU of u in one pass; returns y and the (u, tanh) cache like the reference."""
    u = np.ascontiguousarray(u)
    y, t = np.empty_like(u), np.empty_like(u)
    _gelu_forward(u.reshape(-1), y.reshape(-1), t.reshape(-1))
    return y, (u, t)


@pjit
def _gelu_backward(dy, u, t, du):
    for i in prange(u.size):
        x, th = u[i], t[i]
        du[i] = dy[i] * _HALF * (_ONE + th + x * (_ONE - th * th) * _GELU_C * (_ONE + _THREE * _GELU_A * x * x))


def gelu_backward(dy, cache):
    """du from dy and the (u, tanh) cache in one pass."""
    u, t = cache
    dy = np.ascontiguousarray(dy)
    du = np.empty_like(dy)
    _gelu_backward(dy.reshape(-1), u.reshape(-1), t.reshape(-1), du.reshape(-1))
    return du


# ---- softmax ----------------------------------------------------------------------------------
@numba.njit(cache=True, fastmath=FAST, error_model="numpy", inline="always")
def fast_exp_neg(x):
    """exp(x) for x <= 0 (softmax after subtracting the max): Taylor degree 11 of exp(x/128), squared
    7 times, in float64; relative error ~2e-14, far below float32 rounding, and it vectorises."""
    z = max(x, -87.0) * (1.0 / 128.0)  # exp(-87) ~ 1.6e-38: below that, probabilities are zero anyway
    p = 1.0 / 39916800.0
    p = p * z + 1.0 / 3628800.0
    p = p * z + 1.0 / 362880.0
    p = p * z + 1.0 / 40320.0
    p = p * z + 1.0 / 5040.0
    p = p * z + 1.0 / 720.0
    p = p * z + 1.0 / 120.0
    p = p * z + 1.0 / 24.0
    p = p * z + 1.0 / 6.0
    p = p * z + 0.5
    p = p * z + 1.0
    p = p * z + 1.0
    for _ in range(7):
        p = p * p
    return p


# ---- causal softmax -----------------------------------------------------------------------------
@pjit
def _causal_softmax(scores):
    rows, t, _ = scores.shape
    for r in prange(rows):
        for i in range(t):
            top = scores[r, i, 0]
            for j in range(1, i + 1):
                top = max(top, scores[r, i, j])
            total = 0.0
            for j in range(i + 1):
                e = fast_exp_neg(scores[r, i, j] - top)
                scores[r, i, j] = e
                total += e
            inv = 1.0 / total
            for j in range(i + 1):
                scores[r, i, j] *= inv
            for j in range(i + 1, t):
                scores[r, i, j] = 0.0


def causal_softmax_forward(scores, mask):
    """Causal softmax of scores (..., T, T) in place; `mask` must be the causal mask (its structure is used, entries j > i skipped)."""
    t = scores.shape[-1]
    _causal_softmax(scores.reshape(-1, t, t))
    return scores


@pjit
def _softmax_backward(datt, att):
    rows, t, _ = datt.shape
    for r in prange(rows):
        for i in range(t):
            inner = 0.0
            for j in range(t):
                inner += datt[r, i, j] * att[r, i, j]
            for j in range(t):
                datt[r, i, j] = att[r, i, j] * (datt[r, i, j] - inner)


def softmax_backward(datt, att):
    """d scores = att * (datt - sum(datt * att)) in one pass; overwrites and returns datt."""
    t = datt.shape[-1]
    _softmax_backward(datt.reshape(-1, t, t), att.reshape(-1, t, t))
    return datt


# ---- softmax + cross-entropy ------------------------------------------------------------------------------
@pjit
def _softmax_xent(logits, targets, row_loss):
    n, v = logits.shape
    scale = 1.0 / n
    for i in prange(n):
        top = logits[i, 0]
        for j in range(1, v):
            top = max(top, logits[i, j])
        target_shifted = logits[i, targets[i]] - top
        total = 0.0
        for j in range(v):
            e = fast_exp_neg(logits[i, j] - top)
            logits[i, j] = e
            total += e
        row_loss[i] = math.log(total) - target_shifted
        inv = scale / total
        for j in range(v):
            logits[i, j] *= inv
        logits[i, targets[i]] -= scale


def softmax_xent_forward_backward(logits, targets):
    """Mean cross-entropy of logits (N, V) against targets (N,) and dlogits, one pass per row; consumes logits."""
    logits = np.ascontiguousarray(logits)
    row_loss = np.empty(logits.shape[0], dtype=np.float64)
    _softmax_xent(logits, np.ascontiguousarray(targets, dtype=np.int64), row_loss)
    return float(row_loss.mean()), logits


# ---- embedding gradient ----------------------------------------------------------------------------
@jit
def _scatter_add_rows(dtable, ids, dout):
    for i in range(ids.shape[0]):
        row = ids[i]
        for j in range(dout.shape[1]):
            dtable[row, j] += dout[i, j]


def embedding_backward(dtable, ids, dout) -> None:
    """Scatter-add rows of dout (N, C) into dtable (V, C) at ids (N,), serially (rows may repeat)."""
    _scatter_add_rows(dtable, np.ascontiguousarray(ids, dtype=np.int64), np.ascontiguousarray(dout))


# ---- AdamW ----------------------------------------------------------------------------------------
@pjit
def _adamw(p, g, m, v, decay_mask, beta1, beta2, step, decay, inv_bc2, eps):
    for i in prange(p.size):
        gi = g[i]
        mi = beta1 * m[i] + (_ONE - beta1) * gi
        vi = beta2 * v[i] + (_ONE - beta2) * gi * gi
        m[i] = mi
        v[i] = vi
        pi = p[i] * (_ONE - decay * decay_mask[i])
        p[i] = pi - step * mi / (math.sqrt(vi * inv_bc2) + eps)


def adamw_update(p, g, m, v, decay_mask, lr: float, bc1: float, bc2: float, cfg: AdamWConfig) -> None:
    """k1core.optim.adamw_update in one pass over the flat buffers (read p, g, m, v once, write p, m, v),
    in the parameters' precision like the reference."""
    scalar = p.dtype.type
    _adamw(p, g, m, v, decay_mask, scalar(cfg.beta1), scalar(cfg.beta2), scalar(lr / bc1),
           scalar(lr * cfg.weight_decay), scalar(1.0 / bc2), scalar(cfg.eps))


# Per kernel the faster of Numba and NumPy by bench/bench_kernels.py (GPT shapes, 1 thread, shared
# 2-core machine): with exp and tanh vectorised, Numba wins or ties every kernel, so all are Numba
# (the AdamW update included) except dropout, which stays the reference's so the RNG stream matches it bit for bit.
NUMBA_KERNELS = dataclasses.replace(
    ref.NUMPY_KERNELS,
    name="numba",
    layernorm_forward=layernorm_forward,
    layernorm_backward=layernorm_backward,
    gelu_forward=gelu_forward,
    gelu_backward=gelu_backward,
    causal_softmax_forward=causal_softmax_forward,
    softmax_backward=softmax_backward,
    softmax_xent_forward_backward=softmax_xent_forward_backward,
    embedding_backward=embedding_backward,
    adamw_update=adamw_update,
)
