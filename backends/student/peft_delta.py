"""A PEFT LoRA adapter directory read as weight deltas, keyed by canonical (Hugging Face) weight name.

PEFT stores, per adapted projection, `...q_proj.lora_A.weight` (r, in) and `...lora_B.weight`
(out, r); merging adds scale * B @ A to the (out, in) weight, scale = alpha / r (alpha / sqrt(r)
with rsLoRA). We read the files ourselves instead of importing peft/torch so export stays a
numpy-only job, and reject layouts we would merge wrongly (fan_in_fan_out, per-module ranks).
The trainer's adapter loading and fusing (`adapters.py`) and the GGUF export both go through this
module, so they cannot disagree about what an adapter means.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from backends.student.lora import lora_scale
from backends.student.safetensors_io import read_safetensors
from k1core.errors import UserError
from k1core.json_object import json_object

# base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight -> model.layers.3.self_attn.q_proj.weight
PEFT_TENSOR = re.compile(r"^(?:base_model\.model\.)?(?P<module>.+)\.lora_(?P<which>[AB])(?:\.default)?\.weight$")


def adapter_scale(config: dict, where: Path) -> float:
    """The merge scale alpha / r (alpha / sqrt(r) for rsLoRA), validated."""
    try:
        rank, alpha = int(config["r"]), float(config["lora_alpha"])
    except KeyError as err:
        raise UserError(f"{where}: key {err.args[0]!r} is missing") from None
    except (TypeError, ValueError):
        raise UserError(f"{where}: keys 'r' and 'lora_alpha' must be numbers") from None
    if rank <= 0:
        raise UserError(f"{where}: r must be positive, got {rank}")
    return lora_scale(alpha, rank, bool(config.get("use_rslora")))


def lora_delta(a: np.ndarray, b: np.ndarray, scale: float) -> np.ndarray:
    """The merged change to one weight: scale * B @ A, A (r, in) and B (out, r) -> (out, in) float32."""
    return (np.float32(scale) * (b @ a)).astype(np.float32)


def read_adapter_config(adapter_dir: Path) -> dict:
    """adapter_config.json, checked to be a plain LoRA we can merge exactly."""
    path = adapter_dir / "adapter_config.json"
    try:
        config = json_object(path.read_bytes())
    except FileNotFoundError:
        raise UserError(f"{path}: no such file (is {adapter_dir} a PEFT adapter directory?)") from None
    except ValueError as err:
        raise UserError(f"{path}: {err}") from None
    if config.get("peft_type", "LORA") != "LORA":
        raise UserError(f"{path}: peft_type must be LORA")
    if config.get("fan_in_fan_out"):
        raise UserError(f"{path}: fan_in_fan_out adapters (GPT-2 Conv1D layout) are not supported")
    if config.get("rank_pattern") or config.get("alpha_pattern"):
        raise UserError(f"{path}: per-module rank_pattern/alpha_pattern is not supported")
    if config.get("use_dora"):
        raise UserError(f"{path}: DoRA adapters cannot be merged as a plain LoRA delta")
    adapter_scale(config, path)  # r and lora_alpha present and numeric before any tensor is read
    return config


def read_peft_pairs(adapter_dir: str | Path) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict]:
    """({canonical weight name: (A (r, in), B (out, r))}, adapter config), validated."""
    adapter_dir = Path(adapter_dir)
    if not adapter_dir.is_dir():
        raise UserError(f"{adapter_dir}: no such adapter directory")
    config = read_adapter_config(adapter_dir)
    weights_path = adapter_dir / "adapter_model.safetensors"
    if not weights_path.is_file():
        raise UserError(f"{weights_path}: no such file")
    found: dict[str, dict[str, np.ndarray]] = {}
    for name, tensor in read_safetensors(weights_path).items():
        match = PEFT_TENSOR.match(name)
        if match is None:
            raise UserError(f"{weights_path}: tensor {name} is not a LoRA A/B weight")
        found.setdefault(match["module"] + ".weight", {})[match["which"]] = tensor
    if not found:
        raise UserError(f"{weights_path}: the adapter holds no tensors")
    pairs = {}
    for target, ab in sorted(found.items()):
        if set(ab) != {"A", "B"}:
            raise UserError(f"{weights_path}: {target} has lora_{''.join(ab)} but not both A and B")
        a, b = ab["A"].astype(np.float32), ab["B"].astype(np.float32)  # (r, in), (out, r)
        if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[1]:
            raise UserError(f"{weights_path}: {target} has A {a.shape} and B {b.shape}, expected (r, in) and (out, r)")
        if a.shape[0] != int(config["r"]):
            raise UserError(f"{weights_path}: {target} has rank {a.shape[0]}, but adapter_config.json says "
                            f"r = {config['r']}")
        if not (np.isfinite(a).all() and np.isfinite(b).all()):
            raise UserError(f"{weights_path}: {target} holds NaN or infinite values")
        pairs[target] = (a, b)
    return pairs, config


def read_peft_deltas(adapter_dir: str | Path) -> dict[str, np.ndarray]:
    """{canonical weight name: delta (out, in) float32} for every module the adapter touches."""
    pairs, config = read_peft_pairs(adapter_dir)
    scale = adapter_scale(config, Path(adapter_dir) / "adapter_config.json")
    return {target: lora_delta(a, b, scale) for target, (a, b) in pairs.items()}
