"""The seam a compute backend fills: how to build the GPT and K-1 on it.

Each backend is one module, backends/compute/<name>.py, defining `COMPUTE`; `k1 train --backend NAME`
finds it by name (backends.compute.load_compute) and hands it to the training harness. The NumPy
reference lives here, so the core runs, and is tested, with numpy alone.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from k1core.gpt import BaselineGPT, GPTConfig
from k1core.k1.config import K1Config
from k1core.k1.model import K1SelfLearningLM
from k1core.kernels import NUMPY_KERNELS, KernelSet
from k1core.optim import AdamWConfig


@dataclass(frozen=True)
class Compute:
    """A compute backend: its name and a builder per model (same seed -> same initial weights)."""

    name: str
    build_gpt: Callable[[GPTConfig, AdamWConfig, int], BaselineGPT]
    build_k1: Callable[[K1Config], K1SelfLearningLM]


def kernel_compute(kernels: KernelSet) -> Compute:
    """A backend that swaps only the element-wise kernels (and the AdamW update) under the core's models."""
    return Compute(kernels.name,
                   lambda cfg, optim, seed: BaselineGPT(cfg, optim, seed, kernels=kernels),
                   lambda cfg: K1SelfLearningLM(cfg, kernels=kernels))


NUMPY = kernel_compute(NUMPY_KERNELS)
