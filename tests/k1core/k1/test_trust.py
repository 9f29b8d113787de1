import numpy as np

from k1core.k1.trust import trust_histogram, trust_update


def test_trust_rule_rewards_helpful_ignores_useless_and_decays_unseen():
    alive = np.array([True, True, True, True, False])
    trust = np.full(5, 0.5)
    gain_sum = np.array([10 * 0.05, 0.0, -10 * 0.2, 0.0, 0.0])  # helpful, useless, harmful, unseen, free
    count = np.array([10, 10, 10, 0, 0])
    new = trust_update(trust, alive, gain_sum, count, rate=0.5, scale=0.01, decay=0.1)
    assert new[0] > 0.5 and new[1] == 0.25 and new[2] == 0.25 and abs(new[3] - 0.45) < 1e-12 and new[4] == 0


def test_trust_does_not_saturate_for_modest_gains():
    alive = np.ones(1, dtype=bool)
    trust = np.array([0.5])
    for _ in range(200):  # a steady gain of one trust_scale converges to tanh(1), not to 1
        trust = trust_update(trust, alive, np.array([0.01]), np.array([1.0]), 0.2, 0.01, 0.05)
    assert abs(trust[0] - np.tanh(1.0)) < 1e-6
    assert trust_histogram(trust, alive) == [0, 0, 0, 0, 0, 0, 0, 1, 0, 0]
