import dataclasses

import numpy as np

from k1core import kernels as K
from k1core.gpt import BaselineGPT, GPTConfig


def test_a_swapped_kernel_set_is_what_the_model_calls():
    calls = []

    def counting_gelu(u):
        calls.append(u.shape)
        return K.gelu_forward(u)

    swapped = dataclasses.replace(K.NUMPY_KERNELS, name="counting", gelu_forward=counting_gelu)
    cfg = GPTConfig(context=4, d_model=8, n_layers=2, n_heads=2)
    ref, other = BaselineGPT(cfg, seed=0), BaselineGPT(cfg, seed=0, kernels=swapped)
    x = np.array([[1, 2, 3, 4]])
    assert ref.loss(x, x) == other.loss(x, x)
    assert calls == [(4, 32), (4, 32)]


def test_embedding_backward_matches_add_at():
    rng = np.random.default_rng(0)
    ids, dout = rng.integers(0, 7, 50), rng.normal(size=(50, 3))
    expect = np.zeros((7, 3))
    np.add.at(expect, ids, dout)
    got = np.zeros((7, 3))
    K.embedding_backward(got, ids, dout)
    np.testing.assert_allclose(got, expect, atol=1e-12)


def test_layernorm_output_is_normalised_and_xent_matches_direct_formula():
    rng = np.random.default_rng(1)
    x = rng.normal(3.0, 5.0, (6, 16))
    y, _ = K.layernorm_forward(x, np.ones(16), np.zeros(16))
    np.testing.assert_allclose(y.mean(-1), 0, atol=1e-12)
    np.testing.assert_allclose(y.std(-1), 1, atol=1e-4)
    logits, targets = rng.normal(size=(6, 5)), rng.integers(0, 5, 6)
    direct = np.mean(np.log(np.exp(logits).sum(-1)) - logits[np.arange(6), targets])
    loss, dlogits = K.softmax_xent_forward_backward(logits.copy(), targets)
    assert abs(loss - direct) < 1e-12 and np.allclose(dlogits.sum(-1), 0)
