import numpy as np
import pytest

from backends.student.adapters import fuse, load_adapter, save_adapter
from backends.student.base_model import BaseModel
from backends.student.forward_numpy import numpy_logits
from backends.student.hf_loader import load_hf_dir
from backends.student.layer_stack import stack_layers
from backends.student.lora import LoraConfig, init_lora


def trained_like_lora(cfg, lcfg):
    lora = init_lora(cfg, lcfg, 3)
    rng = np.random.default_rng(3)
    return {k: (a, (0.1 * rng.standard_normal(b.shape)).astype(np.float32)) for k, (a, b) in lora.items()}


@pytest.mark.parametrize("arch", ["qwen2", "gemma3"])
def test_adapter_round_trip_and_fuse_reproduce_outputs(tiny_files, tmp_path, arch):
    model = load_hf_dir(tiny_files[arch][0], with_tokenizer=False)
    cfg, lcfg = model.config, LoraConfig(targets=("q", "v", "down"), rank=4, alpha=8.0)
    lora = trained_like_lora(cfg, lcfg)
    save_adapter(tmp_path, lora, lcfg)
    loaded, lcfg2 = load_adapter(tmp_path, cfg.n_layers)
    assert lcfg2 == lcfg
    tokens = np.arange(9)[None] % cfg.vocab_size
    want = numpy_logits(cfg, *stack_layers(model), tokens, lora, lcfg.scale)
    got = numpy_logits(cfg, *stack_layers(model), tokens, loaded, lcfg2.scale)
    np.testing.assert_array_equal(got, want)
    fused = BaseModel(cfg, fuse(model, loaded, lcfg2))
    np.testing.assert_allclose(numpy_logits(cfg, *stack_layers(fused), tokens), want, atol=1e-4 * np.abs(want).max())


def test_peft_accepts_the_adapter(tiny_files, tmp_path):
    torch = pytest.importorskip("torch")
    peft = pytest.importorskip("peft")
    transformers = pytest.importorskip("transformers")
    hf_dir = tiny_files["llama"][0]
    model = load_hf_dir(hf_dir, with_tokenizer=False)
    lcfg = LoraConfig(rank=4, alpha=8.0)
    lora = trained_like_lora(model.config, lcfg)
    save_adapter(tmp_path, lora, lcfg)
    net = transformers.AutoModelForCausalLM.from_pretrained(str(hf_dir), dtype=torch.float32)
    net = peft.PeftModel.from_pretrained(net, str(tmp_path))
    tokens = np.arange(9)[None] % model.config.vocab_size
    ref = net(torch.tensor(tokens)).logits.detach().numpy()
    ours = numpy_logits(model.config, *stack_layers(model), tokens, lora, lcfg.scale)
    np.testing.assert_allclose(ours, ref, atol=2e-4 * np.abs(ref).max())
