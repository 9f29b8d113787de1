"""llama.cpp's CPU rounding, emulated in NumPy, so the forward pass can track llama.cpp token for token.

The plain forward pass computes in float32 on the dequantized weights. llama.cpp's CPU backend
(ggml) rounds in a few more places, and at near-ties those roundings decide the top-1 token:

- A product with a quantized weight first quantizes each f32 activation row to the weight type's
  `vec_dot_type`: Q8_0 (blocks of 32, fp16 scale) for Q4_0/Q4_1/Q5_0/Q5_1/Q8_0, Q8_K (blocks of
  256, f32 scale) for the K-quants; F16/BF16 weights round the activation to that float type.
  The integer dot product times both scales equals the f32 product of the two dequantized rows, so
  quantize-dequantizing the activation and multiplying as usual reproduces it up to summation order.
- The KV cache holds K and V in f16 (llama.cpp's default), and its attention products convert the
  other operand (Q, then the softmax probabilities) to f16 as well.

Emulated, a forward matches llama.cpp to float32 noise until float32 summation order (which differs)
tips one value across a rounding boundary; in a deep model such flips cascade (see test_real_qwen).
ggml's float32 running-product RoPE angles were tried and left out: no measurable effect.

`LlamaCppArithmetic` bundles these per layer; `decoder_layer` takes it in place of `EXACT`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from backends.student.architectures import ATTN_PROJ, MLP_PROJ, projection_name
from backends.student.decoder_math import ExactArithmetic
from k1core.errors import UserError

QK8_0 = 32  # values per Q8_0 block
QK_K = 256  # values per Q8_K (super-)block


def _blocks(x: np.ndarray, size: int) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.shape[-1] % size:
        raise ValueError(f"row length {x.shape[-1]} is not a multiple of the block size {size}")
    return x.reshape(*x.shape[:-1], x.shape[-1] // size, size)


def q8_0_roundtrip(x: np.ndarray) -> np.ndarray:
    """x (..., n) quantized to Q8_0 and back as ggml's x86 quantize_row_q8_0 does it.

    Per block of 32: d = amax/127 stored as fp16, q = round-half-even(x * (127/amax)) in f32.
    """
    b = _blocks(x, QK8_0)  # (..., n/32, 32)
    amax = np.abs(b).max(axis=-1, keepdims=True)
    d = (amax / np.float32(127.0)).astype(np.float16).astype(np.float32)
    with np.errstate(divide="ignore"):
        inv = np.where(amax > 0, np.float32(127.0) / amax, np.float32(0.0)).astype(np.float32)
    q = np.rint(b * inv)
    return (q * d).reshape(np.shape(x))


def q8_K_roundtrip(x: np.ndarray) -> np.ndarray:
    """x (..., n) quantized to Q8_K and back as ggml's quantize_row_q8_K_ref does it.

    Per block of 256: iscale = -127/max where max is the first value of largest magnitude (signed),
    q = min(127, round-half-even(iscale * x)), d = 1/iscale, all in f32.
    """
    b = _blocks(x, QK_K)  # (..., n/256, 256)
    first_max = np.take_along_axis(b, np.abs(b).argmax(axis=-1)[..., None], axis=-1)
    with np.errstate(divide="ignore"):
        iscale = np.where(first_max != 0, np.float32(-127.0) / first_max, np.float32(0.0)).astype(np.float32)
        d = np.where(iscale != 0, np.float32(1.0) / iscale, np.float32(0.0)).astype(np.float32)
    q = np.minimum(np.rint(iscale * b), np.float32(127.0))
    return (q * d).reshape(np.shape(x))


def f16_roundtrip(x: np.ndarray) -> np.ndarray:
    """x rounded to IEEE half precision (round-to-nearest-even, as F16C and numpy both do)."""
    return np.asarray(x, dtype=np.float32).astype(np.float16).astype(np.float32)


def bf16_roundtrip(x: np.ndarray) -> np.ndarray:
    """x rounded to bfloat16 with round-to-nearest-even on the dropped 16 bits."""
    bits = np.asarray(x, dtype=np.float32).view(np.uint32)
    rounded = (bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))) & np.uint32(0xFFFF0000)
    return rounded.view(np.float32)


def _unchanged(x):
    return x


# What ggml's CPU matrix product does to the f32 activation for each weight type (its vec_dot_type).
# Q8_1 quantizes the values exactly as Q8_0 does (it only adds a block sum), so both map to Q8_0.
ACTIVATION_ROUNDING: dict[str, Callable] = {
    "F32": _unchanged, "F16": f16_roundtrip, "BF16": bf16_roundtrip,
    **{t: q8_0_roundtrip for t in ("Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0")},
    **{t: q8_K_roundtrip for t in ("Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K")},
}


def activation_rounding(weight_type: str, tensor: str) -> Callable:
    """The input rounding ggml applies before a product with a `weight_type` weight."""
    if weight_type not in ACTIVATION_ROUNDING:
        raise UserError(f"{tensor}: no llama.cpp rounding emulation for weight type {weight_type}; "
                        f"supported: {', '.join(ACTIVATION_ROUNDING)}")
    return ACTIVATION_ROUNDING[weight_type]


@dataclass(frozen=True)
class LlamaCppArithmetic(ExactArithmetic):
    """One layer's llama.cpp rounding: per fused product, (end column, input rounding) segments."""

    segments: dict  # product name ('wqkv', 'wo', 'wgu', 'wd', 'out') -> ((end, rounding), ...)

    def matmul(self, x, w, product: str):
        """x (..., in) @ w (in, out), each column segment seeing its own rounding of x."""
        parts, start = [], 0
        for end, rounding in self.segments[product]:
            parts.append(rounding(x) @ w[:, start:end])
            start = end
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=-1)

    def attention_operand(self, a):
        """Q, K, V and the softmax probabilities meet the f16 KV cache in f16."""
        return f16_roundtrip(a)


