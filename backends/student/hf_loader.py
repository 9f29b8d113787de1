"""Read a base model from a Hugging Face directory: config.json, *.safetensors and tokenizer.json."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from backends.student.architectures import SUPPORTED_ARCHITECTURES, StudentConfig, arch_switches
from backends.student.base_model import BaseModel, check_weights
from backends.student.safetensors_io import read_safetensors
from k1core.errors import UserError
from k1core.json_object import json_object

# HF per-layer norm name -> canonical part, per architecture (llama's post_attention_layernorm is
# the pre-MLP norm, gemma3's is the norm after attention).
_NORMS = {
    "default": {"input_layernorm": "attn_norm", "post_attention_layernorm": "mlp_norm"},
    "gemma3": {"input_layernorm": "attn_norm", "post_attention_layernorm": "post_attn_norm",
               "pre_feedforward_layernorm": "mlp_norm", "post_feedforward_layernorm": "post_mlp_norm"},
}


def _read_json(path: Path) -> dict:
    try:
        return json_object(path.read_bytes())
    except FileNotFoundError:
        raise UserError(f"{path}: file is missing") from None
    except ValueError as err:
        raise UserError(f"{path}: {err}") from None


def read_hf_config(model_dir: Path) -> StudentConfig:
    """StudentConfig from config.json (gemma3's multimodal text_config is unwrapped)."""
    raw = _read_json(model_dir / "config.json")
    raw = raw.get("text_config", raw) if raw.get("model_type") == "gemma3" else raw
    arch = {"gemma3_text": "gemma3"}.get(raw.get("model_type"), raw.get("model_type"))
    if arch not in SUPPORTED_ARCHITECTURES:
        raise UserError(f"{model_dir / 'config.json'}: unsupported model_type {raw.get('model_type')!r}; "
                        f"supported: {', '.join(SUPPORTED_ARCHITECTURES)}")
    try:
        dim, n_heads = int(raw["hidden_size"]), int(raw["num_attention_heads"])
        rope = raw.get("rope_parameters") or {}
        switches = arch_switches(arch, dim)
        if arch == "gemma3":
            switches.update(sliding_window=int(raw.get("sliding_window") or 0),
                            sliding_pattern=int(raw.get("sliding_window_pattern", 6)),
                            rope_local_theta=float(raw.get("rope_local_base_freq", 10000.0)),
                            attn_scale=float(raw.get("query_pre_attn_scalar", raw.get("head_dim", dim // n_heads))) ** -0.5)
        return StudentConfig(
            arch=arch, vocab_size=int(raw["vocab_size"]), dim=dim, n_layers=int(raw["num_hidden_layers"]),
            n_heads=n_heads, n_kv_heads=int(raw.get("num_key_value_heads", n_heads)),
            head_dim=int(raw.get("head_dim") or dim // n_heads), ffn_dim=int(raw["intermediate_size"]),
            norm_eps=float(raw.get("rms_norm_eps", 1e-6)),
            rope_theta=float(raw.get("rope_theta", rope.get("rope_theta", 10000.0))),
            tied_embeddings=bool(raw.get("tie_word_embeddings", arch != "llama")), **switches,
        )
    except KeyError as err:
        raise UserError(f"{model_dir / 'config.json'}: key {err.args[0]} is missing") from None


def canonical_hf_name(name: str, arch: str) -> str:
    """Canonical name for an HF tensor name (norms renamed per arch, multimodal prefixes dropped)."""
    # gemma3's multimodal checkpoints nest the text model: language_model.model.* or model.language_model.*
    if name.startswith("language_model."):
        name = name[len("language_model."):]
    elif name.startswith("model.language_model."):
        name = "model." + name[len("model.language_model."):]
    parts = name.split(".")
    if len(parts) == 5 and parts[1] == "layers":
        norm = _NORMS.get(arch, _NORMS["default"]).get(parts[3])
        if norm:
            return f"model.layers.{parts[2]}.{norm}.weight"
    return name


def load_hf_dir(model_dir: str | Path, with_tokenizer: bool = True) -> BaseModel:
    """Load a qwen2/llama/gemma3 HF directory into a BaseModel with float32 weights."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise UserError(f"{model_dir}: not a model directory")
    cfg = read_hf_config(model_dir)
    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        raise UserError(f"{model_dir}: no *.safetensors weight files")
    weights = {}
    for file in files:
        for name, arr in read_safetensors(file).items():
            weights[canonical_hf_name(name, cfg.arch)] = arr
    if cfg.arch == "gemma3":  # gemma3 stores RMSNorm gains as w and multiplies by (1 + w)
        for name in list(weights):
            if name.endswith("norm.weight"):
                weights[name] = weights[name] + np.float32(1.0)
    if cfg.tied_embeddings:
        weights.pop("lm_head.weight", None)
    check_weights(cfg, weights, str(model_dir))
    tokenizer, template, tok_cfg = read_hf_tokenizer(model_dir, with_tokenizer)
    return BaseModel(cfg, weights, tokenizer, template, str(model_dir), {"eos_token": tok_cfg.get("eos_token")})


def read_hf_tokenizer(model_dir: Path, with_tokenizer: bool = True) -> tuple:
    """(tokenizer or None, chat template or None, tokenizer_config dict) of an HF directory, no weights read."""
    tok_cfg_path = model_dir / "tokenizer_config.json"
    tok_cfg = _read_json(tok_cfg_path) if tok_cfg_path.exists() else {}
    template = tok_cfg.get("chat_template")
    if template is None and (model_dir / "chat_template.jinja").exists():
        template = (model_dir / "chat_template.jinja").read_text()
    tokenizer = None
    if with_tokenizer and (model_dir / "tokenizer.json").exists():
        from backends.student.tokenizer import HFTokenizer

        tokenizer = HFTokenizer(model_dir / "tokenizer.json")
    return tokenizer, template, tok_cfg
