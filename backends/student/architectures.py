"""The decoder architectures a student may have (qwen2, llama, gemma3) as one frozen config.

All three are pre-norm decoders with RoPE, grouped-query attention and a gated MLP; they differ
only in the switches below, so one forward pass serves all of them.
"""
from __future__ import annotations

from dataclasses import dataclass

from k1core.errors import UserError

SUPPORTED_ARCHITECTURES = ("qwen2", "llama", "gemma3")


@dataclass(frozen=True)
class StudentConfig:
    arch: str
    vocab_size: int
    dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    ffn_dim: int
    norm_eps: float
    rope_theta: float
    tied_embeddings: bool
    attn_bias: bool = False  # qwen2: q/k/v projections carry a bias
    qk_norm: bool = False  # gemma3: RMSNorm on each head's q and k
    sandwich_norm: bool = False  # gemma3: extra norms after attention and after the MLP
    embed_scale: float = 1.0  # gemma3: embeddings multiplied by sqrt(dim)
    activation: str = "silu"  # gemma3: "gelu_tanh"
    attn_scale: float = 0.0  # 0 -> 1/sqrt(head_dim); gemma3: query_pre_attn_scalar ** -0.5
    sliding_window: int = 0  # gemma3: local layers see this many previous tokens (0 = all global)
    sliding_pattern: int = 0  # gemma3: every n-th layer is global, the others local
    rope_local_theta: float = 0.0  # gemma3: RoPE base of the local layers

    def __post_init__(self):
        if self.arch not in SUPPORTED_ARCHITECTURES:
            raise UserError(f"unsupported architecture {self.arch!r}; supported: {', '.join(SUPPORTED_ARCHITECTURES)}")
        for name in ("vocab_size", "dim", "n_layers", "n_heads", "n_kv_heads", "head_dim", "ffn_dim"):
            if getattr(self, name) <= 0:
                raise UserError(f"model config: {name} must be positive, got {getattr(self, name)}")
        if self.n_heads % self.n_kv_heads:
            raise UserError(f"model config: n_heads {self.n_heads} is not a multiple of n_kv_heads {self.n_kv_heads}")
        if self.activation not in ("silu", "gelu_tanh"):
            raise UserError(f"model config: unknown activation {self.activation!r}")

    def is_local_layer(self, layer: int) -> bool:
        """Whether `layer` uses sliding-window attention (gemma3: all but every sliding_pattern-th)."""
        if not self.sliding_window or not self.sliding_pattern:
            return False
        return (layer + 1) % self.sliding_pattern != 0

    def query_scale(self) -> float:
        return self.attn_scale or self.head_dim ** -0.5


def arch_switches(arch: str, dim: int) -> dict:
    """The per-architecture switches that neither GGUF nor config.json spell out."""
    if arch == "qwen2":
        return {"attn_bias": True}
    if arch == "gemma3":
        return {"qk_norm": True, "sandwich_norm": True, "embed_scale": float(dim) ** 0.5,
                "activation": "gelu_tanh", "sliding_pattern": 6, "rope_local_theta": 10000.0}
    if arch == "llama":
        return {}
    raise UserError(f"unsupported architecture {arch!r}; supported: {', '.join(SUPPORTED_ARCHITECTURES)}")


# Canonical weight names (Hugging Face naming, (out, in) layout) used by every loader and by PEFT.
ATTN_PROJ = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP_PROJ = ("gate_proj", "up_proj", "down_proj")


def projection_name(layer: int, proj: str) -> str:
    """HF name of a projection weight, e.g. model.layers.0.self_attn.q_proj.weight."""
    block = "self_attn" if proj in ATTN_PROJ else "mlp"
    return f"model.layers.{layer}.{block}.{proj}.weight"
