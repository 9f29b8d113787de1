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
    """nanoGPT-style model + torch.optim.AdamW with the k1 schedule and clipping, built for speed.

    Each linear layer is one `addmm` (bias fused), attention is `scaled_dot_product_attention`,
    AdamW is the fused kernel where this torch has one for CPU, and `compiled=True` runs the loss
    through `torch.compile` (inductor): the fastest PyTorch GPT a user would write, so that a k1
    backend beating it means something.
    """

    def __init__(self, cfg: GPTConfig, optim: AdamWConfig = AdamWConfig(), seed: int = 0, compiled: bool = False):
        torch = self.torch = require("torch", "bench")
        self.F = torch.nn.functional
        self.cfg, self.optim_cfg, self.step = cfg, optim, 0
        arrays = init_params(cfg, np.random.default_rng(seed))
        self.p = {k: torch.nn.Parameter(torch.tensor(v, dtype=torch.float32)) for k, v in arrays.items()}
        decay = [v for v in self.p.values() if v.ndim >= 2]
        no_decay = [v for v in self.p.values() if v.ndim < 2]
        groups = [{"params": decay, "weight_decay": optim.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        settings = dict(lr=optim.lr, betas=(optim.beta1, optim.beta2), eps=optim.eps)
        try:
            self.opt = torch.optim.AdamW(groups, fused=True, **settings)
        except RuntimeError:  # a torch without a fused CPU AdamW
            self.opt = torch.optim.AdamW(groups, foreach=True, **settings)
        self._loss = torch.compile(self._eager_loss) if compiled else self._eager_loss

    def load_numpy_state(self, params: dict[str, np.ndarray]) -> None:
        """Copy parameters by name from a NumPy model's `params.state_dict()`."""
        with self.torch.no_grad():
            for k, v in params.items():
                self.p[k].copy_(self.torch.from_numpy(np.asarray(v, dtype=np.float32)))

    def forward(self, x):
        """Logits (B*T, V) for int64 ids x (B, T); rows are (batch, position) flattened."""
        cfg, p, F, addmm = self.cfg, self.p, self.F, self.torch.addmm
        b, t = x.shape
        c, nh = cfg.d_model, cfg.n_heads
        h = (p["wte"][x] + p["wpe"][:t]).reshape(b * t, c)
        for i in range(cfg.n_layers):
            a = F.layer_norm(h, (c,), p[f"h{i}.ln1.g"], p[f"h{i}.ln1.b"])
            qkv = addmm(p[f"h{i}.attn.b_qkv"], a, p[f"h{i}.attn.w_qkv"])  # (B*T, 3C)
            q, k, v = qkv.view(b, t, 3, nh, c // nh).permute(2, 0, 3, 1, 4)  # each (B, H, T, hs)
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            y = y.transpose(1, 2).reshape(b * t, c)
            h = h + addmm(p[f"h{i}.attn.b_out"], y, p[f"h{i}.attn.w_out"])
            m = F.layer_norm(h, (c,), p[f"h{i}.ln2.g"], p[f"h{i}.ln2.b"])
            u = F.gelu(addmm(p[f"h{i}.mlp.b_in"], m, p[f"h{i}.mlp.w_in"]), approximate="tanh")
            h = h + addmm(p[f"h{i}.mlp.b_out"], u, p[f"h{i}.mlp.w_out"])
        f = F.layer_norm(h, (c,), p["lnf.g"], p["lnf.b"])
        return f @ (p["wte"].T if cfg.tie_weights else p["head"])

    def _eager_loss(self, x, y):
        return self.F.cross_entropy(self.forward(x), y.reshape(-1))

    def loss_and_grad(self, x: np.ndarray, y: np.ndarray) -> float:
        """Mean loss with gradients in each parameter's .grad."""
        self.opt.zero_grad(set_to_none=True)
        loss = self._loss(self.torch.from_numpy(x), self.torch.from_numpy(y))
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
                ids.append(int(self.forward(window)[-1].argmax()))
        return np.array(ids, dtype=np.int64)
