"""Gemma 3 through the whole export: fused weights match the NumPy forward in llama.cpp, the quantized
files load with their metadata, and the llama.cpp `--lora` adapter equals the fused model.

The tiny model has six layers so llama.cpp's fixed Gemma 3 pattern (every sixth layer global, the
others sliding-window) gives both kinds of layer, and the prompt is longer than the window, so a
wrong window or a wrong local RoPE base would show in the logits.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from backends.export.fused_gguf import write_fused_gguf
from backends.student.base_model import BaseModel
from backends.student.forward_numpy import numpy_logits
from backends.student.gguf_loader import field_value, open_gguf, read_config
from backends.student.layer_stack import stack_layers
from backends.student.peft_delta import read_peft_deltas
from lrl.export_job import ExportConfig, export_student
from tests.backends.export.peft_fixtures import llamacpp_logits, tiny_gguf, write_peft_adapter

TOKENS = [5, 17, 42, 99, 3, 250, 8, 61, 120, 33, 7, 201]
METADATA = ("tokenizer.chat_template", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.bos_token_id",
            "tokenizer.ggml.add_bos_token", "tokenizer.ggml.tokens", "gemma3.attention.sliding_window")


def tiny_gemma3(tmp_path, wide: bool = False):
    """A six-layer random Gemma 3 GGUF whose config is what its own metadata says (pattern 6)."""
    path, cfg, weights = tiny_gguf(tmp_path, "gemma3", wide=wide, n_layers=6, sliding_pattern=6)
    assert read_config(open_gguf(path), path) == dataclasses.replace(cfg, norm_eps=float(np.float32(cfg.norm_eps)))
    assert [cfg.is_local_layer(i) for i in range(6)] == [True] * 5 + [False]
    return path, cfg, weights


def reference_logits(cfg, weights: dict) -> np.ndarray:
    layers, head = stack_layers(BaseModel(cfg, weights))
    return numpy_logits(cfg, layers, head, np.array([TOKENS]))[0]


def fused_weights(weights: dict, pairs: dict, scale: float) -> dict:
    fused = dict(weights)
    for name, (a, b) in pairs.items():
        fused[name] = weights[name] + scale * b @ a
    return fused


def test_gemma3_fused_export_matches_numpy_forward_in_llamacpp(tmp_path):
    base, cfg, weights = tiny_gemma3(tmp_path)
    pairs = write_peft_adapter(tmp_path / "adapter", cfg, rank=4, alpha=8.0)
    expected = reference_logits(cfg, fused_weights(weights, pairs, 2.0))  # alpha / r = 2
    assert np.abs(expected - reference_logits(cfg, weights)).max() > 1.0  # the adapter matters
    global_only = dataclasses.replace(cfg, sliding_window=0)
    assert np.abs(expected - reference_logits(global_only, fused_weights(weights, pairs, 2.0))).max() > 1.0  # so does the window
    # llama.cpp keeps its KV cache in f16: about 0.01 off here, against effects of 3-5 from the adapter and the window.
    np.testing.assert_allclose(llamacpp_logits(base, TOKENS), reference_logits(cfg, weights), atol=3e-2)
    deltas = read_peft_deltas(tmp_path / "adapter")
    write_fused_gguf(base, deltas, tmp_path / "f32.gguf", "f32")
    np.testing.assert_allclose(llamacpp_logits(tmp_path / "f32.gguf", TOKENS), expected, atol=3e-2)
    write_fused_gguf(base, deltas, tmp_path / "f16.gguf", "f16")
    np.testing.assert_allclose(llamacpp_logits(tmp_path / "f16.gguf", TOKENS), expected, atol=5e-2)


def test_gemma3_export_quantizes_keeps_metadata_and_its_lora_gguf_equals_the_fused_model(tmp_path):
    base, cfg, _ = tiny_gemma3(tmp_path, wide=True)
    write_peft_adapter(tmp_path / "adapter", cfg, rank=4, alpha=8.0, std=0.05)
    out = tmp_path / "out" / "student.gguf"
    report = export_student(base, tmp_path / "adapter", out, ExportConfig(quant="q4_k_m", run_gate=False))
    assert set(report["files"]) == {"f16", "q8_0", "q4_k_m", "adapter"} and report["deployed"] == "adapter"
    source = open_gguf(base)
    exact = llamacpp_logits(out.with_name("student.f16.gguf"), TOKENS)
    errors = {}
    for quant, file_type, path in (("q8_0", 7, out.with_name("student.q8_0.gguf")), ("q4_k_m", 15, out)):
        reader = open_gguf(path)
        assert field_value(reader, "general.architecture") == "gemma3"
        assert field_value(reader, "general.file_type") == file_type
        for key in METADATA:
            assert field_value(reader, key) == field_value(source, key), (quant, key)
        errors[quant] = np.linalg.norm(llamacpp_logits(path, TOKENS) - exact) / np.linalg.norm(exact)
    types = {t.name: t.tensor_type.name for t in open_gguf(out).tensors}
    assert types["blk.0.ffn_gate.weight"] in ("Q4_K", "Q6_K") and types["blk.0.attn_q_norm.weight"] == "F32"
    assert errors["q8_0"] < 0.1 and errors["q8_0"] < errors["q4_k_m"] < 0.6, errors  # random weights amplify rounding
    lora = out.with_name("student.lora.gguf")
    write_fused_gguf(base, read_peft_deltas(tmp_path / "adapter"), tmp_path / "f32.gguf", "f32")
    np.testing.assert_allclose(llamacpp_logits(base, TOKENS, lora=lora), llamacpp_logits(tmp_path / "f32.gguf", TOKENS),
                               atol=1e-2)


@pytest.mark.slow
def test_real_gemma_270m_exports_loads_and_generates(tmp_path):
    from backends.llamacpp_backend import LlamaCppLLM
    from backends.llm import SamplingParams
    from tests.conftest import shipped_model

    base = shipped_model("gemma270m")
    source = open_gguf(base)
    cfg = read_config(source, base)
    write_peft_adapter(tmp_path / "adapter", cfg, rank=4, std=0.002, targets=("q_proj", "v_proj"))
    out = tmp_path / "student.gguf"
    report = export_student(base, tmp_path / "adapter", out, ExportConfig(quant="q4_k_m", run_gate=False, n_threads=2))
    assert set(report["files"]) == {"f16", "q8_0", "q4_k_m", "adapter"} and report["deployed"] == "adapter"
    prompt = [{"role": "user", "content": "The capital of France is"}]
    greedy = SamplingParams(temperature=0.0, max_tokens=8)
    expected = LlamaCppLLM(base, n_ctx=256, n_threads=2).complete(prompt, greedy)
    for path in (out.with_name("student.f16.gguf"), out.with_name("student.q8_0.gguf"), out):
        reader = open_gguf(path)
        for key in ("tokenizer.chat_template", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.bos_token_id",
                    "tokenizer.ggml.add_bos_token", "tokenizer.ggml.model", "gemma3.attention.sliding_window"):
            assert field_value(reader, key) == field_value(source, key), (path.name, key)
        llm = LlamaCppLLM(path, n_ctx=256, n_threads=2)
        tokens = llm.prompt_tokens(prompt)
        assert tokens[0] == llm.llama.token_bos() and tokens.count(tokens[0]) == 1  # BOS kept, added once
        done = llm.complete(prompt, greedy)
        llm.llama.close()
        assert done.output_tokens == 8 and done.text.strip(), (path.name, done.text)
        if path.name != "student.gguf":  # F16/Q8_0 of a 0.002-scale adapter continue like the Q4_K_M base
            assert done.text.split()[:1] == expected.text.split()[:1], (path.name, done.text, expected.text)
