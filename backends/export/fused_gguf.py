"""Write a base GGUF with LoRA deltas merged into its weights, as F32, F16 or Q8_0, metadata intact.

Everything that makes the file self-contained in llama.cpp (architecture hyperparameters,
tokenizer vocab/merges/types, BOS/EOS/padding ids, add_bos, the chat template, names) is copied
key by key from the base file; only `general.file_type` changes. Matrices are dequantized to
float32, the delta added in GGUF row order (llama's q/k rows are permuted by llama.cpp's converter,
so the delta is permuted the same way), then stored in the output type; 1-D tensors (norms,
biases) stay F32 as llama.cpp's converter keeps them. Tensors are streamed one at a time, so a
0.5B model never needs more than one float32 matrix in memory beyond the reader's memory map.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backends.export.atomic_gguf import atomic_gguf_writer
from backends.student.gguf_loader import canonical_name, dequantized, open_gguf, permute_rope_rows, read_config
from k1core.errors import UserError
from k1core.lazy import require

WRITE_TYPES = ("f32", "f16", "q8_0")
Q8_BLOCK = 32  # Q8_0 quantizes rows in blocks of 32 values


@dataclass(frozen=True)
class FuseSummary:
    """What the fused write did: how many matrices got a delta and the largest change made."""

    path: str
    out_type: str
    n_tensors: int
    n_fused: int
    max_abs_delta: float


def copy_metadata(reader, writer, out_type: str) -> None:
    """Every key/value of the base file except the reader-internal GGUF.* ones and the file type."""
    gguf = require("gguf", "lora")
    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name in ("general.architecture", "general.file_type"):
            continue
        vtype = gguf.GGUFValueType(field.types[0])
        sub_type = gguf.GGUFValueType(field.types[-1]) if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), vtype, sub_type=sub_type)
    file_type = {"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16,
                 "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}[out_type]
    writer.add_file_type(int(file_type))


def storage_type(shape: tuple, out_type: str):
    """The GGML type one tensor is stored as: vectors F32, matrices the requested type when it fits."""
    gguf = require("gguf", "lora")
    q = gguf.GGMLQuantizationType
    if len(shape) < 2 or out_type == "f32":
        return q.F32
    if out_type == "q8_0" and shape[-1] % Q8_BLOCK == 0:
        return q.Q8_0
    return q.F16  # f16, or a q8_0 row length that Q8_0 blocks do not divide


def encode(values: np.ndarray, qtype) -> np.ndarray:
    """Float32 values in the storage type's on-disk numpy form."""
    gguf = require("gguf", "lora")
    q = gguf.GGMLQuantizationType
    if qtype == q.F32:
        return np.ascontiguousarray(values, dtype=np.float32)
    if qtype == q.F16:
        return np.ascontiguousarray(values, dtype=np.float16)
    return gguf.quants.quantize(np.ascontiguousarray(values, dtype=np.float32), qtype)


def gguf_delta(delta: np.ndarray, name: str, cfg) -> np.ndarray:
    """A canonical (HF-order) delta in the GGUF file's row order (llama q/k rows are permuted)."""
    if cfg.arch == "llama" and (".q_proj." in name or ".k_proj." in name):
        return permute_rope_rows(delta, cfg.n_heads if ".q_proj." in name else cfg.n_kv_heads)
    return delta


def write_fused_gguf(base_path: str | Path, deltas: dict[str, np.ndarray], out_path: str | Path,
                     out_type: str = "f16") -> FuseSummary:
    """Base GGUF + deltas {canonical name: (out, in)} -> a self-contained GGUF of `out_type` (atomic)."""
    if out_type not in WRITE_TYPES:
        raise UserError(f"cannot write GGUF type {out_type!r}; choose one of {', '.join(WRITE_TYPES)}")
    gguf = require("gguf", "lora")
    reader = open_gguf(base_path)
    cfg = read_config(reader, base_path)
    by_canonical = {canonical_name(t.name): t for t in reader.tensors}
    for name, delta in deltas.items():
        tensor = by_canonical.get(name)
        if tensor is None:
            raise UserError(f"the adapter changes {name}, which {base_path} does not have "
                            f"(is the adapter for a different model?)")
        shape = tuple(int(n) for n in reversed(tensor.shape))
        if delta.shape != shape:
            raise UserError(f"the adapter's delta for {name} has shape {delta.shape}, but {base_path} "
                            f"stores it as {shape} (is the adapter for a different model?)")
    n_fused, max_delta = 0, 0.0
    with atomic_gguf_writer(out_path, cfg.arch) as writer:
        copy_metadata(reader, writer, out_type)
        plan = []
        for tensor in reader.tensors:
            shape = tuple(int(n) for n in reversed(tensor.shape))  # numpy order: (out, in)
            qtype = storage_type(shape, out_type)
            block, block_bytes = gguf.GGML_QUANT_SIZES[qtype]
            nbytes = int(np.prod(shape)) // block * block_bytes
            # Shapes in numpy order; with raw_dtype given, the writer records them as the element shape.
            writer.add_tensor_info(tensor.name, shape, np.dtype(np.float32), nbytes, raw_dtype=qtype)
            plan.append((tensor, shape, qtype))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for tensor, shape, qtype in plan:
            values = dequantized(tensor, base_path)
            name = canonical_name(tensor.name)
            if name in deltas:
                delta = gguf_delta(deltas[name], name, cfg)
                values = values + delta
                n_fused += 1
                max_delta = max(max_delta, float(np.abs(delta).max()))
            writer.write_tensor_data(encode(values, qtype))
    return FuseSummary(str(out_path), out_type, len(plan), n_fused, max_delta)
