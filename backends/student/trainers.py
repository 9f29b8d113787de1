"""The student-trainer protocol and the trainers found by name ("jax", "mlx").

A trainer prepares a base model from its path (the handle it trains, plus the tokenizer and chat
template the chat JSONL is encoded with), streams encoded examples as rows (how many a step takes is
what epochs are counted in) and trains a LoRA adapter on encoded examples, writing
PEFT adapters to tcfg.out_dir/best and /final. Trainers are imported only when asked for, so a
missing optional library is a clear error about that trainer alone.
"""
from __future__ import annotations

import importlib
import platform
import sys
from pathlib import Path
from typing import Any, Iterator, Protocol

from backends.student.chat_data import Example
from backends.student.train_config import TrainConfig, TrainResult
from k1core.errors import UserError

_REGISTRY = {
    "jax": "backends.student.jax_trainer:JaxTrainer",  # any GGUF file or HF directory; CPU or GPU
    "mlx": "backends.student.mlx_trainer:MlxTrainer",  # HF directories through mlx-lm; Metal on Apple silicon
}
TRAINERS = tuple(_REGISTRY)


class Trainer(Protocol):
    name: str

    def prepare(self, model_path: str | Path) -> tuple[Any, Any, str]:
        """(handle for `train`, tokenizer, chat template) of the base model at `model_path`."""

    def rows(self, train: list[Example], seq_len: int, seed: int) -> Iterator[list[Example]]:
        """The endless row stream `train` trains on, each row the examples it holds; one optimizer
        step takes batch_size x grad_accum rows (backends.student.training_length counts them)."""

    def train(self, handle: Any, train: list[Example], val: list[Example], tcfg: TrainConfig,
              accuracy_fn=None) -> TrainResult:
        """Train a LoRA adapter; resumes from tcfg.out_dir/checkpoint when present."""


def get_trainer(name: str) -> Trainer:
    """The trainer registered under `name`; UserError listing the names if unknown."""
    if name not in _REGISTRY:
        raise UserError(f"unknown trainer {name!r}; choose from {', '.join(TRAINERS)}")
    module, cls = _REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), cls)()


def default_trainer() -> str:
    """mlx on Apple silicon (macOS arm64), jax elsewhere (mlx[cpu] on Linux is far slower than JAX)."""
    return "mlx" if sys.platform == "darwin" and platform.machine() == "arm64" else "jax"
