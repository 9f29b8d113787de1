"""The K-1 self-learning language model (see model.py); builders for the training harness."""
from __future__ import annotations

import dataclasses

from k1core import registry
from k1core.errors import UserError
from k1core.k1.config import K1Config, config_from_mapping
from k1core.k1.model import K1SelfLearningLM
from k1core.kernels import NUMPY_KERNELS, KernelSet

# run-level settings the harness may carry, and the K1Config field each one sets
RUN_FIELDS = {"steps": "total_steps", "total_steps": "total_steps", "max_steps": "total_steps",
              "context": "context", "block_size": "context", "seed": "seed",
              "d_model": "d_model", "n_heads": "n_heads"}


def _run_settings(train_config) -> dict:
    """Pick steps/context/seed from the harness's config (a dict or an object with attributes)."""
    if train_config is None:
        return {}
    get = train_config.get if isinstance(train_config, dict) else lambda k: getattr(train_config, k, None)
    out = {}
    for key, field in RUN_FIELDS.items():
        value = get(key)
        if value is not None:
            out[field] = value
    return out


def build_k1(train_config=None, **overrides) -> K1SelfLearningLM:
    """K-1 with its default config, the run's steps/context/seed, and any K1Config field overrides."""
    section = getattr(train_config, "k1", None) or {}  # the run config's [k1] table
    values = dataclasses.asdict(K1Config()) | _run_settings(train_config) | section | overrides
    backend = getattr(train_config, "backend", "numpy")
    if backend == "jax":  # imported only when chosen, so the core needs numpy only
        from backends.jax_k1 import JaxK1
        return JaxK1(config_from_mapping(values))
    return K1SelfLearningLM(config_from_mapping(values), kernels=_kernels(backend))


def _kernels(backend: str) -> KernelSet:
    """The KernelSet for `backend`; numba is imported only when chosen, so the core needs numpy only."""
    if backend == "numpy":
        return NUMPY_KERNELS
    if backend == "numba":
        from backends.numba_kernels import NUMBA_KERNELS
        return NUMBA_KERNELS
    raise UserError(f"K-1 runs on the numpy, numba or jax backend (got backend {backend!r})")


def build_k1_no_tree(train_config=None, **overrides) -> K1SelfLearningLM:
    """The ablation: the same mixer, embeddings and head, without the tree of agents."""
    return build_k1(train_config, **(overrides | {"use_tree": False}))


registry.register("k1", build_k1)
registry.register("k1-notree", build_k1_no_tree)

__all__ = ["K1Config", "K1SelfLearningLM", "build_k1", "build_k1_no_tree"]
