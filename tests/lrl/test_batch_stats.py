from __future__ import annotations

import math

import pytest

from lrl.batch_stats import batch_statistics


def records(pattern: str) -> list[dict]:
    return [{"verdict": {"1": "correct", "0": "wrong", "p": "parse_failure", "P": "pass"}[c]} for c in pattern]


def test_batches_mean_sd_and_perfect_count():
    stats = batch_statistics(records("1111" "10p0" "PP"), batch_size=4)
    assert stats["accuracies"] == [1.0, 0.25, 1.0]
    assert stats["mean"] == pytest.approx(0.75) and stats["perfect_batches"] == 2
    assert stats["sd"] == pytest.approx(math.sqrt(((0.25) ** 2 * 2 + 0.5 ** 2) / 2))


def test_edge_cases():
    assert batch_statistics([], 10) == {"batch_size": 10, "batches": 0, "accuracies": [], "mean": 0.0,
                                        "sd": 0.0, "perfect_batches": 0}
    assert batch_statistics(records("0"), 10)["sd"] == 0.0
    with pytest.raises(ValueError):
        batch_statistics(records("1"), 0)
