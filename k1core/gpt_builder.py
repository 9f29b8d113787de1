"""Registers the baseline GPT with the model registry, built from a TrainConfig."""
from __future__ import annotations

from k1core.gpt import BaselineGPT, GPTConfig
from k1core.registry import register


def build_gpt(cfg) -> BaselineGPT:
    """BaselineGPT with the TrainConfig's shape, dropout, optimizer and seed."""
    model_cfg = GPTConfig(context=cfg.context, d_model=cfg.d_model, n_layers=cfg.n_layers,
                          n_heads=cfg.n_heads, dropout=cfg.dropout, tie_weights=cfg.tie_weights)
    return BaselineGPT(model_cfg, cfg.adamw(), seed=cfg.seed)


register("gpt", build_gpt)
