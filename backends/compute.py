"""Backend selection: `numpy | numba | jax` -> a model built for that backend.

Each backend module is imported only when chosen, so the NumPy core never needs numba or jax.
The K-1 model gets a `build_k1(config, backend)` next to `build_gpt` when it merges; the helpers
below are what its grouped agent dispatch needs on every backend (sort tokens by agent, one matrix
product pair per agent; on JAX, group sizes padded to buckets so routing changes reuse compiled code).
"""
from __future__ import annotations

import numpy as np

from k1core.errors import UserError
from k1core.gpt import BaselineGPT, GPTConfig
from k1core.optim import AdamW, AdamWConfig

BACKENDS = ("numpy", "numba", "jax")


def check_backend(name: str) -> str:
    """The backend name, or a UserError listing the valid ones."""
    if name not in BACKENDS:
        raise UserError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    return name


def build_gpt(cfg: GPTConfig, backend: str = "numpy", optim: AdamWConfig = AdamWConfig(), seed: int = 0):
    """The baseline GPT on `backend`; every backend starts from the same weights for the same seed."""
    check_backend(backend)
    if backend == "jax":
        from backends.jax_gpt import JaxGPT
        return JaxGPT(cfg, optim, seed)
    if backend == "numba":
        from backends import numba_kernels
        model = BaselineGPT(cfg, optim, seed, kernels=numba_kernels.NUMBA_KERNELS)
        model.opt = AdamW(model.params, optim, update=numba_kernels.adamw_update)
        return model
    return BaselineGPT(cfg, optim, seed)
