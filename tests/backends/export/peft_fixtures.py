"""PEFT adapter directories and tiny GGUF models written by the export tests, plus llama.cpp logits."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson

from backends.student.architectures import StudentConfig, arch_switches, projection_name
from backends.student.safetensors_io import write_safetensors
from tests.backends.student.tiny_models import random_weights, tiny_config, tiny_tokenizer, write_gguf

TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def tiny_gguf(tmp_path: Path, arch: str, seed: int = 0, wide: bool = False, **changes):
    """(path, config, weights) of a tiny random model of `arch` written as an F32 GGUF.

    `wide` gives rows of 256, the K-quant block size, so Q4_K_M really uses K-quants; `changes`
    overrides config fields (e.g. n_layers).
    """
    tok = tiny_tokenizer()
    cfg = tiny_config(arch, tok.get_vocab_size() + 4)
    if wide:
        changes = {"dim": 256, "ffn_dim": 512, "head_dim": 64, **changes}
    if changes:
        dim = changes.get("dim", cfg.dim)
        cfg = StudentConfig(**{**cfg.__dict__, "embed_scale": arch_switches(arch, dim).get("embed_scale", 1.0), **changes})
    weights = random_weights(cfg, seed)
    return write_gguf(cfg, weights, tok, tmp_path / f"tiny-{arch}.gguf"), cfg, weights


def write_peft_adapter(out: Path, cfg, rank: int = 4, alpha: float = 8.0, std: float = 0.1, seed: int = 1,
                       targets=TARGETS) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """A PEFT-layout adapter on every layer's `targets`; returns {canonical name: (A (r,in), B (out,r))}."""
    rng = np.random.default_rng(seed)
    q, kv = cfg.n_heads * cfg.head_dim, cfg.n_kv_heads * cfg.head_dim
    dims = {"q_proj": (cfg.dim, q), "k_proj": (cfg.dim, kv), "v_proj": (cfg.dim, kv), "o_proj": (q, cfg.dim),
            "gate_proj": (cfg.dim, cfg.ffn_dim), "up_proj": (cfg.dim, cfg.ffn_dim), "down_proj": (cfg.ffn_dim, cfg.dim)}
    tensors, pairs = {}, {}
    for i in range(cfg.n_layers):
        for target in targets:
            d_in, d_out = dims[target]
            a = (std * rng.standard_normal((rank, d_in))).astype(np.float32)
            b = (std * rng.standard_normal((d_out, rank))).astype(np.float32)
            name = projection_name(i, target)
            stem = "base_model.model." + name[:-len(".weight")]
            tensors[f"{stem}.lora_A.weight"], tensors[f"{stem}.lora_B.weight"] = a, b
            pairs[name] = (a, b)
    out.mkdir(parents=True, exist_ok=True)
    write_safetensors(out / "adapter_model.safetensors", tensors)
    config = {"peft_type": "LORA", "r": rank, "lora_alpha": alpha, "target_modules": list(targets),
              "fan_in_fan_out": False, "bias": "none", "task_type": "CAUSAL_LM"}
    (out / "adapter_config.json").write_bytes(orjson.dumps(config))
    return pairs


def llamacpp_logits(path: Path, tokens: list[int], lora: Path | None = None) -> np.ndarray:
    """(T, V) logits llama.cpp computes for `tokens` from the GGUF at `path` (with a LoRA GGUF applied)."""
    import llama_cpp

    llm = llama_cpp.Llama(str(path), n_ctx=64, n_batch=1, logits_all=True, verbose=False, n_threads=1,
                          lora_path=str(lora) if lora else None)
    llm.eval(tokens)
    logits = np.array(llm.scores[:len(tokens)], dtype=np.float32)
    llm.close()
    return logits
