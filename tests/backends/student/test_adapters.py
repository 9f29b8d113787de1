import numpy as np
import pytest

from backends.student.adapters import fuse, load_adapter, save_adapter
from backends.student.base_model import BaseModel
from backends.student.forward_numpy import numpy_logits
from backends.student.hf_loader import load_hf_dir
from backends.student.layer_stack import stack_layers
from backends.student.lora import LoraConfig, init_lora
from backends.student.safetensors_io import read_safetensors, write_safetensors
from k1core.errors import UserError


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


@pytest.mark.parametrize("dtype", ["F32", "BF16"])  # as trained, and as `k1 lrl publish` writes it
def test_peft_accepts_the_adapter(tiny_files, tmp_path, dtype):
    torch = pytest.importorskip("torch")
    peft = pytest.importorskip("peft")
    transformers = pytest.importorskip("transformers")
    hf_dir = tiny_files["llama"][0]
    model = load_hf_dir(hf_dir, with_tokenizer=False)
    lcfg = LoraConfig(rank=4, alpha=8.0)
    save_adapter(tmp_path, trained_like_lora(model.config, lcfg), lcfg)
    weights = tmp_path / "adapter_model.safetensors"
    write_safetensors(weights, read_safetensors(weights), dtype=dtype)
    lora, _ = load_adapter(tmp_path, model.config.n_layers)  # the values the file holds
    net = transformers.AutoModelForCausalLM.from_pretrained(str(hf_dir), dtype=torch.float32)
    net = peft.PeftModel.from_pretrained(net, str(tmp_path))
    tokens = np.arange(9)[None] % model.config.vocab_size
    ref = net(torch.tensor(tokens)).logits.detach().numpy()
    ours = numpy_logits(model.config, *stack_layers(model), tokens, lora, lcfg.scale)
    np.testing.assert_allclose(ours, ref, atol=2e-4 * np.abs(ref).max())


def test_fuse_and_export_deltas_agree_with_rslora(tiny_files, tmp_path):
    """The trainer's fuse and the export's read_peft_deltas come from one formula, rsLoRA included."""
    from backends.student.peft_delta import read_peft_deltas

    model = load_hf_dir(tiny_files["qwen2"][0], with_tokenizer=False)
    cfg, lcfg = model.config, LoraConfig(targets=("q", "down"), rank=4, alpha=8.0, rslora=True)
    assert lcfg.scale == 8.0 / 2.0
    save_adapter(tmp_path, trained_like_lora(cfg, lcfg), lcfg)
    loaded, lcfg2 = load_adapter(tmp_path, cfg.n_layers)
    assert lcfg2 == lcfg
    fused = fuse(model, loaded, lcfg2)
    deltas = read_peft_deltas(tmp_path)
    assert len(deltas) == 2 * cfg.n_layers
    for name, delta in deltas.items():
        np.testing.assert_allclose(fused[name] - model.weights[name], delta, atol=1e-6)


@pytest.mark.parametrize("edit, message", [
    (lambda c: {**c, "use_dora": True}, "DoRA"),
    (lambda c: {**c, "fan_in_fan_out": True}, "fan_in_fan_out"),
    (lambda c: {**c, "rank_pattern": {"q_proj": 8}}, "rank_pattern"),
    (lambda c: {**c, "r": 8}, "rank 4, but adapter_config.json says r = 8"),
    (lambda c: {**c, "target_modules": ["q_proj"]}, "outside its target_modules"),
    (lambda c: {**c, "target_modules": ["q_proj", "v_proj", "down_proj", "up_proj"]}, "no tensors for"),
    (lambda c: {k: v for k, v in c.items() if k != "target_modules"}, "'target_modules' is missing"),
])
def test_load_adapter_shares_the_export_validation(tiny_files, tmp_path, edit, message):
    import orjson

    model = load_hf_dir(tiny_files["qwen2"][0], with_tokenizer=False)
    lcfg = LoraConfig(targets=("q", "v", "down"), rank=4, alpha=8.0)
    save_adapter(tmp_path, trained_like_lora(model.config, lcfg), lcfg)
    path = tmp_path / "adapter_config.json"
    path.write_bytes(orjson.dumps(edit(orjson.loads(path.read_bytes()))))
    with pytest.raises(UserError, match=message):
        load_adapter(tmp_path, model.config.n_layers)


def test_load_adapter_for_a_deeper_model_is_one_clear_error(tiny_files, tmp_path):
    model = load_hf_dir(tiny_files["qwen2"][0], with_tokenizer=False)
    lcfg = LoraConfig(targets=("q",), rank=4, alpha=8.0)
    save_adapter(tmp_path, trained_like_lora(model.config, lcfg), lcfg)
    with pytest.raises(UserError, match="no tensors for"):
        load_adapter(tmp_path, model.config.n_layers + 1)
