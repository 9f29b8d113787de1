"""Per-batch accuracy statistics (mean, standard deviation, perfect batches), as the published
results reported them, computed from the same result records `lrl.evaluation.summarize` reads.

They describe spread across consecutive batches of items; they are no substitute for the
Wilson interval of the whole run, which is reported next to them.
"""
from __future__ import annotations

import math
from typing import Sequence

from lrl.domain import SUCCESS_OUTCOMES


def batch_statistics(records: Sequence[dict], batch_size: int) -> dict:
    """Accuracy of each consecutive batch of `batch_size` records, their mean, sample SD, perfect count."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    accuracies = []
    for start in range(0, len(records), batch_size):
        batch = records[start:start + batch_size]
        accuracies.append(sum(r["verdict"] in SUCCESS_OUTCOMES for r in batch) / len(batch))
    n = len(accuracies)
    mean = sum(accuracies) / n if n else 0.0
    sd = math.sqrt(sum((a - mean) ** 2 for a in accuracies) / (n - 1)) if n > 1 else 0.0
    return {"batch_size": batch_size, "batches": n, "accuracies": accuracies, "mean": mean,
            "sd": sd, "perfect_batches": sum(a == 1.0 for a in accuracies)}
