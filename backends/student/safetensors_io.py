"""Read and write .safetensors with numpy only (bf16 read as float32; written from float32 rounded to
nearest even), with errors naming the file.

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


def read_header(path: str | Path) -> tuple[dict, memoryview]:
    """The JSON header {name: {dtype, shape, data_offsets}} of a safetensors file and its data section."""
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
    return header, memoryview(data)[8 + header_len:]


def read_safetensors(path: str | Path) -> dict[str, np.ndarray]:
    """All tensors of a safetensors file; floating types come back as float32."""
    header, body = read_header(path)
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


def bf16_bits(values: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bit patterns (uint16), rounded to nearest, ties to even (as torch rounds)."""
    values = np.ascontiguousarray(values, dtype=np.float32)
    bits = values.view(np.uint32)
    rounded = ((bits + np.uint32(0x7FFF) + ((bits >> 16) & np.uint32(1))) >> 16).astype(np.uint16)
    return np.where(np.isnan(values), np.uint16(0x7FC0), rounded)  # the carry would turn some NaNs into inf


def write_safetensors(path: str | Path, tensors: dict[str, np.ndarray], metadata: dict | None = None,
                      dtype: str = "F32") -> None:
    """Write tensors as `dtype` ("F32", or "BF16": half the bytes, rounded to nearest) and any metadata
    strings atomically to a safetensors file."""
    if dtype not in ("F32", "BF16"):
        raise ValueError(f"write_safetensors writes F32 or BF16, not {dtype}")
    header, chunks, pos = {}, [], 0
    for name, arr in tensors.items():
        arr = bf16_bits(arr) if dtype == "BF16" else np.ascontiguousarray(arr, dtype=np.float32)
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [pos, pos + arr.nbytes]}
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
