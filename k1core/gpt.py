"""Baseline GPT in NumPy: token + position embeddings, pre-LN blocks (causal MHA, GELU MLP),
final LayerNorm and a tied or untied head, with a hand-written exact backward (as nanoGPT's model.py,
minus autograd)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np

from k1core.corpus import VOCAB_SIZE
from k1core.errors import UserError
from k1core.kernels import NUMPY_KERNELS, KernelSet
from k1core.layers import (attention_backward, check_heads, attention_forward, causal_mask, linear_backward,
                           linear_forward)
from k1core.model_api import Batch
from k1core.optim import AdamW, AdamWConfig, lr_at
from k1core.params import ParamStore
from k1core.sampling import generate_ids, mean_loss


@dataclass(frozen=True)
class GPTConfig:
    context: int = 64
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    dropout: float = 0.0
    tie_weights: bool = True
    vocab_size: int = VOCAB_SIZE

    def __post_init__(self):
        for key in ("context", "d_model", "n_layers", "n_heads", "vocab_size"):
            if getattr(self, key) < 1:
                raise UserError(f"{key} must be >= 1, got {getattr(self, key)}")
        check_heads(self.d_model, self.n_heads)
        if not 0.0 <= self.dropout < 1.0:
            raise UserError(f"dropout must be in [0, 1), got {self.dropout}")


def init_params(cfg: GPTConfig, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """nanoGPT's init: N(0, 0.02) weights, residual projections scaled by 1/sqrt(2 L), zero biases, unit gains."""
    c, v = cfg.d_model, cfg.vocab_size
    std, resid_std = 0.02, 0.02 / np.sqrt(2 * cfg.n_layers)
    p = {"wte": rng.normal(0, std, (v, c)), "wpe": rng.normal(0, std, (cfg.context, c))}
    for i in range(cfg.n_layers):
        p |= {
            f"h{i}.ln1.g": np.ones(c), f"h{i}.ln1.b": np.zeros(c),
            f"h{i}.attn.w_qkv": rng.normal(0, std, (c, 3 * c)), f"h{i}.attn.b_qkv": np.zeros(3 * c),
            f"h{i}.attn.w_out": rng.normal(0, resid_std, (c, c)), f"h{i}.attn.b_out": np.zeros(c),
            f"h{i}.ln2.g": np.ones(c), f"h{i}.ln2.b": np.zeros(c),
            f"h{i}.mlp.w_in": rng.normal(0, std, (c, 4 * c)), f"h{i}.mlp.b_in": np.zeros(4 * c),
            f"h{i}.mlp.w_out": rng.normal(0, resid_std, (4 * c, c)), f"h{i}.mlp.b_out": np.zeros(c),
        }
    p |= {"lnf.g": np.ones(c), "lnf.b": np.zeros(c)}
    if not cfg.tie_weights:
        p["head"] = rng.normal(0, std, (c, v))
    return p


