"""Reference forward pass in NumPy: full logits for a batch of token ids, the oracle the tests check
the other forwards (JAX, MLX, llama.cpp) and the exported GGUFs against."""
from __future__ import annotations

import numpy as np

from backends.student.decoder_math import EXACT, batch_context, decoder_layer, rms_norm
from backends.student.layer_stack import local_flags


def numpy_logits(cfg, layers: dict, head: dict, tokens: np.ndarray, lora: dict | None = None,
                 lora_scale: float = 1.0, segments: np.ndarray | None = None, llama_cpp: tuple | None = None) -> np.ndarray:
    """Logits (B, T, V) for tokens (B, T); `lora` maps a target to stacked (A (L,in,r), B (L,r,out)).

    `llama_cpp` = ggml_numerics.llama_cpp_arithmetic(model) rounds where llama.cpp's CPU path does.
    """
    tokens = np.asarray(tokens)
    B, T = tokens.shape
    segments = np.ones((B, T), np.int32) if segments is None else segments
    positions = np.broadcast_to(np.arange(T), (B, T))
    ctx = batch_context(np, cfg, positions, segments)
    layer_arith, head_arith = llama_cpp or ([EXACT] * cfg.n_layers, EXACT)
    h = head["embed"][tokens] * np.float32(cfg.embed_scale)  # (B, T, D)
    flags = local_flags(cfg)
    for i in range(cfg.n_layers):
        w = {k: v[i] for k, v in layers.items()}
        layer_lora = {k: (a[i], b[i]) for k, (a, b) in (lora or {}).items()}
        h = decoder_layer(np, cfg, h, w, layer_lora, ctx, flags[i], lora_scale, arith=layer_arith[i])
    h = rms_norm(np, h, head["norm"], cfg.norm_eps)
    return head_arith.matmul(h, head["out"].T, "out")  # (B, T, V)
