"""Registers the baseline GPT with the model registry, built from a TrainConfig."""
from __future__ import annotations

from k1core.gpt import BaselineGPT, GPTConfig
from k1core.registry import register


def build_gpt(cfg) -> BaselineGPT:
    """The GPT with the TrainConfig's shape, dropout, optimizer and seed, on its compute backend."""
    model_cfg = GPTConfig(context=cfg.context, d_model=cfg.d_model, n_layers=cfg.n_layers,
                          n_heads=cfg.n_heads, dropout=cfg.dropout, tie_weights=cfg.tie_weights)
    if cfg.backend == "numpy":
        return BaselineGPT(model_cfg, cfg.adamw(), seed=cfg.seed)
    from backends.compute import build_gpt as build_on_backend  # optional extras, imported lazily

    return build_on_backend(model_cfg, cfg.backend, cfg.adamw(), cfg.seed)


register("gpt", build_gpt)
