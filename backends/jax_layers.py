"""JAX pieces the GPT and K-1 programs share: LayerNorm, causal self-attention and the AdamW array
update, each written once so the two models trace the same arithmetic as their NumPy references."""
from __future__ import annotations

from k1core.lazy import require
from k1core.optim import AdamWConfig

jax = require("jax", "jax")
jnp = jax.numpy


def layernorm(x, gain, bias, eps: float = 1e-5):
    """Rows of x (..., D) normalised, as k1core.kernels.layernorm_forward."""
    xc = x - x.mean(axis=-1, keepdims=True)
    return xc * jax.lax.rsqrt(jnp.square(xc).mean(axis=-1, keepdims=True) + eps) * gain + bias


def causal_attention(a, w_qkv, b_qkv, w_out, b_out, n_heads: int):
    """Multi-head causal self-attention of a (B, T, D), output projection included (B, T, D)."""
    b, t, d = a.shape
    hs = d // n_heads
    qkv = a @ w_qkv + b_qkv  # (B, T, 3D)
    q, k, v = qkv.reshape(b, t, 3, n_heads, hs).transpose(2, 0, 3, 1, 4)  # each (B, H, T, hs)
    scores = (q * (1.0 / hs**0.5)) @ k.transpose(0, 1, 3, 2)  # (B, H, T, T)
    att = jax.nn.softmax(jnp.where(jnp.tril(jnp.ones((t, t), dtype=bool)), scores, -jnp.inf), axis=-1)
    return (att @ v).transpose(0, 2, 1, 3).reshape(b, t, d) @ w_out + b_out


def clip_scale(norm, c: AdamWConfig):
    """Factor that brings gradients of global norm `norm` down to c.grad_clip (1 when within it or off)."""
    return jnp.where((c.grad_clip > 0) & (norm > c.grad_clip), c.grad_clip / (norm + 1e-12), 1.0)


def adamw_array(p, g, m, v, lr, bc1, bc2, decayed: bool, c: AdamWConfig):
    """One array's AdamW step (k1core.optim semantics, decoupled decay when `decayed`) on an
    already clipped gradient; bc1 = 1 - beta1^t, bc2 = 1 - beta2^t. Returns (p, m, v)."""
    m = c.beta1 * m + (1.0 - c.beta1) * g
    v = c.beta2 * v + (1.0 - c.beta2) * (g * g)
    if decayed and c.weight_decay:
        p = p * (1.0 - lr * c.weight_decay)
    return p - (lr / bc1) * m / (jnp.sqrt(v / bc2) + c.eps), m, v
