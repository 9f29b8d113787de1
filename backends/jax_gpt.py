"""The baseline GPT in JAX: one jitted XLA program per training step (forward, backward by
jax.grad, global-norm clipping, AdamW), and a jitted single-token step for generation.

XLA fuses the element-wise work (GELU, softmax, LayerNorm, cross-entropy, the AdamW update) into
the loops around the matrix products, which is where NumPy spends its extra memory passes.
Parameters keep the NumPy model's names and layout, so `state_dict` checkpoints move freely between
backends; the host ParamStore inherited from BaselineGPT mirrors the device copy on demand.
"""
from __future__ import annotations

import time
from functools import partial

import numpy as np

from backends.jax_layers import adamw_array, causal_attention, clip_scale, layernorm
from k1core.gpt import BaselineGPT, GPTConfig
from k1core.lazy import require
from k1core.optim import AdamWConfig, decay_matrices, lr_at

jax = require("jax", "jax")
jnp = jax.numpy


def _dropout(x, p: float, key):
    if p == 0.0 or key is None:
        return x
    keep = jax.random.bernoulli(key, 1.0 - p, x.shape)
    return jnp.where(keep, x / (1.0 - p), 0.0)


def forward(p: dict, x, cfg: GPTConfig, key=None):
    """Logits (B, T, V) for ids x (B, T); `key` enables dropout (training)."""
    t = x.shape[1]
    keys = list(jax.random.split(key, 1 + 2 * cfg.n_layers)) if key is not None else [None] * (1 + 2 * cfg.n_layers)
    h = _dropout(p["wte"][x] + p["wpe"][:t], cfg.dropout, keys[0])  # (B, T, C)
    for i in range(cfg.n_layers):
        a = layernorm(h, p[f"h{i}.ln1.g"], p[f"h{i}.ln1.b"])
        y = causal_attention(a, p[f"h{i}.attn.w_qkv"], p[f"h{i}.attn.b_qkv"], p[f"h{i}.attn.w_out"],
                             p[f"h{i}.attn.b_out"], cfg.n_heads)
        h = h + _dropout(y, cfg.dropout, keys[1 + 2 * i])
        m = layernorm(h, p[f"h{i}.ln2.g"], p[f"h{i}.ln2.b"])
        u = jax.nn.gelu(m @ p[f"h{i}.mlp.w_in"] + p[f"h{i}.mlp.b_in"], approximate=True)
        h = h + _dropout(u @ p[f"h{i}.mlp.w_out"] + p[f"h{i}.mlp.b_out"], cfg.dropout, keys[2 + 2 * i])
    f = layernorm(h, p["lnf.g"], p["lnf.b"])
    return f @ (p["wte"].T if cfg.tie_weights else p["head"])


def mean_xent(p: dict, x, y, cfg: GPTConfig, key=None):
    """Mean cross-entropy (nats/byte) of the model on ids x against targets y, both (B, T)."""
    logp = jax.nn.log_softmax(forward(p, x, cfg, key), axis=-1)  # (B, T, V)
    return -jnp.take_along_axis(logp, y[..., None], axis=-1).mean()


def adamw_apply(p, g, m, v, t, lr, c: AdamWConfig):
    """Clip g to global norm c.grad_clip, then AdamW (k1core.optim semantics) over the pytrees."""
    leaves = jax.tree_util.tree_leaves(g)
    norm = jnp.sqrt(sum(jnp.sum(jnp.square(leaf)) for leaf in leaves))
    scale = clip_scale(norm, c)
    bc1, bc2 = 1.0 - c.beta1 ** t, 1.0 - c.beta2 ** t
    out_p, out_m, out_v = {}, {}, {}
    for k in p:  # decay rule evaluated on static names/shapes while tracing: constants in the program
        out_p[k], out_m[k], out_v[k] = adamw_array(p[k], g[k] * scale, m[k], v[k], lr, bc1, bc2,
                                                   decay_matrices(k, p[k].shape), c)
    return out_p, out_m, out_v, norm


# Compiled programs are cached by JAX per (static config, argument shapes), so every model with the
# same configuration shares them; configs are frozen dataclasses and hence valid static arguments.
@partial(jax.jit, static_argnames=("cfg", "optim"), donate_argnums=(0, 1, 2))
def jit_train_step(p, m, v, t, lr, key, x, y, cfg: GPTConfig, optim: AdamWConfig):
    """One step: loss and gradients (jax.grad), clipping, AdamW; returns new (p, m, v) and the loss."""
    loss, g = jax.value_and_grad(mean_xent)(p, x, y, cfg, key)
    p, m, v, _ = adamw_apply(p, g, m, v, t, lr, optim)
    return p, m, v, loss


