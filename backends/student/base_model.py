"""A loaded base model: its config, its frozen weights by canonical name, and its tokenizer.

Canonical names follow Hugging Face for the projections (so PEFT adapter names fall out directly),
with arch-neutral names for norms because HF's `post_attention_layernorm` means different things
in llama and gemma3. Matrices are (out, in) as in HF; norm weights hold the full gain (gemma3's
stored `w` becomes `1 + w`, which is what GGUF already stores).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from backends.student.architectures import StudentConfig

EMBED = "model.embed_tokens.weight"
LM_HEAD = "lm_head.weight"
FINAL_NORM = "model.norm.weight"
LAYER_NORMS = ("attn_norm", "mlp_norm", "post_attn_norm", "post_mlp_norm")
QK_NORMS = ("self_attn.q_norm", "self_attn.k_norm")


def layer_weight(layer: int, part: str) -> str:
    """Canonical name of a per-layer tensor, e.g. layer_weight(3, 'attn_norm')."""
    return f"model.layers.{layer}.{part}.weight"


def layer_bias(layer: int, proj: str) -> str:
    return f"model.layers.{layer}.self_attn.{proj}.bias"


@dataclass
class BaseModel:
    """A frozen base model ready for the forward pass; `tokenizer` may be None for raw-id use."""

    config: StudentConfig
    weights: dict[str, np.ndarray]
    tokenizer: object = None
    chat_template: str | None = None
    source: str = ""
    meta: dict = field(default_factory=dict)


def expected_names(cfg: StudentConfig) -> list[str]:
    """Every canonical tensor name a model of `cfg` must provide."""
    from backends.student.architectures import ATTN_PROJ, MLP_PROJ, projection_name

    names = [EMBED, FINAL_NORM] + ([] if cfg.tied_embeddings else [LM_HEAD])
    for i in range(cfg.n_layers):
        names += [projection_name(i, p) for p in ATTN_PROJ + MLP_PROJ]
        names += [layer_weight(i, "attn_norm"), layer_weight(i, "mlp_norm")]
        if cfg.sandwich_norm:
            names += [layer_weight(i, "post_attn_norm"), layer_weight(i, "post_mlp_norm")]
        if cfg.qk_norm:
            names += [layer_weight(i, n) for n in QK_NORMS]
        if cfg.attn_bias:
            names += [layer_bias(i, p) for p in ("q_proj", "k_proj", "v_proj")]
    return names


def expected_shapes(cfg: StudentConfig) -> dict[str, tuple]:
    """Shape of every canonical tensor, so loaders can reject a mismatched file by name."""
    from backends.student.architectures import projection_name

    q, kv, d, f = cfg.n_heads * cfg.head_dim, cfg.n_kv_heads * cfg.head_dim, cfg.dim, cfg.ffn_dim
    proj = {"q_proj": (q, d), "k_proj": (kv, d), "v_proj": (kv, d), "o_proj": (d, q),
            "gate_proj": (f, d), "up_proj": (f, d), "down_proj": (d, f)}
    shapes = {EMBED: (cfg.vocab_size, d), LM_HEAD: (cfg.vocab_size, d), FINAL_NORM: (d,)}
    for i in range(cfg.n_layers):
        shapes.update({projection_name(i, p): s for p, s in proj.items()})
        shapes.update({layer_weight(i, n): (d,) for n in LAYER_NORMS})
        shapes.update({layer_weight(i, n): (cfg.head_dim,) for n in QK_NORMS})
        shapes.update({layer_bias(i, p): (proj[p][0],) for p in ("q_proj", "k_proj", "v_proj")})
    return {n: shapes[n] for n in expected_names(cfg)}


def check_weights(cfg: StudentConfig, weights: dict[str, np.ndarray], source: str) -> None:
    """Raise UserError naming the file and the first missing or misshapen tensor."""
    from k1core.errors import UserError

    for name, shape in expected_shapes(cfg).items():
        if name not in weights:
            raise UserError(f"{source}: tensor {name} is missing for a {cfg.arch} model")
        if tuple(weights[name].shape) != shape:
            raise UserError(f"{source}: tensor {name} has shape {tuple(weights[name].shape)}, expected {shape}")
