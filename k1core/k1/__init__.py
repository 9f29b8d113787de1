"""The K-1 self-learning language model (see model.py); builders for the training harness."""
from __future__ import annotations

import dataclasses

from k1core import registry
from k1core.k1.config import K1Config, config_from_mapping
from k1core.k1.model import K1SelfLearningLM

# TrainConfig keys the run sets for K-1 too, and the K1Config field each one sets
RUN_FIELDS = {"steps": "total_steps", "context": "context", "seed": "seed", "d_model": "d_model",
              "n_heads": "n_heads"}


def k1_config(train_config=None, **overrides) -> K1Config:
    """The default K1Config, then the run's steps/context/seed/width/heads and its [k1] table (from a
    TrainConfig), then `overrides`."""
    values = dataclasses.asdict(K1Config())
    if train_config is not None:
        values |= {field: getattr(train_config, key) for key, field in RUN_FIELDS.items()}
        values |= train_config.k1
    return config_from_mapping(values | overrides)


def build_k1(train_config=None, compute=None, **overrides) -> K1SelfLearningLM:
    """K-1 for a TrainConfig (or the defaults) plus K1Config field overrides, on `compute` (NumPy if None)."""
    cfg = k1_config(train_config, **overrides)
    return K1SelfLearningLM(cfg) if compute is None else compute.build_k1(cfg)


def build_k1_no_tree(train_config=None, compute=None, **overrides) -> K1SelfLearningLM:
    """The ablation: the same mixer, embeddings and head, without the tree of agents."""
    return build_k1(train_config, compute, **(overrides | {"use_tree": False}))


registry.register("k1", build_k1)
registry.register("k1-notree", build_k1_no_tree)

__all__ = ["K1Config", "K1SelfLearningLM", "build_k1", "build_k1_no_tree", "k1_config"]
