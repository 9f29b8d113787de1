"""LoRA configuration and initialisation: per target, A (L, in, r) and B (L, r, out) stacked over layers.

Initialised as PEFT does (A Kaiming-uniform with a = sqrt(5), i.e. U(-1/sqrt(in), 1/sqrt(in)); B zero),
so the adapted model starts exactly at the base model.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from backends.student.architectures import ATTN_PROJ, MLP_PROJ, StudentConfig
from k1core.errors import UserError

ALL_TARGETS = ATTN_PROJ + MLP_PROJ
_SHORT = {"q": "q_proj", "k": "k_proj", "v": "v_proj", "o": "o_proj", "gate": "gate_proj", "up": "up_proj", "down": "down_proj"}


def lora_scale(alpha: float, rank: int, rslora: bool = False) -> float:
    """The factor on B @ A when merging: alpha / r, or alpha / sqrt(r) for rsLoRA (PEFT's `use_rslora`)."""
    return alpha / math.sqrt(rank) if rslora else alpha / rank


@dataclass(frozen=True)
class LoraConfig:
    targets: tuple = ALL_TARGETS
    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    rslora: bool = False
    layers: int | None = None  # train the top `layers` decoder layers only; None: every layer

    def __post_init__(self):
        targets = tuple(_SHORT.get(t, t) for t in self.targets)
        bad = [t for t in targets if t not in ALL_TARGETS]
        if bad or not targets:
            raise UserError(f"lora targets {list(self.targets)} invalid; choose from {list(_SHORT)} (or the *_proj names)")
        object.__setattr__(self, "targets", targets)
        if self.rank <= 0:
            raise UserError(f"lora rank must be positive, got {self.rank}")
        if not 0.0 <= self.dropout < 1.0:
            raise UserError(f"lora dropout must be in [0, 1), got {self.dropout}")
        if self.layers is not None and (isinstance(self.layers, bool) or not isinstance(self.layers, int)
                                        or self.layers < 1):
            raise UserError(f"lora layers must be a positive integer, got {self.layers!r}")

    @property
    def scale(self) -> float:
        return lora_scale(self.alpha, self.rank, self.rslora)


def first_trained_layer(cfg: StudentConfig, lcfg: LoraConfig) -> int:
    """Index of the lowest layer whose LoRA trains. Below it the adapter keeps B = 0 (no change to the
    model) and a training step runs no backward pass through those layers."""
    if lcfg.layers is None:
        return 0
    if lcfg.layers > cfg.n_layers:
        raise UserError(f"lora layers {lcfg.layers} exceeds the model's {cfg.n_layers} layers")
    return cfg.n_layers - lcfg.layers


def target_dims(cfg: StudentConfig, target: str) -> tuple[int, int]:
    """(in, out) features of a projection."""
    q, kv = cfg.n_heads * cfg.head_dim, cfg.n_kv_heads * cfg.head_dim
    return {"q_proj": (cfg.dim, q), "k_proj": (cfg.dim, kv), "v_proj": (cfg.dim, kv), "o_proj": (q, cfg.dim),
            "gate_proj": (cfg.dim, cfg.ffn_dim), "up_proj": (cfg.dim, cfg.ffn_dim),
            "down_proj": (cfg.ffn_dim, cfg.dim)}[target]


def init_lora(cfg: StudentConfig, lcfg: LoraConfig, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Fresh adapter: {target: (A (L, in, r), B (L, r, out))}, B zero so the output is unchanged."""
    rng = np.random.default_rng(seed)
    out = {}
    for target in lcfg.targets:
        d_in, d_out = target_dims(cfg, target)
        bound = 1.0 / np.sqrt(d_in)
        a = rng.uniform(-bound, bound, (cfg.n_layers, d_in, lcfg.rank)).astype(np.float32)
        out[target] = (a, np.zeros((cfg.n_layers, lcfg.rank, d_out), np.float32))
    return out
