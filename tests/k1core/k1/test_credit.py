import numpy as np

from k1core.k1.credit import select_top_k
from k1core.k1.model import K1SelfLearningLM


def test_select_top_k_ranks_by_responsibility_times_one_plus_trust():
    resp = np.array([1.0, 0.9, 0.0, 0.5, 2.0])
    trust = np.array([0.0, 0.5, 1.0, 1.0, 0.0])
    alive = np.array([True, True, True, True, False])
    assert select_top_k(resp, trust, alive, 2).tolist() == [1, 0]  # 1.35, 1.0; dead and zero excluded
    assert select_top_k(resp, trust, alive, 10).tolist() == [1, 0, 3]


def test_train_step_updates_only_top_k_agents(tiny_cfg, batches):
    from dataclasses import replace
    m = K1SelfLearningLM(replace(tiny_cfg, top_k_agents=2))
    x, y = batches(1)[0]
    before = m.params["agents.w1"].copy()
    m.train_step(x, y)
    changed = np.flatnonzero(np.abs(m.params["agents.w1"] - before).sum(axis=(1, 2)) > 0)
    assert 1 <= len(changed) <= 2
    st = m.stats()
    assert 0 < st["params_updated_fraction"] < 1


def test_a_freshly_grown_agent_can_be_selected_and_learns(tiny_cfg, batches):
    """Both children of a split output zero at first; each must still get tokens, earn responsibility
    and so get updated."""
    from k1core.k1 import plasticity as ops
    from k1core.k1.network import forward, backward
    from k1core.k1.credit import responsibility
    m = K1SelfLearningLM(tiny_cfg)
    x, y = (np.concatenate(a) for a in zip(*batches(10)))  # enough tokens for the split to send some each way
    busiest = np.bincount(forward(m.params.p, m.tree, m.cfg, x, y).paths[:, 2]).argmax()
    children = ops.apply_grow(m.params.p, m.tree, int(busiest), rng=np.random.default_rng(0))
    fwd = forward(m.params.p, m.tree, m.cfg, x, y)
    m.params.zero_grad()
    backward(m.params.p, m.params.g, m.cfg, fwd)
    assert (responsibility(m.params.g, fwd, m.cfg.capacity)[children] > 0).all()
