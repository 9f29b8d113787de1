"""A PEFT adapter as a GGUF LoRA adapter, for llama.cpp's `--lora` (the base stays a separate file).

llama.cpp's adapter format: `general.type = adapter`, `adapter.type = lora`, `adapter.lora.alpha`,
the base's architecture, and per adapted weight `<gguf name>.lora_a` (r, in) and `.lora_b`
(out, r) in numpy order, which is PEFT's own layout. llama.cpp scales by alpha / r, so an rsLoRA
adapter (alpha / sqrt(r)) is written with alpha * sqrt(r). llama's q/k rows are permuted in the
base GGUF, so B's rows are permuted the same way.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from backends.export.fused_gguf import gguf_delta
from backends.export.peft_delta import adapter_scale, read_peft_pairs
from backends.student.gguf_loader import canonical_name, open_gguf, read_config
from k1core.errors import UserError
from k1core.lazy import require


def write_lora_gguf(base_path: str | Path, adapter_dir: str | Path, out_path: str | Path) -> Path:
    """The adapter at `adapter_dir` as a llama.cpp LoRA GGUF for the model at `base_path` (atomic)."""
    gguf = require("gguf", "lora")
    reader = open_gguf(base_path)
    cfg = read_config(reader, base_path)
    gguf_names = {canonical_name(t.name): t.name for t in reader.tensors}
    pairs, config = read_peft_pairs(adapter_dir)
    rank = next(iter(pairs.values()))[0].shape[0]
    if any(a.shape[0] != rank for a, _ in pairs.values()):
        raise UserError(f"{adapter_dir}: modules have different ranks; llama.cpp needs one rank per adapter")
    alpha = adapter_scale(config, Path(adapter_dir) / "adapter_config.json") * rank  # llama.cpp divides by r
    out_path = Path(out_path)
    tmp = out_path.with_name(out_path.name + ".tmp")
    writer = gguf.GGUFWriter(str(tmp), cfg.arch)
    writer.add_string("general.type", "adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", float(alpha))
    for name, (a, b) in pairs.items():
        if name not in gguf_names:
            raise UserError(f"the adapter changes {name}, which {base_path} does not have")
        writer.add_tensor(gguf_names[name] + ".lora_a", np.ascontiguousarray(a))
        writer.add_tensor(gguf_names[name] + ".lora_b", np.ascontiguousarray(gguf_delta(b, name, cfg)))
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(tmp, out_path)
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    return out_path
