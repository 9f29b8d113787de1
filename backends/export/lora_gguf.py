"""A PEFT adapter as a GGUF LoRA adapter, for llama.cpp's `--lora` (the base stays a separate file).

llama.cpp's adapter format: `general.type = adapter`, `adapter.type = lora`, `adapter.lora.alpha`,
the base's architecture, and per adapted weight `<gguf name>.lora_a` (r, in) and `.lora_b`
(out, r) in numpy order, which is PEFT's own layout. llama.cpp scales by alpha / r, so an rsLoRA
adapter (alpha / sqrt(r)) is written with alpha * sqrt(r). llama's q/k rows are permuted in the
base GGUF, so B's rows are permuted the same way.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from backends.export.atomic_gguf import atomic_gguf_writer
from backends.export.fused_gguf import gguf_delta
from backends.student.gguf_loader import canonical_name, open_gguf, read_config
from backends.student.peft_delta import adapter_scale, read_peft_pairs
from k1core.errors import UserError


def write_lora_gguf(base_path: str | Path, adapter_dir: str | Path, out_path: str | Path) -> Path:
    """The adapter at `adapter_dir` as a llama.cpp LoRA GGUF for the model at `base_path` (atomic)."""
    reader = open_gguf(base_path)
    cfg = read_config(reader, base_path)
    gguf_names = {canonical_name(t.name): t.name for t in reader.tensors}
    pairs, config = read_peft_pairs(adapter_dir)
    rank = int(config["r"])  # every module's rank, as read_peft_pairs checks
    alpha = adapter_scale(config, Path(adapter_dir) / "adapter_config.json") * rank  # llama.cpp divides by r
    with atomic_gguf_writer(out_path, cfg.arch) as writer:
        writer.add_string("general.type", "adapter")
        writer.add_string("adapter.type", "lora")
        writer.add_float32("adapter.lora.alpha", float(alpha))
        for name, (a, b) in pairs.items():
            if name not in gguf_names:
                raise UserError(f"the adapter changes {name}, which {base_path} does not have")
            writer.add_tensor(gguf_names[name] + ".lora_a", np.ascontiguousarray(a))
            writer.add_tensor(gguf_names[name] + ".lora_b", np.ascontiguousarray(gguf_delta(b, name, cfg)))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    return Path(out_path)
