"""LoRA adapters in PEFT's layout (adapter_config.json + adapter_model.safetensors) and fusing them.

PEFT names: base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight (r, in) and
...lora_B.weight (out, r); the delta to the HF weight (out, in) is (alpha / r) * B @ A.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson

from backends.student.architectures import projection_name
from backends.student.base_model import BaseModel
from backends.student.lora import LoraConfig
from backends.student.safetensors_io import read_safetensors, write_safetensors
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
              "lora_dropout": lcfg.dropout, "target_modules": list(lcfg.targets), "bias": "none",
              "fan_in_fan_out": False, "inference_mode": True, "base_model_name_or_path": base_name}
    tmp = out_dir / "adapter_config.json.tmp"
    tmp.write_bytes(orjson.dumps(config, option=orjson.OPT_INDENT_2))
    tmp.replace(out_dir / "adapter_config.json")
    return out_dir


def load_adapter(adapter_dir: str | Path, n_layers: int) -> tuple[dict, LoraConfig]:
    """Read a PEFT LoRA adapter back into stacked {target: (A, B)} and its LoraConfig."""
    adapter_dir = Path(adapter_dir)
    cfg_path = adapter_dir / "adapter_config.json"
    try:
        raw = orjson.loads(cfg_path.read_bytes())
    except FileNotFoundError:
        raise UserError(f"{cfg_path}: file is missing") from None
    except orjson.JSONDecodeError as err:
        raise UserError(f"{cfg_path}: invalid JSON ({err})") from None
    if raw.get("peft_type") != "LORA":
        raise UserError(f"{cfg_path}: peft_type {raw.get('peft_type')!r} is not LORA")
    lcfg = LoraConfig(targets=tuple(raw["target_modules"]), rank=int(raw["r"]), alpha=float(raw["lora_alpha"]),
                      dropout=float(raw.get("lora_dropout", 0.0)))
    tensors = read_safetensors(adapter_dir / "adapter_model.safetensors")
    lora = {}
    for target in lcfg.targets:
        try:
            a = np.stack([tensors[peft_name(i, target, "A")].T for i in range(n_layers)])
            b = np.stack([tensors[peft_name(i, target, "B")].T for i in range(n_layers)])
        except KeyError as err:
            raise UserError(f"{adapter_dir}: adapter tensor {err.args[0]} is missing") from None
        lora[target] = (a.astype(np.float32), b.astype(np.float32))
    return lora, lcfg


def fuse(base: BaseModel, lora: dict, lcfg: LoraConfig) -> dict[str, np.ndarray]:
    """Base weights with the adapter merged in: W (out, in) += (alpha / r) * B @ A; others shared."""
    weights = dict(base.weights)
    for target, (a, b) in lora.items():
        for i in range(a.shape[0]):
            name = projection_name(i, target)
            weights[name] = weights[name] + np.float32(lcfg.scale) * (a[i] @ b[i]).T
    return weights
