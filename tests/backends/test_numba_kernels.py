"""Each Numba kernel against its NumPy reference on random inputs, float32 and float64."""
import numpy as np
import pytest

pytest.importorskip("numba", reason="numba extra not installed: pip install 'k1[numba]'")

from backends import numba_kernels as nk  # noqa: E402
from k1core import kernels as ref  # noqa: E402
from k1core.layers import causal_mask  # noqa: E402
from k1core.optim import AdamWConfig, adamw_update  # noqa: E402

TOL = {np.float32: dict(rtol=2e-4, atol=2e-5), np.float64: dict(rtol=1e-6, atol=1e-9)}
DTYPES = [np.float32, np.float64]


@pytest.fixture(autouse=True, params=["serial", "parallel"])
def build(request, monkeypatch):
    """Run every test on both compiled builds of each kernel (parallel for any size, or never)."""
    monkeypatch.setattr(nk, "PARALLEL_MIN_ELEMENTS", 0 if request.param == "parallel" else 1 << 62)
    return request.param


def _rand(rng, shape, dtype, scale=1.0):
    return (rng.normal(size=shape) * scale).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows", [1, 3, 50])  # fewer rows than threads exercises the chunking
def test_layernorm_forward_backward(dtype, rows):
    rng = np.random.default_rng(rows)
    x, gain, bias = _rand(rng, (rows, 24), dtype, 3.0), _rand(rng, 24, dtype), _rand(rng, 24, dtype)
    y_ref, cache_ref = ref.layernorm_forward(x, gain, bias)
    y, cache = nk.layernorm_forward(x, gain, bias)
    np.testing.assert_allclose(y, y_ref, **TOL[dtype])
    dy = _rand(rng, x.shape, dtype)
    for got, want in zip(nk.layernorm_backward(dy, cache, gain), ref.layernorm_backward(dy, cache_ref, gain)):
        np.testing.assert_allclose(got, want, **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_gelu_forward_backward(dtype):
    rng = np.random.default_rng(0)
    u = _rand(rng, (7, 40), dtype, 3.0)
    u[0, :4] = [-30.0, 30.0, 0.0, -1e-4]  # tanh saturation and the origin
    y_ref, cache_ref = ref.gelu_forward(u)
    y, cache = nk.gelu_forward(u)
    # The rational tanh is float32-accurate (abs error <= 2.6e-7) in both dtypes; the backward
    # multiplies that error by u c (1 + 3 a u^2), ~100 at |u| = 8, hence the absolute tolerance.
    tol = dict(rtol=2e-4, atol=1e-4)
    np.testing.assert_allclose(y, y_ref, **tol)
    dy = _rand(rng, u.shape, dtype)
    np.testing.assert_allclose(nk.gelu_backward(dy, cache), ref.gelu_backward(dy, cache_ref), **tol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_causal_softmax_and_backward(dtype):
    rng = np.random.default_rng(1)
    scores = _rand(rng, (2, 3, 9, 9), dtype, 5.0)
    mask = causal_mask(9, dtype)
    att_ref = ref.causal_softmax_forward(scores.copy(), mask)
    att = nk.causal_softmax_forward(scores.copy(), mask)
    np.testing.assert_allclose(att, att_ref, **TOL[dtype])
    datt = _rand(rng, scores.shape, dtype)
    np.testing.assert_allclose(nk.softmax_backward(datt.copy(), att_ref),
                               ref.softmax_backward(datt.copy(), att_ref), **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_xent(dtype):
    rng = np.random.default_rng(2)
    logits = _rand(rng, (11, 256), dtype, 8.0)
    targets = rng.integers(0, 256, 11)
    loss_ref, d_ref = ref.softmax_xent_forward_backward(logits.copy(), targets)
    loss, d = nk.softmax_xent_forward_backward(logits.copy(), targets)
    assert loss == pytest.approx(loss_ref, rel=1e-6)
    np.testing.assert_allclose(d, d_ref, **TOL[dtype])


def test_embedding_scatter_add_with_repeated_ids():
    rng = np.random.default_rng(3)
    ids = np.array([4, 4, 0, 9, 4])
    dout = _rand(rng, (5, 6), np.float32)
    want, got = np.ones((10, 6), np.float32), np.ones((10, 6), np.float32)
    ref.embedding_backward(want, ids, dout)
    nk.embedding_backward(got, ids, dout)
    np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_adamw_one_pass_matches_reference(dtype):
    rng = np.random.default_rng(4)
    p, g, m, v = (_rand(rng, 1001, dtype) for _ in range(4))
    v = np.abs(v)
    decay = (rng.random(1001) < 0.5).astype(dtype)
    bufs_ref, bufs = [a.copy() for a in (p, m, v)], [a.copy() for a in (p, m, v)]
    cfg = AdamWConfig()
    adamw_update(bufs_ref[0], g, bufs_ref[1], bufs_ref[2], decay, 3e-3, 0.2, 0.05, cfg)
    nk.adamw_update(bufs[0], g, bufs[1], bufs[2], decay, 3e-3, 0.2, 0.05, cfg)
    for got, want in zip(bufs, bufs_ref):
        np.testing.assert_allclose(got, want, **TOL[dtype])


def test_adamw_in_place_over_ranges_matches_gathered_update():
    """The fused update, applied in place to contiguous slices (K-1's top-K), equals it applied to a
    gathered copy and scattered back, bit for bit."""
    from tests.k1core.test_optim import assert_in_place_ranges_match_gathered_update
    assert_in_place_ranges_match_gathered_update(nk.adamw_update)
