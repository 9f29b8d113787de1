import numpy as np
import pytest

from k1core.k1.config import K1Config

TINY = dict(vocab_size=32, context=8, d_model=16, n_heads=2, d_hidden=12, tree_levels=3, branching=3,
            max_depth=4, max_children=4, capacity=20, total_steps=80, warmup_steps=5, trust_interval=2,
            plasticity_interval=3, phase2_fraction=0.25, explore_decay_steps=40, max_agents_soft=18,
            plasticity=True, controller=True)  # every mechanism on, including those off by default


@pytest.fixture
def tiny_cfg():
    return K1Config(**TINY)


@pytest.fixture
def batches():
    """Repeating-pattern data (learnable) in (x, y) batches of 4 x 8."""
    rng = np.random.default_rng(0)
    seq = np.tile(np.arange(32), 200) ^ (np.arange(6400) // 97 % 2)

    def make(n):
        out = []
        for _ in range(n):
            s = rng.integers(0, len(seq) - 9, size=4)
            w = seq[s[:, None] + np.arange(9)]
            out.append((w[:, :-1].astype(np.int64), w[:, 1:].astype(np.int64)))
        return out
    return make
