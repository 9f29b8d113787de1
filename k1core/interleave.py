"""Timing several models side by side in one run: rounds whose order rotates.

Load from other processes on a shared machine then falls on every model alike, so their ratios stay
meaningful even when the absolute times drift.
"""
from __future__ import annotations

import time
from typing import Callable


def interleaved(models: dict, rounds: int, work: Callable, per_round: int,
                now: Callable[[], float] = time.perf_counter) -> dict[str, list[float]]:
    """Seconds (on the clock `now`) per call of work(model) for each model, `per_round` calls per
    model per round, in the order they ran.

    A call for which work returns False (say, one that compiled) is run but not counted.
    """
    times = {name: [] for name in models}
    names = list(models)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            for _ in range(per_round):
                start = now()
                counted = work(models[name])
                elapsed = now() - start
                if counted is not False:
                    times[name].append(elapsed)
    return times
