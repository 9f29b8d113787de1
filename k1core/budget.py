"""How long each model trains: its step count, or a time budget filled by a planned step count.

A model's learning-rate schedule (and K-1's phase 2) is laid out over its step count, so a model
given a time budget needs a step count that fills the budget: `plan_steps` times a throwaway copy
of the model for a few steps and divides. The harness still stops a model when its budget runs out,
so no model ever trains longer than the budget, whatever the estimate.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np

from k1core.corpus import sample_batch

PILOT_STEPS = 40  # steps a throwaway copy trains to time one step
PILOT_UNTIMED = 5  # first steps left out of the timing (caches, lazy allocation, JIT)


def clock(kind: str) -> Callable[[], float]:
    """The training-time clock: wall time, or CPU seconds of this process ('cpu'), which another
    job on the same machine slows far less; single-threaded they agree on an idle machine."""
    return time.perf_counter if kind == "wall" else time.process_time


def time_budget(cfg, name: str, finished: dict) -> float | None:
    """Seconds of training `name` gets (None: train for cfg.steps).

    `budget_seconds` applies to every model; budget 'gpt' gives every model trained after the GPT
    the GPT's training time (the GPT itself trains cfg.steps steps)."""
    if cfg.budget_seconds is not None:
        return cfg.budget_seconds
    if cfg.budget == "gpt" and name != "gpt" and "gpt" in finished:
        return float(finished["gpt"]["train_s"])
    return None


def plan_steps(build: Callable[[int], object], seconds: float, train_data: np.ndarray, probe_data: np.ndarray,
               batch_size: int, context: int, clock_kind: str, seed: int) -> dict:
    """Steps that fill `seconds`, timed on a copy built by `build(steps)` and then discarded.

    The copy is built for PILOT_STEPS steps and runs all of them, so a model whose behaviour changes
    over its schedule (K-1's phase 2 starts half way) is timed over both halves in proportion."""
    model = build(PILOT_STEPS)
    rng = np.random.default_rng(seed + 2)  # its own batches: the real run's stream is untouched
    now, elapsed = clock(clock_kind), 0.0

    def probe():
        return sample_batch(probe_data, batch_size, context, rng)

    for step in range(PILOT_STEPS):
        x, y = sample_batch(train_data, batch_size, context, rng)
        t0 = now()
        model.train_step(x, y)
        model.on_step_end(step, probe)
        if step >= PILOT_UNTIMED:
            elapsed += now() - t0
    step_s = elapsed / (PILOT_STEPS - PILOT_UNTIMED)
    return {"budget_s": seconds, "pilot_step_ms": step_s * 1e3, "steps": max(1, int(seconds / step_s))}
