"""Fusing a PEFT adapter into a GGUF: zero adapter is the identity, a real one matches the NumPy fused forward."""
from __future__ import annotations

import numpy as np
import pytest

from backends.export.fused_gguf import write_fused_gguf
from backends.export.quantize import quantize_gguf
from backends.student.architectures import StudentConfig
from backends.student.base_model import BaseModel
from backends.student.forward_numpy import numpy_logits
from backends.student.gguf_loader import field_value, open_gguf
from backends.student.layer_stack import stack_layers
from backends.student.peft_delta import read_peft_deltas
from k1core.errors import UserError
from tests.backends.export.peft_fixtures import llamacpp_logits, tiny_gguf, write_peft_adapter

TOKENS = [5, 17, 42, 99, 3, 250, 8, 61]


def reference_logits(cfg: StudentConfig, weights: dict) -> np.ndarray:
    layers, head = stack_layers(BaseModel(cfg, weights))
    return numpy_logits(cfg, layers, head, np.array([TOKENS]))[0]


@pytest.mark.parametrize("arch", ["qwen2", "llama"])
def test_zero_adapter_export_is_the_base_model(tmp_path, arch):
    base, cfg, _ = tiny_gguf(tmp_path, arch)
    write_peft_adapter(tmp_path / "adapter", cfg, std=0.0)
    out = tmp_path / "fused.gguf"
    summary = write_fused_gguf(base, read_peft_deltas(tmp_path / "adapter"), out, "f32")
    assert summary.n_fused == 7 * cfg.n_layers and summary.max_abs_delta == 0.0
    a, b = open_gguf(base), open_gguf(out)
    assert [t.name for t in a.tensors] == [t.name for t in b.tensors]
    for ta, tb in zip(a.tensors, b.tensors):
        assert np.array_equal(np.asarray(ta.data), np.asarray(tb.data)), ta.name
    for key in ("tokenizer.chat_template", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.bos_token_id",
                "tokenizer.ggml.add_bos_token", "tokenizer.ggml.tokens", "tokenizer.ggml.merges"):
        assert field_value(a, key) == field_value(b, key), key
    np.testing.assert_array_equal(llamacpp_logits(base, TOKENS), llamacpp_logits(out, TOKENS))


@pytest.mark.parametrize("arch", ["qwen2", "llama"])
def test_nonzero_adapter_matches_numpy_fused_forward(tmp_path, arch):
    base, cfg, weights = tiny_gguf(tmp_path, arch)
    pairs = write_peft_adapter(tmp_path / "adapter", cfg, rank=4, alpha=8.0)
    fused = dict(weights)
    for name, (a, b) in pairs.items():
        fused[name] = weights[name] + 2.0 * b @ a  # alpha / r = 2
    expected = reference_logits(cfg, fused)
    assert np.abs(expected - reference_logits(cfg, weights)).max() > 0.1  # the adapter matters
    out = tmp_path / "fused.gguf"
    write_fused_gguf(base, read_peft_deltas(tmp_path / "adapter"), out, "f32")
    np.testing.assert_allclose(llamacpp_logits(out, TOKENS), expected, atol=1e-2)  # llama.cpp keeps its KV cache in f16
    write_fused_gguf(base, read_peft_deltas(tmp_path / "adapter"), tmp_path / "f16.gguf", "f16")
    np.testing.assert_allclose(llamacpp_logits(tmp_path / "f16.gguf", TOKENS), expected, atol=5e-2)


def test_q8_0_written_by_gguf_package_equals_llamacpp_q8_0(tmp_path):
    base, cfg, _ = tiny_gguf(tmp_path, "qwen2")
    write_peft_adapter(tmp_path / "adapter", cfg)
    deltas = read_peft_deltas(tmp_path / "adapter")
    write_fused_gguf(base, deltas, tmp_path / "q8.gguf", "q8_0")
    types = {t.name: t.tensor_type.name for t in open_gguf(tmp_path / "q8.gguf").tensors}
    assert types["blk.0.attn_q.weight"] == "Q8_0"
    assert types["blk.0.ffn_down.weight"] == "F16"  # rows of 48 are not whole Q8_0 blocks
    assert types["blk.0.attn_norm.weight"] == "F32"
    write_fused_gguf(base, deltas, tmp_path / "f32.gguf", "f32")
    quantize_gguf(tmp_path / "f32.gguf", tmp_path / "llama-q8.gguf", "q8_0")
    np.testing.assert_array_equal(llamacpp_logits(tmp_path / "q8.gguf", TOKENS),
                                  llamacpp_logits(tmp_path / "llama-q8.gguf", TOKENS))


def test_adapter_for_another_model_is_refused(tmp_path):
    base, cfg, _ = tiny_gguf(tmp_path, "qwen2")
    other = StudentConfig(**{**cfg.__dict__, "n_layers": cfg.n_layers + 1})
    write_peft_adapter(tmp_path / "adapter", other)
    with pytest.raises(UserError, match="does not have"):
        write_fused_gguf(base, read_peft_deltas(tmp_path / "adapter"), tmp_path / "x.gguf")
    assert not (tmp_path / "x.gguf").exists()


@pytest.mark.parametrize("mutate, message", [
    (lambda d: (d / "adapter_config.json").unlink(), "no such file"),
    (lambda d: (d / "adapter_config.json").write_text("{not json"), "not valid JSON"),
    (lambda d: (d / "adapter_config.json").write_text('{"peft_type": "LORA", "r": 4, "lora_alpha": 8, "use_dora": true}'), "DoRA"),
    (lambda d: (d / "adapter_config.json").write_text('{"peft_type": "LORA", "lora_alpha": 8}'), "'r' is missing"),
    (lambda d: (d / "adapter_model.safetensors").write_bytes(b"\x01\x02"), "truncated"),
    (lambda d: (d / "adapter_model.safetensors").unlink(), "no such file"),
])
def test_corrupt_adapter_is_one_clear_error(tmp_path, mutate, message):
    _, cfg, _ = tiny_gguf(tmp_path, "qwen2")
    write_peft_adapter(tmp_path / "adapter", cfg)
    mutate(tmp_path / "adapter")
    with pytest.raises(UserError, match=message):
        read_peft_deltas(tmp_path / "adapter")


def test_corrupt_base_is_one_clear_error(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\xff" * 20)
    with pytest.raises(UserError, match="bad.gguf"):
        write_fused_gguf(bad, {}, tmp_path / "out.gguf")