jit_loss_and_grad = jax.jit(jax.value_and_grad(mean_xent), static_argnames=("cfg",))
jit_eval_loss = jax.jit(mean_xent, static_argnames=("cfg",))


@partial(jax.jit, static_argnames=("cfg",))
def jit_next_logits(p, window, pos, cfg: GPTConfig):
    """Logits (V,) at position `pos` of a (1, context) window: one program for every prompt length."""
    return forward(p, window, cfg)[0, pos]


def _ids(a: np.ndarray) -> np.ndarray:
    """Byte ids as int32 (JAX's default integer width; int64 would be truncated with a warning)."""
    return np.asarray(a, dtype=np.int32)


class JaxGPT(BaselineGPT):
    """BaselineGPT whose training, evaluation and generation run as jitted XLA programs."""

    def __init__(self, cfg: GPTConfig, optim: AdamWConfig = AdamWConfig(), seed: int = 0):
        super().__init__(cfg, optim, seed, dtype=np.float32)  # same init and host layout as NumPy
        self._upload()
        self.compile_seconds: dict[str, float] = {}

    def _upload(self) -> None:
        self.p = {k: jnp.asarray(v) for k, v in self.params.p.items()}
        self.m = {k: jnp.asarray(self.params._view(self.opt.m, k)) for k in self.params.shapes}
        self.v = {k: jnp.asarray(self.params._view(self.opt.v, k)) for k in self.params.shapes}

    def _download(self) -> None:
        """Copy parameters and moments from the device into the host ParamStore / AdamW (for checkpoints)."""
        for k in self.params.shapes:
            self.params.p[k][...] = np.asarray(self.p[k])
            self.params._view(self.opt.m, k)[...] = np.asarray(self.m[k])
            self.params._view(self.opt.v, k)[...] = np.asarray(self.v[k])

    def _timed(self, name: str, fn, *args, **static):
        """Call a jitted function; this model's first call per name records its (trace+compile+)run seconds."""
        if name in self.compile_seconds:
            return fn(*args, **static)
        start = time.perf_counter()
        out = jax.block_until_ready(fn(*args, **static))
        self.compile_seconds[name] = time.perf_counter() - start
        return out

    # ---- LanguageModel protocol -----------------------------------------------------------
    def train_step(self, x: np.ndarray, y: np.ndarray) -> float:
        key = jax.random.PRNGKey(int(self.rng.integers(2**31))) if self.cfg.dropout > 0 else None
        self.opt.t += 1  # AdamW's bias-correction count lives on the host, as in the NumPy model
        # lr from the shared schedule function: a traced scalar argument, so no recompilation per step
        self.p, self.m, self.v, loss = self._timed(
            "train_step", jit_train_step, self.p, self.m, self.v, jnp.float32(self.opt.t),
            jnp.float32(lr_at(self.step, self.optim_cfg)), key, _ids(x), _ids(y), cfg=self.cfg, optim=self.optim_cfg)
        self.step += 1
        return float(loss)

    def loss_and_grad(self, x: np.ndarray, y: np.ndarray, train: bool = True) -> float:
        """Mean loss with gradients copied into params.grad (dropout off; for equivalence tests)."""
        loss, g = self._timed("loss_and_grad", jit_loss_and_grad, self.p, _ids(x), _ids(y), cfg=self.cfg)
        for k, gk in g.items():
            self.params.g[k][...] = np.asarray(gk)
        return float(loss)

    def loss(self, x: np.ndarray, y: np.ndarray) -> float:
        return float(self._timed("loss", jit_eval_loss, self.p, _ids(x), _ids(y), cfg=self.cfg))

    def next_logits(self, ids: np.ndarray) -> np.ndarray:
        """Logits (V,) for the byte after `ids`; the window is right-padded to `context` so one
        compiled program serves every prompt length (causal attention ignores the padding)."""
        window = np.asarray(ids, dtype=np.int64)[-self.cfg.context:]
        padded = np.zeros((1, self.cfg.context), dtype=np.int32)
        padded[0, :window.size] = window
        return np.asarray(self._timed("next_logits", jit_next_logits, self.p, padded, window.size - 1, cfg=self.cfg))

    def state_dict(self) -> dict:
        self._download()
        return super().state_dict()

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self._upload()
