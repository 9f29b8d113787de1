"""Every hand-written gradient of the K-1 network against central finite differences (float64).

Routing is discrete, so the loss is piecewise smooth: the checks replay the routing decisions of
the unperturbed forward (`paths=`), which makes the loss smooth, and then every parameter
(including the router gates, through the gate probability that scales the chosen child's output,
and the load-balancing term) must match.
"""
import numpy as np
import pytest

from k1core.k1.config import K1Config
from k1core.k1.network import backward, forward, init_params, param_shapes
from k1core.k1.tree import Tree


def _setup(use_tree=True, grow=False):
    cfg = K1Config(vocab_size=11, context=5, d_model=8, n_heads=2, d_hidden=6, tree_levels=3, branching=2,
                   max_depth=4, max_children=3, capacity=12, balance_coef=0.3, dtype="float64", use_tree=use_tree)
    rng = np.random.default_rng(1)
    p = {k: v * (5.0 if k.startswith(("agents", "router")) else 1.0) for k, v in init_params(cfg, rng).items()}
    p = {k: v + (0.1 * rng.normal(size=v.shape) if k.endswith((".g", ".b", "b1", "b2")) else 0) for k, v in p.items()}
    tree = Tree.balanced(cfg.tree_levels, cfg.branching, cfg.capacity, cfg.max_depth, cfg.max_children)
    x = rng.integers(0, cfg.vocab_size, size=(3, cfg.context))
    y = rng.integers(0, cfg.vocab_size, size=(3, cfg.context))
    if grow:  # an uneven tree: the busiest leaf is split into two children (4 levels), node 1 gets a third child
        busiest = np.bincount(forward(p, tree, cfg, x, y).paths[:, 2]).argmax()
        tree.add_child(int(busiest))
        tree.add_child(int(busiest))
        tree.add_child(1)
    return cfg, p, tree, x, y, rng


@pytest.mark.parametrize("use_tree,grow", [(True, False), (True, True), (False, False)])
def test_every_parameter_gradient_matches_finite_differences(use_tree, grow):
    cfg, p, tree, x, y, rng = _setup(use_tree, grow)
    fwd = forward(p, tree, cfg, x, y, eps=0.5, rng=rng)  # exploration: non-argmax choices too
    g = {k: np.zeros_like(v) for k, v in p.items()}
    backward(p, g, cfg, fwd)
    if use_tree:
        assert (fwd.paths >= 0).sum(axis=1).max() == (4 if grow else 3)
    checked = 0
    for name in param_shapes(cfg):
        flat = p[name].reshape(-1)
        # every entry of small arrays; a random sample of the rest, plus all the gradient's nonzeros
        idx = np.arange(flat.size) if flat.size <= 60 else np.unique(np.r_[
            rng.choice(flat.size, 40, replace=False), np.flatnonzero(g[name].reshape(-1))[:40]])
        for i in idx:
            old = flat[i]
            flat[i] = old + 1e-5
            lp = forward(p, tree, cfg, x, y, paths=fwd.paths).loss
            flat[i] = old - 1e-5
            lm = forward(p, tree, cfg, x, y, paths=fwd.paths).loss
            flat[i] = old
            num = (lp - lm) / 2e-5
            ana = g[name].reshape(-1)[i]
            assert abs(num - ana) <= 1e-6 + 1e-4 * abs(num), (name, i, num, ana)
            checked += 1
    assert checked > 300
    if use_tree:
        assert np.abs(g["router.w"]).sum() > 0 and np.abs(g["agents.w1"]).sum() > 0


def test_replayed_paths_reproduce_the_loss_exactly():
    cfg, p, tree, x, y, rng = _setup()
    fwd = forward(p, tree, cfg, x, y, eps=0.5, rng=rng)
    again = forward(p, tree, cfg, x, y, paths=fwd.paths)
    assert again.loss == fwd.loss
    np.testing.assert_array_equal(again.paths, fwd.paths)
