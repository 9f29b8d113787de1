"""The baseline GPT written in PyTorch (CPU), the reference a user would otherwise pick.

Same architecture, parameter names and layout as k1core/gpt.py (weights stored (in, out) so
`x @ w`), so it loads a NumPy model's state; the benchmark measures it side by side with the k1
backends. torch is a bench-time optional dependency only.
"""
from __future__ import annotations

import numpy as np

from k1core.gpt import GPTConfig, init_params
from k1core.lazy import require
from k1core.optim import AdamWConfig, lr_at


class TorchGPT:
    """nanoGPT-style model + torch.optim.AdamW (foreach) with the k1 schedule and clipping."""

    def __init__(self, cfg: GPTConfig, optim: AdamWConfig = AdamWConfig(), seed: int = 0):
        torch = self.torch = require("torch", "bench")
        self.F = torch.nn.functional
        self.cfg, self.optim_cfg, self.step = cfg, optim, 0
        arrays = init_params(cfg, np.random.default_rng(seed))
        self.p = {k: torch.nn.Parameter(torch.tensor(v, dtype=torch.float32)) for k, v in arrays.items()}
        decay = [v for v in self.p.values() if v.ndim >= 2]
        no_decay = [v for v in self.p.values() if v.ndim < 2]
        self.opt = torch.optim.AdamW(
            [{"params": decay, "weight_decay": optim.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=optim.lr, betas=(optim.beta1, optim.beta2), eps=optim.eps, foreach=True)

    def load_numpy_state(self, params: dict[str, np.ndarray]) -> None:
        """Copy parameters by name from a NumPy model's `params.state_dict()`."""
        with self.torch.no_grad():
            for k, v in params.items():
                self.p[k].copy_(self.torch.from_numpy(np.asarray(v, dtype=np.float32)))

    def forward(self, x):
        """Logits (B, T, V) for int64 ids x (B, T)."""
        cfg, p, F = self.cfg, self.p, self.F
        b, t = x.shape
        c, nh = cfg.d_model, cfg.n_heads
        h = p["wte"][x] + p["wpe"][:t]  # (B, T, C)
        for i in range(cfg.n_layers):
            a = F.layer_norm(h, (c,), p[f"h{i}.ln1.g"], p[f"h{i}.ln1.b"])
            qkv = a @ p[f"h{i}.attn.w_qkv"] + p[f"h{i}.attn.b_qkv"]  # (B, T, 3C)
            q, k, v = qkv.view(b, t, 3, nh, c // nh).permute(2, 0, 3, 1, 4)  # each (B, H, T, hs)
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            y = y.transpose(1, 2).reshape(b, t, c)
            h = h + y @ p[f"h{i}.attn.w_out"] + p[f"h{i}.attn.b_out"]
            m = F.layer_norm(h, (c,), p[f"h{i}.ln2.g"], p[f"h{i}.ln2.b"])
            u = F.gelu(m @ p[f"h{i}.mlp.w_in"] + p[f"h{i}.mlp.b_in"], approximate="tanh")
            h = h + u @ p[f"h{i}.mlp.w_out"] + p[f"h{i}.mlp.b_out"]
        f = F.layer_norm(h, (c,), p["lnf.g"], p["lnf.b"])
        return f @ (p["wte"].T if cfg.tie_weights else p["head"])

    def loss_and_grad(self, x: np.ndarray, y: np.ndarray) -> float:
        """Mean loss with gradients in each parameter's .grad."""
        self.opt.zero_grad(set_to_none=True)
        logits = self.forward(self.torch.from_numpy(x))
        loss = self.F.cross_entropy(logits.reshape(-1, logits.shape[-1]), self.torch.from_numpy(y).reshape(-1))
        loss.backward()
        return float(loss.detach())

    def train_step(self, x: np.ndarray, y: np.ndarray) -> float:
        loss = self.loss_and_grad(x, y)
        if self.optim_cfg.grad_clip > 0:
            self.torch.nn.utils.clip_grad_norm_(list(self.p.values()), self.optim_cfg.grad_clip, foreach=True)
        for group in self.opt.param_groups:
            group["lr"] = lr_at(self.step, self.optim_cfg)
        self.opt.step()
        self.step += 1
        return loss

    def generate(self, prompt_ids, max_new_tokens: int) -> np.ndarray:
        """Greedy continuation, each step over the last `context` ids (no KV cache, as the others)."""
        ids = list(np.asarray(prompt_ids, dtype=np.int64).reshape(-1))
        with self.torch.inference_mode():
            for _ in range(max_new_tokens):
                window = self.torch.tensor(ids[-self.cfg.context:])[None, :]
                ids.append(int(self.forward(window)[0, -1].argmax()))
        return np.array(ids, dtype=np.int64)
