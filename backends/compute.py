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


def group_by_agent(agent_of_token: np.ndarray, n_agents: int):
    """Token order sorted by agent and offsets (n_agents + 1,): agent a owns order[offsets[a]:offsets[a+1]].

    A stable counting sort (O(N + A)); rows gathered in this order give each agent one contiguous
    block, so its MLP is one matrix product pair instead of per-token weight gathers.
    """
    agent_of_token = np.asarray(agent_of_token)
    if agent_of_token.size and (agent_of_token.min() < 0 or agent_of_token.max() >= n_agents):
        raise ValueError(f"agent ids must lie in [0, {n_agents})")
    order = np.argsort(agent_of_token, kind="stable")
    counts = np.bincount(agent_of_token, minlength=n_agents)
    offsets = np.zeros(n_agents + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return order, offsets


def bucket_size(n: int, smallest: int = 8) -> int:
    """Padded group size for a compiled (JAX) program: the next power of two >= n (at least `smallest`).

    Group sizes then take ~log2(N) distinct values, so routing changes rarely trigger a recompile,
    at most 2x padding waste per group.
    """
    if n < 0:
        raise ValueError(f"group size must be >= 0, got {n}")
    return max(smallest, 1 << max(0, int(n - 1).bit_length()))
