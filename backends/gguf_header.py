"""Check a GGUF file's header and layout before llama.cpp sees it.

llama.cpp may abort the whole process on a malformed file, so a corrupt or truncated download
must be caught here and reported as one line naming the file. We walk the header (magic,
version, metadata, tensor table) with bounds checks on every read and confirm that the file is
long enough to hold every tensor's data. Scalar and string metadata are kept (the chat template
lives there); arrays (the vocabulary) are skipped.
"""
from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path

from k1core.errors import UserError

MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32
MAX_DIMS = 4
SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
STRING, ARRAY = 8, 9


class GGUFError(UserError):
    """The file is not a complete, well-formed GGUF."""


@dataclass(frozen=True)
class GGUFHeader:
    """What the header says: metadata (scalars and strings), tensor count, where the data ends."""

    version: int
    metadata: dict
    tensor_count: int
    data_offset: int
    data_end: int


class _Cursor:
    """Bounds-checked little-endian reads over a byte buffer."""

    def __init__(self, buf):
        self.buf, self.pos = buf, 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.buf):
            raise GGUFError(f"truncated at byte {self.pos} (wanted {n} more bytes)")
        chunk = self.buf[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def scalar(self, fmt: str):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        raw = self.take(self.scalar("<Q"))
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise GGUFError(f"invalid UTF-8 string ending at byte {self.pos}") from None

    def value(self, kind: int, depth: int = 0):
        if kind in SCALARS:
            return self.scalar(SCALARS[kind])
        if kind == STRING:
            return self.string()
        if kind == ARRAY and depth == 0:
            item_kind, count = self.scalar("<I"), self.scalar("<Q")
            if count > len(self.buf) - self.pos:  # every item takes at least one byte
                raise GGUFError(f"array of {count} items cannot fit in the file")
            for _ in range(count):
                self.value(item_kind, depth + 1)
            return None
        raise GGUFError(f"unknown metadata value type {kind} at byte {self.pos}")


def _tensor_nbytes(dims: list[int], ggml_type: int) -> int:
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType  # the llm extra ships gguf

    try:
        block_size, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(ggml_type)]
    except (ValueError, KeyError):
        raise GGUFError(f"unknown tensor type {ggml_type}") from None
    elements = 1
    for d in dims:
        elements *= d
    if elements % block_size:
        raise GGUFError(f"tensor of {elements} elements is not a whole number of {block_size}-blocks")
    return elements // block_size * type_size


def parse_header(buf) -> GGUFHeader:
    """Parse a GGUF header from bytes (or an mmap); GGUFError if anything is out of place."""
    cur = _Cursor(buf)
    if cur.take(4) != MAGIC:
        raise GGUFError("not a GGUF file (bad magic bytes)")
    version = cur.scalar("<I")
    if version not in SUPPORTED_VERSIONS:
        raise GGUFError(f"unsupported GGUF version {version}")
    tensor_count, kv_count = cur.scalar("<Q"), cur.scalar("<Q")
    if tensor_count > len(buf) or kv_count > len(buf):
        raise GGUFError(f"implausible counts ({tensor_count} tensors, {kv_count} metadata keys)")
    metadata = {}
    for _ in range(kv_count):
        key = cur.string()
        metadata[key] = cur.value(cur.scalar("<I"))
    tensors = []
    for _ in range(tensor_count):
        name, n_dims = cur.string(), cur.scalar("<I")
        if not 1 <= n_dims <= MAX_DIMS:
            raise GGUFError(f"tensor {name!r} has {n_dims} dimensions")
        dims = [cur.scalar("<Q") for _ in range(n_dims)]
        ggml_type, offset = cur.scalar("<I"), cur.scalar("<Q")
        tensors.append((offset, _tensor_nbytes(dims, ggml_type)))
    alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise GGUFError(f"invalid general.alignment {alignment!r}")
    data_offset = -(-cur.pos // alignment) * alignment
    data_end = data_offset + max((offset + nbytes for offset, nbytes in tensors), default=0)
    if data_end > len(buf):
        raise GGUFError(f"truncated: tensor data needs {data_end} bytes, the file has {len(buf)}")
    return GGUFHeader(version, metadata, tensor_count, data_offset, data_end)


def read_header(path: Path) -> GGUFHeader:
    """Validated header of the GGUF at `path`; one-line UserError naming the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"model file not found: {path}")
    try:
        with open(path, "rb") as f:
            if path.stat().st_size == 0:
                raise GGUFError("empty file")
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                return parse_header(buf)
    except GGUFError as err:
        raise GGUFError(f"{path} is not a valid GGUF model: {err}") from None
