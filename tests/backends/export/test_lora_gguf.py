"""The adapter as a llama.cpp `--lora` GGUF: base + adapter in llama.cpp equals the fused export."""
from __future__ import annotations

import numpy as np
import pytest

from backends.export.fused_gguf import write_fused_gguf
from backends.export.lora_gguf import write_lora_gguf
from backends.student.architectures import StudentConfig
from backends.student.peft_delta import read_peft_deltas
from k1core.errors import UserError
from tests.backends.export.peft_fixtures import llamacpp_logits, tiny_gguf, write_peft_adapter

TOKENS = [5, 17, 42, 99, 3, 250, 8, 61]


@pytest.mark.parametrize("arch", ["qwen2", "llama"])
def test_base_plus_lora_gguf_equals_fused_export(tmp_path, arch):
    base, cfg, _ = tiny_gguf(tmp_path, arch)
    write_peft_adapter(tmp_path / "adapter", cfg, rank=4, alpha=8.0)
    lora = write_lora_gguf(base, tmp_path / "adapter", tmp_path / "adapter.gguf")
    write_fused_gguf(base, read_peft_deltas(tmp_path / "adapter"), tmp_path / "fused.gguf", "f32")
    fused = llamacpp_logits(tmp_path / "fused.gguf", TOKENS)
    assert np.abs(fused - llamacpp_logits(base, TOKENS)).max() > 0.1  # the adapter matters
    np.testing.assert_allclose(llamacpp_logits(base, TOKENS, lora=lora), fused, atol=1e-2)


def test_failed_lora_write_leaves_no_file(tmp_path):
    """An adapter naming a weight the base lacks fails inside the writer: no output, no temp file."""
    base, cfg, _ = tiny_gguf(tmp_path, "qwen2")
    deeper = StudentConfig(**{**cfg.__dict__, "n_layers": cfg.n_layers + 1})
    write_peft_adapter(tmp_path / "adapter", deeper)
    with pytest.raises(UserError, match="does not have"):
        write_lora_gguf(base, tmp_path / "adapter", tmp_path / "a.gguf")
    assert not (tmp_path / "a.gguf").exists() and not (tmp_path / "a.gguf.tmp").exists()
