"""K-1 on the Numba KernelSet matches the NumPy reference: loss and every gradient, in float32."""
import numpy as np
import pytest

pytest.importorskip("numba", reason="numba extra not installed: pip install 'k1[numba]'")

from backends.compute import load_compute  # noqa: E402
from k1core.errors import UserError  # noqa: E402
from k1core.k1 import build_k1  # noqa: E402
from k1core.k1.network import backward, forward  # noqa: E402

SMALL = dict(vocab_size=64, context=16, d_model=32, n_heads=4, d_hidden=24, tree_levels=3, branching=3,
             max_depth=4, max_children=4, capacity=24, dtype="float32")


def _loss_and_grads(model, x, y, paths):
    """Loss and gradients for fixed routing decisions (routing itself is compared separately)."""
    p, g = model.params.p, model.params.g
    fwd = forward(p, model.tree, model.cfg, x, y, paths=paths, k=model.k)
    model.params.zero_grad()
    backward(p, g, model.cfg, fwd, model.k)
    return fwd, {name: g[name].copy() for name in g}


def test_numba_k1_matches_numpy():
    ref = build_k1(None, load_compute("numpy"), **SMALL)
    fast = build_k1(None, load_compute("numba"), **SMALL)
    assert fast.k.name == "numba" and ref.k.name == "numpy"
    np.testing.assert_array_equal(ref.params.flat, fast.params.flat)  # same init for the same seed
    rng = np.random.default_rng(0)
    x = rng.integers(0, 64, size=(4, 16))
    y = rng.integers(0, 64, size=(4, 16))
    want, want_g = _loss_and_grads(ref, x, y, None)
    got, got_g = _loss_and_grads(fast, x, y, want.paths)
    assert (forward(fast.params.p, fast.tree, fast.cfg, x, y, k=fast.k).paths == want.paths).mean() > 0.95
    assert got.loss == pytest.approx(want.loss, rel=1e-5)
    np.testing.assert_allclose(got.per_token, want.per_token, rtol=1e-4, atol=1e-5)
    for name, gw in want_g.items():
        scale = max(float(np.abs(gw).max()), 1e-8)
        np.testing.assert_allclose(got_g[name], gw, rtol=2e-3, atol=2e-4 * scale, err_msg=name)


def test_numba_k1_trains_like_numpy():
    ref = build_k1(None, load_compute("numpy"), **SMALL)
    fast = build_k1(None, load_compute("numba"), **SMALL)
    rng = np.random.default_rng(1)
    for _ in range(3):
        x = rng.integers(0, 64, size=(4, 16))
        y = (x + 1) % 64
        assert fast.train_step(x, y) == pytest.approx(ref.train_step(x, y), rel=1e-3)


def test_an_unknown_backend_is_one_error_naming_the_choices():
    with pytest.raises(UserError, match="numpy, jax, numba"):
        build_k1(None, load_compute("torch"), **SMALL)
