import numpy as np
import pytest

from k1core.errors import UserError
from k1core.gpt import BaselineGPT, GPTConfig
from k1core.kernels import NUMPY_KERNELS
from k1core.optim import AdamWConfig

TINY = dict(context=5, d_model=8, n_layers=2, n_heads=2, vocab_size=11)


def _numeric_grad(model, x, y, eps=1e-6):
    flat, num = model.params.flat, np.zeros(model.params.size)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        up = model.loss(x, y)
        flat[i] = old - eps
        down = model.loss(x, y)
        flat[i] = old
        num[i] = (up - down) / (2 * eps)
    return num


@pytest.mark.parametrize("tie", [True, False])
def test_every_parameter_gradient_matches_finite_differences(tie):
    model = BaselineGPT(GPTConfig(**TINY, tie_weights=tie), seed=1, dtype=np.float64)
    rng = np.random.default_rng(0)
    model.params.flat[:] += rng.normal(0, 0.3, model.params.size)  # leave the init's symmetric point
    x, y = rng.integers(0, 11, (3, 5)), rng.integers(0, 11, (3, 5))
    model.loss_and_grad(x, y, train=False)
    analytic = model.params.grad.copy()
    numeric = _numeric_grad(model, x, y)
    assert ("head" in model.params) == (not tie)
    for name, (a, b) in model.params.offsets.items():
        scale = max(1e-3, np.abs(numeric[a:b]).max())
        err = np.abs(analytic[a:b] - numeric[a:b]).max() / scale
        assert err < 1e-6, f"{name}: relative error {err:.2e}"


def test_shorter_sequence_than_context_has_exact_gradient():
    model = BaselineGPT(GPTConfig(**TINY), seed=2, dtype=np.float64)
    rng = np.random.default_rng(3)
    x, y = rng.integers(0, 11, (2, 3)), rng.integers(0, 11, (2, 3))
    model.loss_and_grad(x, y, train=False)
    np.testing.assert_allclose(model.params.grad, _numeric_grad(model, x, y), atol=1e-8)


def test_generation_is_deterministic_by_seed():
    model = BaselineGPT(GPTConfig(**TINY), seed=0)
    a = model.generate([1, 2, 3], 20, temperature=1.0, top_k=5, seed=7)
    b = model.generate([1, 2, 3], 20, temperature=1.0, top_k=5, seed=7)
    c = model.generate([1, 2, 3], 20, temperature=1.0, top_k=5, seed=8)
    assert a.shape == (23,) and np.array_equal(a, b) and not np.array_equal(a, c)
    assert list(a[:3]) == [1, 2, 3] and a.max() < 11
    greedy = model.generate([4], 8, temperature=0.0, seed=1)
    assert np.array_equal(greedy, model.generate([4], 8, temperature=0.0, seed=2))


def test_top_k_one_is_greedy():
    model = BaselineGPT(GPTConfig(**TINY), seed=0)
    assert np.array_equal(model.generate([5], 10, 1.0, top_k=1, seed=3), model.generate([5], 10, 0.0))


@pytest.mark.parametrize("bad", [dict(d_model=10, n_heads=3), dict(dropout=1.0), dict(n_layers=0),
                                 dict(context=0)])
def test_config_validation(bad):
    with pytest.raises(UserError):
        GPTConfig(**{**TINY, **bad})


def test_bad_generation_arguments_are_user_errors():
    model = BaselineGPT(GPTConfig(**TINY), seed=0)
    with pytest.raises(UserError, match="temperature"):
        model.generate([1], 3, temperature=-1.0)
    with pytest.raises(UserError, match="top_k"):
        model.generate([1], 3, top_k=0)
    with pytest.raises(UserError, match="prompt"):
        model.generate([], 3)


def test_training_lowers_loss_and_state_dict_resumes_bit_identically():
    cfg = GPTConfig(**{**TINY, "dropout": 0.1})
    opt = AdamWConfig(lr=1e-2, warmup_steps=2, total_steps=20)
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 11, (4, 5)), rng.integers(0, 11, (4, 5))
    model = BaselineGPT(cfg, opt, seed=3)
    first = model.loss(x, y)
    for _ in range(5):
        model.train_step(x, y)
    saved = model.state_dict()
    for _ in range(5):
        model.train_step(x, y)
    assert model.loss(x, y) < first
    clone = BaselineGPT(cfg, opt, seed=99)
    clone.load_state_dict(saved)
    for _ in range(5):
        clone.train_step(x, y)
    np.testing.assert_array_equal(clone.params.flat, model.params.flat)


def test_flops_and_stats():
    model = BaselineGPT(GPTConfig(context=64, d_model=128, n_layers=4, n_heads=4), seed=0)
    s = model.stats()
    assert s["params"] == model.params.size == 4 * (12 * 128 * 128 + 13 * 128) + 256 * 128 + 64 * 128 + 256
    assert model.flops_per_token() == 6 * (4 * 12 * 128**2 + 128 * 256) + 12 * 4 * 64 * 128
    assert model.on_step_end(0, lambda: None) == []


def test_dropout_gradient_is_exact_for_fixed_masks():
    model = BaselineGPT(GPTConfig(**{**TINY, "n_layers": 1, "dropout": 0.3}), seed=4, dtype=np.float64)
    rng = np.random.default_rng(1)
    x, y = rng.integers(0, 11, (2, 5)), rng.integers(0, 11, (2, 5))
    masks = model.rng.bit_generator.state

    def loss_with_same_masks():
        model.rng.bit_generator.state = masks
        return model.loss_and_grad(x, y, train=True)

    loss_with_same_masks()
    analytic, flat = model.params.grad.copy(), model.params.flat
    for i in range(0, flat.size, 7):  # a spread of parameters from every tensor
        old = flat[i]
        flat[i] = old + 1e-6
        up = loss_with_same_masks()
        flat[i] = old - 1e-6
        down = loss_with_same_masks()
        flat[i] = old
        assert abs((up - down) / 2e-6 - analytic[i]) < 1e-7, i
    assert loss_with_same_masks() != model.loss(x, y)  # dropout really is active in training


def test_float32_attention_stays_float32():
    """A float64 scalar in the attention scale once promoted the whole GPT to float64 under NumPy 2."""
    from k1core.layers import attention_forward, causal_mask
    qkv = np.random.default_rng(0).normal(size=(2 * 8, 3 * 16)).astype(np.float32)
    y, (q, key, v, att) = attention_forward(qkv, 2, 4, causal_mask(8, np.float32), NUMPY_KERNELS)
    assert y.dtype == q.dtype == att.dtype == np.float32
