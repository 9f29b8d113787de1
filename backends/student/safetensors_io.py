"""Read and write .safetensors with numpy only (bf16 widened to float32), with errors naming the file.

The format is an 8-byte little-endian header length, a JSON header {name: {dtype, shape,
data_offsets}} and the raw data; parsing it ourselves handles bf16, which numpy lacks.
"""
from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import orjson

from k1core.errors import UserError

_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32,
           "BF16": np.uint16, "U8": np.uint8, "I8": np.int8, "BOOL": np.bool_}


def read_safetensors(path: str | Path) -> dict[str, np.ndarray]:
    """All tensors of a safetensors file; floating types come back as float32."""
    path = Path(path)
    data = path.read_bytes()
    if len(data) < 8:
        raise UserError(f"{path}: truncated safetensors file ({len(data)} bytes)")
    (header_len,) = struct.unpack("<Q", data[:8])
    if 8 + header_len > len(data):
        raise UserError(f"{path}: truncated safetensors file (header says {header_len} bytes, file has {len(data) - 8})")
    try:
        header = orjson.loads(data[8:8 + header_len])
    except orjson.JSONDecodeError as err:
        raise UserError(f"{path}: not a safetensors file (bad header: {err})") from None
    body = memoryview(data)[8 + header_len:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = info.get("dtype")
        if dtype not in _DTYPES:
            raise UserError(f"{path}: tensor {name} has unsupported dtype {dtype}")
        start, end = info["data_offsets"]
        if end > len(body):
            raise UserError(f"{path}: truncated safetensors file (tensor {name} ends past the data)")
        arr = np.frombuffer(body[start:end], dtype=_DTYPES[dtype]).reshape(info["shape"])
        if dtype == "BF16":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        elif arr.dtype.kind == "f":
            arr = arr.astype(np.float32)
        out[name] = arr
    return out


def write_safetensors(path: str | Path, tensors: dict[str, np.ndarray], metadata: dict | None = None) -> None:
    """Write float32 tensors (and any metadata strings) atomically to a safetensors file."""
    header, chunks, pos = {}, [], 0
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [pos, pos + arr.nbytes]}
        chunks.append(arr.tobytes())
        pos += arr.nbytes
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    head = orjson.dumps(header)
    head += b" " * (-len(head) % 8)
    tmp = Path(f"{path}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(struct.pack("<Q", len(head)) + head)
        for chunk in chunks:
            fh.write(chunk)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
