import numpy as np

from k1core.k1.routing import exploration_rate, load_balance, route_forward


def test_exploration_decays_linearly_to_floor():
    assert exploration_rate(0, 0.2, 0.02, 100) == 0.2
    assert abs(exploration_rate(50, 0.2, 0.02, 100) - 0.11) < 1e-12
    assert exploration_rate(500, 0.2, 0.02, 100) == 0.02


def test_argmax_without_exploration_and_uniform_with_full_exploration():
    rng = np.random.default_rng(0)
    d, c = 4, 3
    p = {"router.w": rng.normal(size=(2, d, c)), "router.b": np.zeros((2, c))}
    counts = np.array([3, 2])
    u, node = rng.normal(size=(3000, d)), rng.integers(0, 2, size=3000)
    col, probs, _ = route_forward(u, node, p, counts, 0.0, rng)
    np.testing.assert_array_equal(col, probs.argmax(axis=1))
    assert (probs[node == 1, 2] == 0).all() and np.allclose(probs.sum(axis=1), 1)
    col, _, _ = route_forward(u, node, p, counts, 1.0, rng)
    assert (col[node == 1] < 2).all()
    np.testing.assert_allclose(np.bincount(col[node == 0]) / (node == 0).sum(), 1 / 3, atol=0.04)


def test_load_balance_is_one_when_balanced_and_larger_when_collapsed():
    node = np.zeros(4, dtype=np.int64)
    counts = np.array([2])
    even = np.full((4, 2), 0.5)
    v, _ = load_balance(node, np.array([0, 1, 0, 1]), even, counts, 4)
    assert abs(v - 1.0) < 1e-12
    skew = np.tile([0.9, 0.1], (4, 1))
    v2, _ = load_balance(node, np.zeros(4, dtype=np.int64), skew, counts, 4)
    assert v2 > 1.5
