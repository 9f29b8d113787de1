import numpy as np
import pytest

jax = pytest.importorskip("jax")

from backends.student.forward_jax import hidden_states  # noqa: E402
from backends.student.forward_numpy import numpy_logits  # noqa: E402
from backends.student.hf_loader import load_hf_dir  # noqa: E402
from backends.student.layer_stack import local_flags, stack_layers  # noqa: E402
from backends.student.lora import LoraConfig, init_lora  # noqa: E402


def full_logits(cfg, layers, head, lora, tokens, flags, lora_scale):
    """Logits (B, T, V) at every position of one unpacked batch."""
    B, T = tokens.shape
    positions = jax.numpy.broadcast_to(jax.numpy.arange(T), (B, T))
    h = hidden_states(cfg, layers, head, lora, tokens, positions, jax.numpy.ones((B, T), jax.numpy.int32), flags,
                      lora_scale)
    return h @ head["out"].T


def random_lora(cfg, seed=1):
    lora = init_lora(cfg, LoraConfig(rank=4, alpha=8.0), seed)
    rng = np.random.default_rng(seed)
    return {k: (a, (0.1 * rng.standard_normal(b.shape)).astype(np.float32)) for k, (a, b) in lora.items()}


@pytest.mark.parametrize("arch", ["qwen2", "llama", "gemma3"])
def test_jax_forward_matches_numpy_with_lora(tiny_files, arch):
    model = load_hf_dir(tiny_files[arch][0], with_tokenizer=False)
    cfg = model.config
    layers, head = stack_layers(model)
    lora = random_lora(cfg)
    tokens = np.random.default_rng(0).integers(0, cfg.vocab_size, (2, 11)).astype(np.int32)
    ref = numpy_logits(cfg, layers, head, tokens, lora, 2.0)
    ours = np.asarray(full_logits(cfg, layers, head, lora, tokens, local_flags(cfg), 2.0))
    np.testing.assert_allclose(ours, ref, atol=1e-4 * np.abs(ref).max())
    assert not np.allclose(ref, numpy_logits(cfg, layers, head, tokens)), "the LoRA delta must matter"


def test_chunked_loss_on_packed_rows_equals_per_example_reference(tiny_files):
    """Packed examples must not see each other, and only answer positions count."""
    from backends.student.chat_data import Example, make_batch
    from backends.student.forward_jax import batch_nll

    model = load_hf_dir(tiny_files["gemma3"][0], with_tokenizer=False)
    cfg = model.config
    layers, head = stack_layers(model)
    lora = random_lora(cfg)
    rng = np.random.default_rng(5)
    exs = [Example(tuple(int(t) for t in rng.integers(0, cfg.vocab_size, n)), p) for n, p in ((9, 4), (7, 2), (12, 6))]
    want = 0.0
    for ex in exs:
        logits = numpy_logits(cfg, layers, head, np.array([ex.ids]), lora, 2.0)[0]
        logp = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) - logits.max(-1, keepdims=True)
        want -= sum(logp[t, ex.ids[t + 1]] for t in range(ex.n_prompt - 1, len(ex.ids) - 1))
    batch = make_batch([[exs[0], exs[1]], [exs[2]]], 16, 4)
    got = float(batch_nll(cfg, layers, head, lora, batch, local_flags(cfg), 2.0, 4))
    assert got == pytest.approx(want, rel=1e-4)


def llama_loss_setup(tiny_files):
    """The tiny llama's stacked weights, a random LoRA, one 12-token row with loss after 4, and a
    loss function of the LoRA (and of frozen_below)."""
    from backends.student.chat_data import Example, make_batch
    from backends.student.forward_jax import batch_nll

    model = load_hf_dir(tiny_files["llama"][0], with_tokenizer=False)
    cfg = model.config
    layers, head = stack_layers(model)
    batch = make_batch([[Example(tuple(range(3, 13)), 4)]], 12, 4)
    flags = local_flags(cfg)

    def loss(lo, frozen_below=0):
        return batch_nll(cfg, layers, head, lo, batch, flags, 2.0, 4, frozen_below=frozen_below)

    return cfg, layers, head, random_lora(cfg), batch, loss


def test_lora_gradient_matches_finite_differences(tiny_files):
    cfg, layers, head, lora, batch, loss = llama_loss_setup(tiny_files)
    grad = jax.grad(loss)(lora)
    for target, which, idx in (("q_proj", 0, (1, 3, 2)), ("down_proj", 1, (0, 1, 5)), ("v_proj", 1, (1, 0, 7))):
        eps = 1e-2

        def loss_at(delta):
            lo = {k: (a.copy(), b.copy()) for k, (a, b) in lora.items()}
            lo[target][which][idx] += delta
            return numpy_logits_nll(cfg, layers, head, lo, batch)

        numeric = (loss_at(eps) - loss_at(-eps)) / (2 * eps)
        assert float(grad[target][which][idx]) == pytest.approx(numeric, rel=2e-2, abs=1e-3)


def numpy_logits_nll(cfg, layers, head, lora, batch):
    """Reference NLL of a one-row batch in float64 from the NumPy forward."""
    logits = numpy_logits(cfg, layers, head, batch["tokens"], lora, 2.0)[0].astype(np.float64)
    logz = np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1)) + logits.max(-1)
    idx, tgt, w = batch["loss_index"][0], batch["targets"][0], batch["loss_weight"][0]
    return float(np.sum((logz[idx] - logits[idx, tgt]) * w))


def test_frozen_lower_layers_get_no_gradient_and_the_upper_ones_their_full_one(tiny_files):
    """frozen_below changes which layers train, never the loss or the trained layers' gradient."""
    _, _, _, lora, _, loss = llama_loss_setup(tiny_files)
    (full, every), (part, upper) = (jax.value_and_grad(loss)(lora, frozen_below) for frozen_below in (0, 1))
    assert float(part) == pytest.approx(float(full), rel=1e-6)
    for target, pair in upper.items():
        for which, g in enumerate(pair):
            assert not np.any(np.asarray(g)[:1])
            want = np.asarray(every[target][which])[1:]
            np.testing.assert_allclose(np.asarray(g)[1:], want, rtol=1e-4, atol=1e-5 * np.abs(want).max())
            assert np.any(np.asarray(every[target][which])[:1]), "the full gradient reaches layer 0"
