"""Registers the baseline GPT with the model registry, built from a TrainConfig."""
from __future__ import annotations

from k1core.compute import NUMPY, Compute
from k1core.gpt import BaselineGPT, GPTConfig
from k1core.registry import register


def build_gpt(cfg, compute: Compute = NUMPY) -> BaselineGPT:
    """The GPT with the TrainConfig's shape, dropout, optimizer and seed, on `compute`."""
    model_cfg = GPTConfig(context=cfg.context, d_model=cfg.d_model, n_layers=cfg.n_layers,
                          n_heads=cfg.n_heads, dropout=cfg.dropout, tie_weights=cfg.tie_weights)
    return compute.build_gpt(model_cfg, cfg.adamw(), cfg.seed)


register("gpt", build_gpt)
