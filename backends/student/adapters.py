"""LoRA adapters in PEFT's layout (adapter_config.json + adapter_model.safetensors) and fusing them.

PEFT names: base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight (r, in) and
...lora_B.weight (out, r); the delta to the HF weight (out, in) is (alpha / r) * B @ A. Reading and
the merge formula live in `peft_delta.py`, shared with the GGUF export.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson

from backends.student.architectures import projection_name
from backends.student.base_model import BaseModel
from backends.student.lora import LoraConfig
from backends.student.peft_delta import lora_delta, read_peft_pairs
from backends.student.safetensors_io import write_safetensors
from k1core.errors import UserError

PEFT_PREFIX = "base_model.model."


def peft_name(layer: int, target: str, which: str) -> str:
    """PEFT tensor name, e.g. base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight."""
    return PEFT_PREFIX + projection_name(layer, target)[:-len("weight")] + f"lora_{which}.weight"


def adapter_tensors(lora: dict) -> dict[str, np.ndarray]:
    """Stacked {target: (A (L,in,r), B (L,r,out))} -> PEFT-named (r,in) / (out,r) tensors."""
    out = {}
    for target, (a, b) in lora.items():
        for i in range(a.shape[0]):
            out[peft_name(i, target, "A")] = np.asarray(a[i]).T
            out[peft_name(i, target, "B")] = np.asarray(b[i]).T
    return out


def save_adapter(out_dir: str | Path, lora: dict, lcfg: LoraConfig, base_name: str = "") -> Path:
    """Write the adapter in PEFT layout (atomic per file)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_safetensors(out_dir / "adapter_model.safetensors", adapter_tensors(lora))
    config = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": lcfg.rank, "lora_alpha": lcfg.alpha,
              "use_rslora": lcfg.rslora, "lora_dropout": lcfg.dropout, "target_modules": list(lcfg.targets), "bias": "none",
              "fan_in_fan_out": False, "inference_mode": True, "base_model_name_or_path": base_name}
    tmp = out_dir / "adapter_config.json.tmp"
    tmp.write_bytes(orjson.dumps(config, option=orjson.OPT_INDENT_2))
    tmp.replace(out_dir / "adapter_config.json")
    return out_dir


def load_adapter(adapter_dir: str | Path, n_layers: int) -> tuple[dict, LoraConfig]:
    """Read a PEFT LoRA adapter back into stacked {target: (A, B)} and its LoraConfig (validated as for export)."""
    pairs, raw = read_peft_pairs(adapter_dir)
    where = Path(adapter_dir) / "adapter_config.json"
    try:
        targets = raw["target_modules"]
        lcfg = LoraConfig(targets=tuple(targets) if isinstance(targets, list) else (targets,), rank=int(raw["r"]),
                          alpha=float(raw["lora_alpha"]), dropout=float(raw.get("lora_dropout", 0.0)),
                          rslora=bool(raw.get("use_rslora", False)))
    except KeyError as err:
        raise UserError(f"{where}: key {err.args[0]!r} is missing") from None
    except (TypeError, ValueError):
        raise UserError(f"{where}: target_modules must be a list of names and lora_dropout a number") from None
    expected = {projection_name(i, t) for t in lcfg.targets for i in range(n_layers)}
    if set(pairs) != expected:
        missing, extra = sorted(expected - set(pairs)), sorted(set(pairs) - expected)
        what = f"has no tensors for {missing[0]}" if missing else f"changes {extra[0]}, outside its target_modules"
        raise UserError(f"{adapter_dir}: the adapter {what} (for a {n_layers}-layer model)")
    lora = {}
    for target in lcfg.targets:
        a = np.stack([pairs[projection_name(i, target)][0].T for i in range(n_layers)])  # (L, in, r)
        b = np.stack([pairs[projection_name(i, target)][1].T for i in range(n_layers)])  # (L, r, out)
        lora[target] = (a, b)
    return lora, lcfg


def fuse(base: BaseModel, lora: dict, lcfg: LoraConfig) -> dict[str, np.ndarray]:
    """Base weights with the adapter merged in: W (out, in) += scale * B @ A; others shared."""
    weights = dict(base.weights)
    for target, (a, b) in lora.items():  # stacked A (L, in, r), B (L, r, out): PEFT's A, B transposed
        for i in range(a.shape[0]):
            name = projection_name(i, target)
            weights[name] = weights[name] + lora_delta(a[i].T, b[i].T, lcfg.scale)
    return weights
