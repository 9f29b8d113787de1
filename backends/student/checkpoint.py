"""Atomic training checkpoints: adapter (PEFT layout), AdamW moments, step, RNG and early-stopping state.

The directory is written under a temporary name and swapped in with renames, so a run killed at any
moment leaves either the previous checkpoint or the new one, never a mix.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import orjson

from backends.student.adapters import adapter_tensors, load_adapter, peft_name, save_adapter
from backends.student.safetensors_io import read_safetensors, write_safetensors


def save_checkpoint(path: Path, lora, m, v, lcfg, state: dict) -> None:
    """Write lora + moments + `state` (step, seed, best val, ...) to `path` atomically."""
    path = Path(path)
    tmp, old = path.with_name(path.name + ".tmp"), path.with_name(path.name + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    save_adapter(tmp, lora, lcfg)
    moments = {f"m.{k}": x for k, x in adapter_tensors(m).items()}
    moments.update({f"v.{k}": x for k, x in adapter_tensors(v).items()})
    write_safetensors(tmp / "optimizer.safetensors", moments)
    (tmp / "trainer_state.json").write_bytes(orjson.dumps(state, option=orjson.OPT_SERIALIZE_NUMPY))
    shutil.rmtree(old, ignore_errors=True)
    if path.exists():
        path.rename(old)
    tmp.rename(path)
    shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(path: Path, n_layers: int):
    """(lora, m, v, state) from a checkpoint directory, or None when there is none."""
    path = Path(path)
    if not (path / "trainer_state.json").exists():
        old = path.with_name(path.name + ".old")  # killed between the two renames
        if not (old / "trainer_state.json").exists():
            return None
        path = old
    lora, _ = load_adapter(path, n_layers)
    raw = read_safetensors(path / "optimizer.safetensors")

    def moments(prefix):
        out = {}
        for target in lora:
            out[target] = (np.stack([raw[f"{prefix}.{peft_name(i, target, 'A')}"].T for i in range(n_layers)]),
                           np.stack([raw[f"{prefix}.{peft_name(i, target, 'B')}"].T for i in range(n_layers)]))
        return out

    return lora, moments("m"), moments("v"), orjson.loads((path / "trainer_state.json").read_bytes())