class BaselineGPT:
    """The GPT baseline; owns its parameters, AdamW state, schedule position and dropout RNG."""

    def __init__(self, cfg: GPTConfig, optim: AdamWConfig = AdamWConfig(), seed: int = 0,
                 dtype=np.float32, kernels: KernelSet = NUMPY_KERNELS):
        self.cfg, self.optim_cfg, self.k = cfg, optim, kernels
        self.rng = np.random.default_rng(seed)  # init, then dropout masks
        self.params = ParamStore(init_params(cfg, self.rng), dtype=dtype)
        self.opt = AdamW(self.params, optim, update=kernels.adamw_update)
        self.step = 0
        self.mask = causal_mask(cfg.context, self.params.dtype)

    # ---- forward and backward -------------------------------------------------------------
    def _forward(self, x: np.ndarray, train: bool):
        """Logits (B*T, V) for inputs x (B, T) and the caches the backward needs."""
        cfg, k, p = self.cfg, self.k, self.params.p
        b, t = x.shape
        if t > cfg.context:
            raise UserError(f"sequence length {t} exceeds the model context {cfg.context}")
        p_drop = cfg.dropout if train else 0.0
        ids = x.reshape(-1)
        h = p["wte"][ids]  # (B*T, C)
        h_btc = h.reshape(b, t, -1)  # (B, T, C) view of h
        h_btc += p["wpe"][:t]
        h, drop_emb = k.dropout_forward(h, p_drop, self.rng)
        blocks = []
        for i in range(cfg.n_layers):
            a, ln1 = k.layernorm_forward(h, p[f"h{i}.ln1.g"], p[f"h{i}.ln1.b"])
            qkv = linear_forward(a, p[f"h{i}.attn.w_qkv"], p[f"h{i}.attn.b_qkv"])  # (B*T, 3C)
            att_y, att = attention_forward(qkv, b, cfg.n_heads, self.mask, k)
            proj = linear_forward(att_y, p[f"h{i}.attn.w_out"], p[f"h{i}.attn.b_out"])
            proj, drop1 = k.dropout_forward(proj, p_drop, self.rng)
            h += proj  # h is not cached (LayerNorm keeps its own xhat), so update in place
            m, ln2 = k.layernorm_forward(h, p[f"h{i}.ln2.g"], p[f"h{i}.ln2.b"])
            u = linear_forward(m, p[f"h{i}.mlp.w_in"], p[f"h{i}.mlp.b_in"])  # (B*T, 4C)
            g, gelu = k.gelu_forward(u)
            out = linear_forward(g, p[f"h{i}.mlp.w_out"], p[f"h{i}.mlp.b_out"])
            out, drop2 = k.dropout_forward(out, p_drop, self.rng)
            h += out
            blocks.append((a, ln1, att_y, att, drop1, m, ln2, g, gelu, drop2))
        f, lnf = k.layernorm_forward(h, p["lnf.g"], p["lnf.b"])
        logits = f @ (p["wte"].T if cfg.tie_weights else p["head"])  # (B*T, V)
        return logits, (ids, b, t, drop_emb, blocks, f, lnf)

    def _backward(self, dlogits: np.ndarray, caches) -> None:
        """Fills params.grad from dlogits (B*T, V)."""
        cfg, k, p, gr = self.cfg, self.k, self.params.p, self.params.g
        ids, b, t, drop_emb, blocks, f, lnf = caches
        self.params.zero_grad()
        head = p["wte"].T if cfg.tie_weights else p["head"]  # (C, V)
        dhead = gr["wte"].T if cfg.tie_weights else gr["head"]
        np.matmul(f.T, dlogits, out=dhead)
        df = dlogits @ head.T  # (B*T, C)
        dh, gr["lnf.g"][...], gr["lnf.b"][...] = k.layernorm_backward(df, lnf, p["lnf.g"])
        for i in reversed(range(cfg.n_layers)):
            a, ln1, att_y, att, drop1, m, ln2, g, gelu, drop2 = blocks[i]
            dout = k.dropout_backward(dh, drop2)
            dg = linear_backward(dout, g, p[f"h{i}.mlp.w_out"], gr[f"h{i}.mlp.w_out"], gr[f"h{i}.mlp.b_out"])
            du = k.gelu_backward(dg, gelu)
            dm = linear_backward(du, m, p[f"h{i}.mlp.w_in"], gr[f"h{i}.mlp.w_in"], gr[f"h{i}.mlp.b_in"])
            dres, gr[f"h{i}.ln2.g"][...], gr[f"h{i}.ln2.b"][...] = k.layernorm_backward(dm, ln2, p[f"h{i}.ln2.g"])
            dh += dres  # dout, the only alias of dh, is already consumed
            dproj = k.dropout_backward(dh, drop1)
            datt_y = linear_backward(dproj, att_y, p[f"h{i}.attn.w_out"], gr[f"h{i}.attn.w_out"],
                                     gr[f"h{i}.attn.b_out"])
            dqkv = attention_backward(datt_y, att, k)
            da = linear_backward(dqkv, a, p[f"h{i}.attn.w_qkv"], gr[f"h{i}.attn.w_qkv"], gr[f"h{i}.attn.b_qkv"])
            dres, gr[f"h{i}.ln1.g"][...], gr[f"h{i}.ln1.b"][...] = k.layernorm_backward(da, ln1, p[f"h{i}.ln1.g"])
            dh += dres
        dh = k.dropout_backward(dh, drop_emb)
        gr["wpe"][:t] = dh.reshape(b, t, -1).sum(axis=0)
        k.embedding_backward(gr["wte"], ids, dh)

    def loss_and_grad(self, x: np.ndarray, y: np.ndarray, train: bool = True) -> float:
        """Mean loss (nats/byte) on (x, y) with gradients left in params.grad."""
        logits, caches = self._forward(x, train)
        loss, dlogits = self.k.softmax_xent_forward_backward(logits, y.reshape(-1))
        self._backward(dlogits, caches)
        return loss

    # ---- LanguageModel protocol -----------------------------------------------------------
    def train_step(self, x: np.ndarray, y: np.ndarray) -> float:
        loss = self.loss_and_grad(x, y, train=True)
        self.opt.clip_grad()
        self.opt.step(lr_at(self.step, self.optim_cfg))
        self.step += 1
        return loss

    def loss(self, x: np.ndarray, y: np.ndarray) -> float:
        logits, _ = self._forward(x, train=False)
        return self.k.softmax_xent_forward_backward(logits, y.reshape(-1))[0]

    def evaluate(self, batches: Iterable[Batch]) -> float:
        return mean_loss(self.loss, batches)

    def next_logits(self, ids: np.ndarray) -> np.ndarray:
        """Logits (V,) for the byte after `ids`, seen through the last `context` positions."""
        window = np.asarray(ids, dtype=np.int64)[-self.cfg.context:]
        logits, _ = self._forward(window[None, :], train=False)
        return logits[-1]

    def generate(self, prompt_ids, max_new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None, seed: int = 0) -> np.ndarray:
        return generate_ids(self.next_logits, prompt_ids, max_new_tokens, temperature, top_k, seed,
                            self.cfg.context)

    def on_step_end(self, step: int, probe: Callable[[], Batch]) -> list[dict]:
        return []  # the baseline has no controller

    def flops_per_token(self) -> float:
        """6 x matmul params + attention (QK^T and AV over the full window, 12 L T C), as in PaLM/nanoGPT."""
        c, n_layers, t, v = self.cfg.d_model, self.cfg.n_layers, self.cfg.context, self.cfg.vocab_size
        matmul_params = n_layers * 12 * c * c + c * v  # qkv + out + MLP per layer, plus the head
        return float(6 * matmul_params + 12 * n_layers * t * c)

    def stats(self) -> dict:
        return {
            "params": int(self.params.size),
            "params_updated_per_step": int(self.params.size),
            "flops_per_token": self.flops_per_token(),
            "d_model": self.cfg.d_model, "n_layers": self.cfg.n_layers, "n_heads": self.cfg.n_heads,
            "context": self.cfg.context, "tie_weights": self.cfg.tie_weights,
        }

    def state_dict(self) -> dict:
        return {"params": self.params.state_dict(), "optim": self.opt.state_dict(),
                "step": self.step, "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.params.load_state_dict(state["params"])
        self.opt.load_state_dict(state["optim"])
        self.step = int(state["step"])
        self.rng.bit_generator.state = state["rng"]
