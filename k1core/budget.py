"""How long each model trains: its step count, the GPT's time, or a number of seconds.

A model's learning-rate schedule (and K-1's phase 2) is laid out over its step count, so a time
budget is turned into a step count before training.

Equal time with the GPT (`--budget gpt`): `calibrate_equal_time` times throwaway copies of every
model in one process, in short bursts that take turns round by round, so load from other jobs falls
on all of them alike; each model's cost per step relative to the GPT is the median over rounds of
the ratio within a round. A model then trains the steps that cost what the GPT's steps cost at that
ratio (`allot_steps`). Nothing measured during the real runs enters the allotment, so a neighbour
that speeds up or slows down between the GPT's run and another's changes no one's step count.

A fixed number of seconds (`--budget-seconds`): `plan_steps` times a copy for a few steps and
divides, and the harness stops the model when the seconds run out. Those seconds are measured under
whatever load the run meets, so this budget is only as steady as the machine.
"""
from __future__ import annotations

import os
import time
from typing import Callable

import numpy as np

from k1core.corpus import sample_batch
from k1core.interleave import interleaved

PILOT_STEPS = 40  # steps a throwaway copy trains to time one step
PILOT_UNTIMED = 5  # first steps left out of the timing (caches, lazy allocation, JIT)


def clock(kind: str) -> Callable[[], float]:
    """The training-time clock: wall time, or CPU seconds of this process ('cpu'), which another
    job on the same machine slows far less; single-threaded they agree on an idle machine."""
    return time.perf_counter if kind == "wall" else time.process_time


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


CALIBRATION_WARMUP = 10  # untimed steps each copy trains first (caches, lazy allocation, JIT)
CALIBRATION_BURST = 30  # steps per model per round: a multiple of K-1's probe (10) and plasticity
#                         (15) intervals, so every burst holds the same periodic work
CALIBRATION_ROUNDS = 12  # at 6, two calibrations of one row under load differed by up to 20%


def allot_steps(gpt_steps: int, step_s: dict[str, list[float]], reference: str = "gpt") -> dict[str, dict]:
    """Per model: its cost per step relative to the reference and the most steps that cost no more
    than the reference's `gpt_steps`, from seconds per step measured round by round (`step_s[name][r]`).

    The ratio is taken within each round (its bursts ran back to back, under the same load) and the
    median over rounds kept, so a load change between rounds, or a spike inside one, moves no ratio.
    """
    ref = np.asarray(step_s[reference], dtype=float)
    ref_step_s = float(np.median(ref))
    out = {}
    for name, seconds in step_s.items():
        ratios = np.asarray(seconds, dtype=float) / ref
        ratio = float(np.median(ratios))
        out[name] = {"ratio": ratio, "ratio_range": [float(ratios.min()), float(ratios.max())],
                     "step_s": ratio * ref_step_s, "steps": max(1, int(gpt_steps / ratio + 1e-9))}
    return out


def calibrate_equal_time(builds: dict[str, Callable[[int], object]], gpt_steps: int, train_data: np.ndarray,
                         probe_data: np.ndarray, batch_size: int, context: int, clock_kind: str, seed: int,
                         rounds: int = CALIBRATION_ROUNDS, burst: int = CALIBRATION_BURST,
                         warmup: int = CALIBRATION_WARMUP) -> dict:
    """Every model's steps at equal time with the GPT's `gpt_steps`, from interleaved bursts of
    throwaway copies built by `builds[name](steps)` (one of them named 'gpt'); returns the record
    kept with the runs: the allotments, each round's seconds per step, the method and the load.

    Each copy is built for all the steps it runs, so a model whose behaviour changes over its
    schedule (K-1's phase 2 starts half way) is timed over both halves in proportion."""
    total = warmup + rounds * burst
    rng = np.random.default_rng(seed + 2)  # its own batches: the real runs' streams are untouched
    batches = [sample_batch(train_data, batch_size, context, rng) for _ in range(total)]
    load_before = list(os.getloadavg())
    steppers = {name: _stepper(build(total), batches, probe_data, batch_size, context, seed)
                for name, build in builds.items()}
    for step in steppers.values():
        for _ in range(warmup):
            step()
    times = interleaved(steppers, rounds, lambda step: step(), burst, now=clock(clock_kind))
    step_s = {name: (np.asarray(t).reshape(rounds, burst).sum(axis=1) / burst).tolist() for name, t in times.items()}
    return {"method": f"interleaved bursts: {rounds} rounds of {burst} steps per model in rotating order after "
                      f"{warmup} untimed steps; ratio to the GPT per round, median over rounds",
            "clock": clock_kind, "gpt_steps": gpt_steps, "rounds_step_s": step_s,
            "load_average": {"before": load_before, "after": list(os.getloadavg())},
            "models": allot_steps(gpt_steps, step_s)}


def _stepper(model, batches: list, probe_data: np.ndarray, batch_size: int, context: int, seed: int) -> Callable:
    """One training step of `model` per call, on the next of `batches`."""
    probe_rng, step = np.random.default_rng(seed + 3), 0

    def probe():
        return sample_batch(probe_data, batch_size, context, probe_rng)

    def run():
        nonlocal step
        model.train_step(*batches[step])
        model.on_step_end(step, probe)
        step += 1

    return run
