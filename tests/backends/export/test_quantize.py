"""llama.cpp quantization from Python: K-quants on a model wide enough for them, clear errors otherwise."""
from __future__ import annotations

import numpy as np
import pytest

from backends.export.fused_gguf import write_fused_gguf
from backends.export.quantize import quantize_gguf
from backends.student.gguf_loader import field_value, open_gguf
from k1core.errors import UserError
from tests.backends.export.peft_fixtures import llamacpp_logits, tiny_gguf

TOKENS = [5, 17, 42, 99, 3, 250]


def test_quantized_files_load_keep_metadata_and_order_by_precision(tmp_path):
    base, _, _ = tiny_gguf(tmp_path, "qwen2", wide=True)
    f16 = tmp_path / "f16.gguf"
    write_fused_gguf(base, {}, f16, "f16")
    exact = llamacpp_logits(f16, TOKENS)
    errors = {}
    for quant, file_type, matrix_types in [("q8_0", 7, {"Q8_0"}), ("q5_k_m", 17, {"Q5_K", "Q6_K"}),
                                           ("q4_k_m", 15, {"Q4_K", "Q6_K"})]:
        out = quantize_gguf(f16, tmp_path / f"{quant}.gguf", quant)
        reader = open_gguf(out)
        assert field_value(reader, "general.file_type") == file_type
        assert field_value(reader, "tokenizer.chat_template") == field_value(open_gguf(base), "tokenizer.chat_template")
        assert {t.tensor_type.name for t in reader.tensors if t.name.startswith("blk.0.ffn_") and len(t.shape) == 2} <= matrix_types
        approx = llamacpp_logits(out, TOKENS)
        errors[quant] = np.linalg.norm(approx - exact) / np.linalg.norm(exact)
    # A random model amplifies rounding (no trained structure), so we check order, not a tight bound.
    assert errors["q8_0"] < 0.1 and errors["q8_0"] < errors["q5_k_m"] < errors["q4_k_m"] < 0.6, errors


def test_protected_quant_keeps_lora_targets_at_q8_0_and_the_embedding_4_bit(tmp_path):
    base, _, _ = tiny_gguf(tmp_path, "qwen2", wide=True)
    f16 = tmp_path / "f16.gguf"
    write_fused_gguf(base, {}, f16, "f16")
    reader = open_gguf(quantize_gguf(f16, tmp_path / "p.gguf", "q4_k_m_lora_q8"))
    types = {t.name: t.tensor_type.name for t in reader.tensors if len(t.shape) == 2}
    projections = [n for n in types if any(p in n for p in ("attn_q.", "attn_k.", "attn_v.", "attn_output.", "ffn_"))]
    assert len(projections) == 14 and {types[n] for n in projections} == {"Q8_0"}
    assert types["token_embd.weight"] in {"Q4_K", "Q6_K"}


def test_unknown_quant_and_corrupt_input_are_clear_errors(tmp_path):
    with pytest.raises(UserError, match="unknown quantization 'q3_x'"):
        quantize_gguf(tmp_path / "a.gguf", tmp_path / "b.gguf", "q3_x")
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF\x03\x00\x00\x00\x05")
    with pytest.raises(UserError, match="bad.gguf"):
        quantize_gguf(bad, tmp_path / "b.gguf", "q4_k_m")
    assert not (tmp_path / "b.gguf").exists() and not (tmp_path / "b.gguf.tmp").exists()
