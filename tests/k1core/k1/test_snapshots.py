"""A harmful structural change must be rolled back, restoring the model exactly."""
import numpy as np

from k1core.k1 import plasticity as ops
from k1core.k1.model import K1SelfLearningLM
from k1core.k1.snapshots import validated_change


def _trained(cfg, batches, steps=6):
    m = K1SelfLearningLM(cfg)
    for x, y in batches(steps):
        m.train_step(x, y)
    return m


def test_corrupted_grow_is_rolled_back_bit_for_bit(tiny_cfg, batches):
    m = _trained(tiny_cfg, batches)
    vx, vy = batches(1)[0]
    flat, mom, tree, trust = m.params.flat.copy(), m.opt.m.copy(), m.tree.state_dict(), m.trust.copy()
    leaf = m.tree.leaves()[0]

    def harmful():
        child = ops.apply_grow(m.params.p, m.tree, leaf)[0]
        # the new agent now shouts into the residual stream; a ramp, since LayerNorm would remove
        # a constant vector exactly and leave the loss unchanged up to rounding
        m.params["agents.w2"][child] = 50.0
        m.params["agents.b2"][child] = np.linspace(-50.0, 50.0, m.cfg.d_model)

    events = validated_change(m, "grow", {"agent": leaf}, harmful, lambda: m.loss(vx, vy), 0.0, step=7)
    assert [e["type"] for e in events] == ["grow", "rollback"]
    assert events[0]["val_after"] > events[0]["val_before"] and not events[0]["kept"]
    assert events[1]["val_restored"] == events[0]["val_before"]
    np.testing.assert_array_equal(m.params.flat, flat)
    np.testing.assert_array_equal(m.opt.m, mom)
    np.testing.assert_array_equal(m.trust, trust)
    assert m.tree.children == tree["children"] and (m.tree.alive == tree["alive"]).all()


def test_merging_dissimilar_agents_is_rolled_back(tiny_cfg, batches):
    m = _trained(tiny_cfg, batches)
    vx, vy = batches(1)[0]
    a, b = m.tree.children[1][:2]
    m.params["agents.w2"][b] = -m.params["agents.w2"][a] * 20  # b = opposite of a, loud
    m.params["agents.b2"][b] = 5.0
    flat = m.params.flat.copy()
    cand = {"agent": a, "other": b, "share_a": 0.5, "share_b": 0.5}
    events = validated_change(m, "merge", cand, lambda: ops.apply_merge(m.params.p, m.tree, **cand),
                              lambda: m.loss(vx, vy), 0.0, step=7)
    if events[0]["kept"]:  # merging away a harmful agent may help; then it must really be better
        assert events[0]["val_after"] <= events[0]["val_before"]
    else:
        np.testing.assert_array_equal(m.params.flat, flat)
        assert b in m.tree.children[1]


def test_grow_is_function_preserving(tiny_cfg, batches):
    """The split adds two children with distinct hidden layers, zero outputs and equal gates."""
    m = _trained(tiny_cfg, batches)
    x, y = batches(1)[0]
    before = m.loss(x, y)
    leaf = m.tree.leaves()[0]
    a, b = ops.apply_grow(m.params.p, m.tree, leaf, rng=np.random.default_rng(0))
    assert m.tree.children[leaf] == [a, b]
    assert m.loss(x, y) == before
    p = m.params.p
    assert not np.array_equal(p["agents.w1"][a], p["agents.w1"][b])  # independent noise breaks symmetry
    np.testing.assert_allclose(p["agents.w1"][a], p["agents.w1"][leaf], atol=1e-2)
    assert not p["agents.w2"][[a, b]].any() and not p["agents.b2"][[a, b]].any()
    np.testing.assert_array_equal(p["router.w"][leaf][:, 0], -p["router.w"][leaf][:, 1])  # opposite gates
    assert not p["router.b"][leaf][:2].any() and np.abs(p["router.w"][leaf][:, :2]).max() < 1e-2


def test_grow_needs_room_for_both_children(tiny_cfg):
    """A split needs two free slots under max_agents_soft / capacity."""
    m = K1SelfLearningLM(tiny_cfg)
    streak, loss = np.full(m.cfg.capacity, 5), np.ones(m.cfg.capacity)
    alive = int(m.tree.alive.sum())
    assert ops.grow_candidate(m.tree, streak, loss, 1, alive + 2)["agent"] in m.tree.leaves()
    assert ops.grow_candidate(m.tree, streak, loss, 1, alive + 1) is None