def _segments(types: list[str], widths: list[int], tensors: list[str]) -> tuple:
    """Merge neighbouring column blocks that share a rounding: ((end, rounding), ...)."""
    merged, end = [], 0
    for t, width, name in zip(types, widths, tensors):
        rounding = activation_rounding(t, name)
        end += width
        if merged and merged[-1][1] is rounding:
            merged[-1] = (end, rounding)
        else:
            merged.append((end, rounding))
    return tuple(merged)


def llama_cpp_arithmetic(model) -> tuple[list[LlamaCppArithmetic], LlamaCppArithmetic]:
    """(per-layer arithmetic, head arithmetic) for a model loaded from GGUF, from its tensor types."""
    types = model.meta.get("tensor_types")
    if not types:
        raise UserError(f"{model.source}: llama.cpp rounding needs the GGUF tensor types (load the model from GGUF)")
    cfg = model.config
    q, kv, f = cfg.n_heads * cfg.head_dim, cfg.n_kv_heads * cfg.head_dim, cfg.ffn_dim
    widths = dict(zip(ATTN_PROJ + MLP_PROJ, (q, kv, kv, cfg.dim, f, f, cfg.dim)))
    fused = {"wqkv": ("q_proj", "k_proj", "v_proj"), "wo": ("o_proj",), "wgu": ("gate_proj", "up_proj"),
             "wd": ("down_proj",)}
    layers = []
    for i in range(cfg.n_layers):
        segs = {}
        for product, projs in fused.items():
            names = [projection_name(i, p) for p in projs]
            segs[product] = _segments([types[n] for n in names], [widths[p] for p in projs], names)
        layers.append(LlamaCppArithmetic(segs))
    out = "lm_head.weight" if "lm_head.weight" in types else "model.embed_tokens.weight"
    head = LlamaCppArithmetic({"out": _segments([types[out]], [cfg.vocab_size], [out])})
    return layers, head
