import numpy as np
import pytest

jax = pytest.importorskip("jax")

from backends.student.forward_jax import full_logits  # noqa: E402
from backends.student.forward_numpy import numpy_logits  # noqa: E402
from backends.student.hf_loader import load_hf_dir  # noqa: E402
from backends.student.layer_stack import local_flags, stack_layers  # noqa: E402
from backends.student.lora import LoraConfig, init_lora  # noqa: E402


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
