"""Read a base model from a GGUF file: config from metadata, weights dequantized to float32.

llama.cpp's converter permutes the rows of q/k for the llama architecture (it uses interleaved
RoPE there) but not for qwen2 or gemma3 (rotate-half RoPE); we undo that permutation so every
architecture lands in the Hugging Face layout the one forward pass expects.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from backends.student.architectures import SUPPORTED_ARCHITECTURES, StudentConfig, arch_switches, projection_name
from backends.student.base_model import (
    EMBED, FINAL_NORM, LM_HEAD, BaseModel, check_weights, layer_bias, layer_weight,
)
from k1core.errors import UserError
from k1core.lazy import require

# GGUF per-block tensor stem -> canonical part (projection or norm) name.
_BLOCK_TENSORS = {
    "attn_q": "q_proj", "attn_k": "k_proj", "attn_v": "v_proj", "attn_output": "o_proj",
    "ffn_gate": "gate_proj", "ffn_up": "up_proj", "ffn_down": "down_proj",
    "attn_norm": "attn_norm", "ffn_norm": "mlp_norm",
    "post_attention_norm": "post_attn_norm", "post_ffw_norm": "post_mlp_norm",
    "attn_q_norm": "self_attn.q_norm", "attn_k_norm": "self_attn.k_norm",
}
_GLOBAL_TENSORS = {"token_embd.weight": EMBED, "output_norm.weight": FINAL_NORM, "output.weight": LM_HEAD}


def open_gguf(path: str | Path):
    """GGUFReader over `path`, or a UserError naming the file when it is not a readable GGUF."""
    gguf = require("gguf", "lora")
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such model file")
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic != b"GGUF":
        raise UserError(f"{path}: not a GGUF file (magic {magic!r}, expected b'GGUF')")
    try:
        return gguf.GGUFReader(str(path))
    except Exception as err:  # the reader fails in many ways on a truncated file
        raise UserError(f"{path}: corrupt or truncated GGUF file ({type(err).__name__}: {err})") from None


def field_value(reader, key: str, default=None):
    """Scalar, string or list value of a metadata key, `default` when absent."""
    f = reader.get_field(key)
    if f is None:
        return default
    return f.contents()


def read_config(reader, path) -> StudentConfig:
    """StudentConfig from GGUF metadata; a missing key or unknown arch is a UserError naming the file."""
    arch = field_value(reader, "general.architecture")
    if arch not in SUPPORTED_ARCHITECTURES:
        raise UserError(f"{path}: unsupported architecture {arch!r}; supported: {', '.join(SUPPORTED_ARCHITECTURES)}")

    def need(key):
        value = field_value(reader, f"{arch}.{key}")
        if value is None:
            raise UserError(f"{path}: metadata key {arch}.{key} is missing")
        return value

    scaling = field_value(reader, f"{arch}.rope.scaling.type", "none")
    if scaling not in ("none", None):
        raise UserError(f"{path}: RoPE scaling {scaling!r} is not supported")
    dim, n_heads = int(need("embedding_length")), int(need("attention.head_count"))
    names = {t.name for t in reader.tensors}
    embd = next((t for t in reader.tensors if t.name == "token_embd.weight"), None)
    if embd is None:
        raise UserError(f"{path}: tensor token_embd.weight is missing")
    switches = arch_switches(arch, dim)
    if arch == "gemma3":
        switches["sliding_window"] = int(field_value(reader, "gemma3.attention.sliding_window", 0))
    return StudentConfig(
        arch=arch, vocab_size=int(embd.shape[1]), dim=dim, n_layers=int(need("block_count")),
        n_heads=n_heads, n_kv_heads=int(field_value(reader, f"{arch}.attention.head_count_kv", n_heads)),
        head_dim=int(field_value(reader, f"{arch}.attention.key_length", dim // n_heads)),
        ffn_dim=int(need("feed_forward_length")),
        norm_eps=float(need("attention.layer_norm_rms_epsilon")),
        rope_theta=float(field_value(reader, f"{arch}.rope.freq_base", 10000.0)),
        tied_embeddings="output.weight" not in names, **switches,
    )


def dequantized(tensor, path) -> np.ndarray:
    """Float32 array of a GGUF tensor in numpy order ((out, in) for matrices), any supported type."""
    gguf = require("gguf", "lora")
    shape = tuple(int(n) for n in reversed(tensor.shape))
    try:
        data = gguf.quants.dequantize(tensor.data, tensor.tensor_type)
    except NotImplementedError:
        raise UserError(f"{path}: tensor {tensor.name} has quantization {tensor.tensor_type.name}, "
                        "which the gguf package cannot dequantize") from None
    return np.ascontiguousarray(np.asarray(data, dtype=np.float32).reshape(shape))


def unpermute_rope_rows(w: np.ndarray, n_heads: int) -> np.ndarray:
    """Inverse of llama.cpp's llama q/k permutation: interleaved RoPE rows -> rotate-half rows."""
    rest = w.shape[1:]
    half = w.shape[0] // n_heads // 2
    return w.reshape(n_heads, half, 2, *rest).swapaxes(1, 2).reshape(w.shape)


def permute_rope_rows(w: np.ndarray, n_heads: int) -> np.ndarray:
    """llama.cpp's permutation (HF rotate-half rows -> interleaved), used when writing llama GGUF."""
    rest = w.shape[1:]
    half = w.shape[0] // n_heads // 2
    return w.reshape(n_heads, 2, half, *rest).swapaxes(1, 2).reshape(w.shape)


def canonical_name(gguf_name: str) -> str | None:
    """Canonical name for a GGUF tensor name, None for tensors we do not use (e.g. rope_freqs)."""
    if gguf_name in _GLOBAL_TENSORS:
        return _GLOBAL_TENSORS[gguf_name]
    parts = gguf_name.split(".")
    if len(parts) != 4 or parts[0] != "blk" or not parts[1].isdigit():
        return None
    layer, stem, kind = int(parts[1]), parts[2], parts[3]
    part = _BLOCK_TENSORS.get(stem)
    if part is None:
        return None
    if kind == "bias":
        return layer_bias(layer, part)
    if part.endswith("_proj"):
        return projection_name(layer, part)
    return layer_weight(layer, part)


def load_gguf(path: str | Path, with_tokenizer: bool = True) -> BaseModel:
    """Load a qwen2/llama/gemma3 GGUF into a BaseModel with float32 weights (and its tokenizer)."""
    reader = open_gguf(path)
    cfg = read_config(reader, path)
    weights, types = {}, {}
    for tensor in reader.tensors:
        name = canonical_name(tensor.name)
        if name is None:
            continue
        types[name] = tensor.tensor_type.name
        w = dequantized(tensor, path)
        if cfg.arch == "llama" and (".q_proj." in name or ".k_proj." in name):
            heads = cfg.n_heads if ".q_proj." in name else cfg.n_kv_heads
            w = unpermute_rope_rows(w, heads)
        weights[name] = w
    check_weights(cfg, weights, str(path))
    template = field_value(reader, "tokenizer.chat_template")
    tokenizer = None
    if with_tokenizer:
        from backends.student.tokenizer import gguf_tokenizer

        tokenizer = gguf_tokenizer(path)
    meta = {"eos_token_id": field_value(reader, "tokenizer.ggml.eos_token_id"),
            "bos_token_id": field_value(reader, "tokenizer.ggml.bos_token_id"),
            "tensor_types": types}  # canonical name -> GGUF type name (llama.cpp rounding emulation)
    return BaseModel(cfg, weights, tokenizer, template, str(path), meta)
