"""Frozen weights rearranged for compute: per-layer tensors stacked on a leading layer axis,
matrices transposed to (in, out), q|k|v and gate|up fused, so each layer does four big products.
"""
from __future__ import annotations

import numpy as np

from backends.student.architectures import projection_name
from backends.student.base_model import EMBED, FINAL_NORM, LM_HEAD, BaseModel, layer_bias, layer_weight


def stack_layers(model: BaseModel, dtype=np.float32) -> tuple[dict, dict]:
    """(layers, head): layers maps a part to an (L, ...) array; head has embed (V, D), norm, out (V, D)."""
    cfg, w = model.config, model.weights

    def stacked(fn):
        return np.ascontiguousarray(np.stack([fn(i) for i in range(cfg.n_layers)]), dtype=dtype)

    def t(i, proj):
        return w[projection_name(i, proj)].T

    layers = {
        "attn_norm": stacked(lambda i: w[layer_weight(i, "attn_norm")]),
        "mlp_norm": stacked(lambda i: w[layer_weight(i, "mlp_norm")]),
        "wqkv": stacked(lambda i: np.concatenate([t(i, "q_proj"), t(i, "k_proj"), t(i, "v_proj")], axis=1)),
        "wo": stacked(lambda i: t(i, "o_proj")),
        "wgu": stacked(lambda i: np.concatenate([t(i, "gate_proj"), t(i, "up_proj")], axis=1)),
        "wd": stacked(lambda i: t(i, "down_proj")),
    }
    if cfg.attn_bias:
        layers["bqkv"] = stacked(lambda i: np.concatenate([w[layer_bias(i, p)] for p in ("q_proj", "k_proj", "v_proj")]))
    if cfg.qk_norm:
        layers["q_norm"] = stacked(lambda i: w[layer_weight(i, "self_attn.q_norm")])
        layers["k_norm"] = stacked(lambda i: w[layer_weight(i, "self_attn.k_norm")])
    if cfg.sandwich_norm:
        layers["post_attn_norm"] = stacked(lambda i: w[layer_weight(i, "post_attn_norm")])
        layers["post_mlp_norm"] = stacked(lambda i: w[layer_weight(i, "post_mlp_norm")])
    embed = np.ascontiguousarray(w[EMBED], dtype=np.float32)
    out = embed if cfg.tied_embeddings else np.ascontiguousarray(w[LM_HEAD], dtype=dtype)
    head = {"embed": embed, "norm": w[FINAL_NORM].astype(np.float32), "out": out}
    return layers, head


def local_flags(model_config) -> np.ndarray:
    """(L,) bool: which layers use sliding-window attention."""
    return np.array([model_config.is_local_layer(i) for i in range(model_config.n_layers)])
