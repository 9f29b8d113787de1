"""Checkpoints as one .npz (no pickle): arrays stored natively, everything else as JSON, written
atomically (temporary file + os.replace) so a kill mid-write never leaves a broken checkpoint."""
from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import orjson

from k1core.errors import UserError

_META = "__meta__"


def _encode(node, prefix: str, arrays: dict):
    """JSON-ready tree; arrays move to `arrays` under their path, 128-bit ints (RNG state) become strings."""
    if isinstance(node, dict):
        return {str(k): _encode(v, f"{prefix}/{k}", arrays) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [_encode(v, f"{prefix}/{i}", arrays) for i, v in enumerate(node)]
    if isinstance(node, np.ndarray):
        arrays[prefix] = node
        return {"__array__": prefix}
    if isinstance(node, np.generic):
        return node.item()
    if isinstance(node, int) and not isinstance(node, bool) and not -(2**63) <= node < 2**63:
        return {"__bigint__": str(node)}
    return node


def _decode(node, arrays):
    if isinstance(node, dict):
        if "__array__" in node:
            return arrays[node["__array__"]]
        if "__bigint__" in node:
            return int(node["__bigint__"])
        return {k: _decode(v, arrays) for k, v in node.items()}
    if isinstance(node, list):
        return [_decode(v, arrays) for v in node]
    return node


def save_checkpoint(path: str | Path, tree: dict) -> None:
    """Write `tree` (nested dicts/lists of arrays, numbers, strings) to `path` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict = {}
    meta = orjson.dumps(_encode(tree, "", arrays))
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, **{_META: np.frombuffer(meta, dtype=np.uint8)}, **arrays)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: str | Path) -> dict:
    """Inverse of save_checkpoint; a missing or corrupt file is a UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        meta = orjson.loads(arrays.pop(_META).tobytes())
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, orjson.JSONDecodeError) as err:
        raise UserError(f"checkpoint {path} is not a readable k1 checkpoint ({type(err).__name__})") from None
    return _decode(meta, arrays)
