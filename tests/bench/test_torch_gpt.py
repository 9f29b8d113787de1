"""The PyTorch benchmark reference computes the same GPT as the NumPy model."""
import numpy as np
import pytest

pytest.importorskip("torch", reason="torch not installed (bench-time optional dependency)")

from bench.torch_gpt import TorchGPT  # noqa: E402
from k1core.gpt import BaselineGPT, GPTConfig  # noqa: E402
from k1core.optim import AdamWConfig  # noqa: E402


@pytest.mark.parametrize("compiled", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["eager", "compiled"])
def test_torch_reference_matches_numpy_loss_gradients_and_steps(compiled):
    cfg = GPTConfig(context=16, d_model=32, n_layers=2, n_heads=2)
    optim = AdamWConfig(lr=1e-2, warmup_steps=1, grad_clip=0.5)
    ref, torch_model = BaselineGPT(cfg, optim), TorchGPT(cfg, optim, compiled=compiled)
    torch_model.load_numpy_state(ref.params.state_dict())
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (3, 16)), rng.integers(0, 256, (3, 16))
    assert torch_model.loss_and_grad(x, y) == pytest.approx(ref.loss_and_grad(x, y), abs=2e-5)
    for name, g in ref.params.g.items():
        assert np.abs(torch_model.p[name].grad.numpy() - g).max() <= 1e-4 * np.abs(g).max(), name
    for _ in range(2):
        assert torch_model.train_step(x, y) == pytest.approx(ref.train_step(x, y), abs=1e-4)
    for name, value in ref.params.p.items():
        assert np.abs(torch_model.p[name].detach().numpy() - value).max() <= 2e-3 * optim.lr * 2, name
    prompt = np.arange(5)
    assert np.array_equal(torch_model.generate(prompt, 20), ref.generate(prompt, 20, temperature=0.0))
