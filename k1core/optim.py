"""AdamW with decoupled weight decay, global-norm clipping and a warmup + cosine schedule.

The update runs over the ParamStore's single flat buffer (a handful of whole-array ops), or in
place over a few contiguous flat ranges when only some parameters may change (K-1's top-K credit:
the shared layers plus the selected agents' rows), so nothing is gathered or scattered.
"""
from __future__ import annotations

import math
from typing import Callable
from dataclasses import dataclass

import numpy as np

from k1core.params import ParamStore


@dataclass(frozen=True)
class AdamWConfig:
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_steps: int = 100
    total_steps: int = 2000
    beta1: float = 0.9
    beta2: float = 0.99
    eps: float = 1e-8
    weight_decay: float = 0.1
    grad_clip: float = 1.0  # 0 disables clipping


def lr_at(step: int, cfg: AdamWConfig) -> float:
    """Linear warmup to cfg.lr, then cosine decay to cfg.min_lr at cfg.total_steps."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    span = max(1, cfg.total_steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    return cfg.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (cfg.lr - cfg.min_lr)


def decay_matrices(name: str, shape: tuple) -> bool:
    """Default weight-decay rule (as nanoGPT): decay 2-D+ weights, not gains, biases or scalars."""
    return len(shape) >= 2


def decay_named(names) -> Callable[[str, tuple], bool]:
    """A weight-decay rule that decays exactly the parameters called `names`, whatever their shape
    (K-1's stacked biases are 2-D but are not decayed)."""
    return lambda name, shape: name in names


def adamw_update(p, g, m, v, decay_mask, lr: float, bc1: float, bc2: float, cfg: AdamWConfig) -> None:
    """In place over flat arrays: moments m, v from gradient g, decoupled decay, then the step on p."""
    m *= cfg.beta1
    m += (1.0 - cfg.beta1) * g
    v *= cfg.beta2
    v += (1.0 - cfg.beta2) * (g * g)
    if cfg.weight_decay:
        p *= 1.0 - (lr * cfg.weight_decay) * decay_mask
    denom = np.sqrt(v / bc2)
    denom += cfg.eps
    p -= (lr / bc1) * m / denom


class AdamW:
    """AdamW over a ParamStore; moments are flat arrays aligned with params.flat.

    `update` is the element-wise update over flat arrays (signature of `adamw_update`); a compute
    backend passes a fused one-pass version.
    """

    def __init__(self, params: ParamStore, cfg: AdamWConfig, decay=decay_matrices, update=adamw_update):
        self.params, self.cfg, self.decay, self.update = params, cfg, decay, update
        self.m = np.zeros_like(params.flat)
        self.v = np.zeros_like(params.flat)
        self.decay_mask = params.mask(decay)
        self.t = 0

    def clip_grad(self, ranges: np.ndarray | None = None) -> float:
        """Scale gradients (or those in `ranges`) to global norm <= grad_clip; returns the norm before."""
        grad = self.params.grad
        # the selected gradients in flat order, so the norm is the same dot as over a gathered subset
        g = grad if ranges is None else np.concatenate([grad[a:b] for a, b in _spans(ranges, 0)])
        norm = float(np.sqrt(np.dot(g, g)))
        if self.cfg.grad_clip > 0 and norm > self.cfg.grad_clip:
            scale = self.cfg.grad_clip / (norm + 1e-12)
            for a, b in _spans(ranges, grad.size):
                grad[a:b] *= scale
        return norm

    def step(self, lr: float, ranges: np.ndarray | None = None) -> None:
        """One AdamW update with learning rate `lr` of all parameters, or of the flat [start, stop)
        rows of `ranges` (R, 2), updated in place.

        Parameters outside `ranges` keep their values and moments; bias correction uses the global
        step count, so a rarely selected parameter gets a slightly damped first update.
        """
        c = self.cfg
        bc1, bc2 = self.advance()
        p, g, m, v, dm = self.params.flat, self.params.grad, self.m, self.v, self.decay_mask
        for a, b in _spans(ranges, p.size):  # contiguous slices are views: the update writes in place
            self.update(p[a:b], g[a:b], m[a:b], v[a:b], dm[a:b], lr, bc1, bc2, c)

    def advance(self) -> tuple[float, float]:
        """Count one update and return its bias corrections (1 - beta1^t, 1 - beta2^t); a backend that
        runs the update itself calls this so its step count stays the optimizer's."""
        self.t += 1
        return 1.0 - self.cfg.beta1**self.t, 1.0 - self.cfg.beta2**self.t

    def state_dict(self) -> dict:
        """Moments by parameter name (so they survive a structural change) and the step count."""
        ps = self.params
        return {
            "t": self.t,
            "m": {k: ps._view(self.m, k).copy() for k in ps.shapes},
            "v": {k: ps._view(self.v, k).copy() for k in ps.shapes},
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore moments by name; parameters absent from `state` start with zero moments."""
        ps = self.params
        self.t = int(state["t"])
        self.m.fill(0.0)
        self.v.fill(0.0)
        for k in ps.shapes:
            if k in state["m"] and tuple(np.shape(state["m"][k])) == ps.shapes[k]:
                ps._view(self.m, k)[...] = state["m"][k]
                ps._view(self.v, k)[...] = state["v"][k]


def _spans(ranges: np.ndarray | None, size: int):
    """(start, stop) pairs of `ranges` as Python ints, or the whole buffer when ranges is None."""
    return [(0, size)] if ranges is None else ranges.tolist()
