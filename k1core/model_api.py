"""The interface shared by the baseline GPT and the K-1 model, so one harness trains both."""
from __future__ import annotations

from typing import Callable, Iterable, Protocol

import numpy as np

from k1core.params import ParamStore

Batch = tuple[np.ndarray, np.ndarray]  # inputs x and targets y, both (B, T) int64


class LanguageModel(Protocol):
    """A byte-level LM that owns its parameters, optimizer state and schedule position.

    Events returned by `on_step_end` are dicts with at least {"step", "type"}; the harness logs
    them, and an event of type "stop" ends that model's training (its stopping rule fired).
    """

    params: ParamStore

    def train_step(self, x: np.ndarray, y: np.ndarray) -> float:
        """Forward, backward and optimizer update on one batch; returns the mean loss in nats/byte."""

    def loss(self, x: np.ndarray, y: np.ndarray) -> float:
        """Mean cross-entropy in nats/byte without updating anything (dropout off)."""

    def evaluate(self, batches: Iterable[Batch]) -> float:
        """Mean loss over `batches`, weighted by token count."""

    def generate(self, prompt_ids, max_new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None, seed: int = 0) -> np.ndarray:
        """Prompt followed by sampled continuation ids (temperature 0 means greedy)."""

    def on_step_end(self, step: int, probe: Callable[[], Batch]) -> list[dict]:
        """Hook after each train step (K-1's controller and plasticity); `probe` yields held-out batches."""

    def stats(self) -> dict:
        """JSON-ready numbers: parameter count, parameters updated per step, FLOPs/token, and model specifics."""

    def flops_per_token(self) -> float:
        """Analytic training FLOPs per token (forward + backward)."""

    def state_dict(self) -> dict:
        """Everything needed to resume bit-identically: parameters, optimizer, step, RNG, structure."""

    def load_state_dict(self, state: dict) -> None:
        """Inverse of state_dict."""
