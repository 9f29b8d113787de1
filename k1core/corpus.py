"""Byte-level corpus: the embedded tiny-Shakespeare default, a positional split, seeded batches."""
from __future__ import annotations

import lzma
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from k1core.errors import UserError

VOCAB_SIZE = 256  # bytes: any file is a valid corpus


@dataclass(frozen=True)
class Splits:
    """Train/val/test as contiguous uint8 slices of the corpus (90/5/5 by position)."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def embedded_corpus() -> bytes:
    """The tiny-Shakespeare text shipped (xz-compressed) inside the package."""
    blob = resources.files("k1core").joinpath("assets/tinyshakespeare.txt.xz").read_bytes()
    return lzma.decompress(blob)


def load_corpus(path: str | Path | None = None) -> np.ndarray:
    """Bytes of `path` (any file), or of the embedded corpus when path is None, as uint8."""
    if path is None:
        raw = embedded_corpus()
    else:
        p = Path(path)
        if not p.is_file():
            raise UserError(f"data file not found: {p}")
        raw = p.read_bytes()
    return np.frombuffer(raw, dtype=np.uint8)


def split_corpus(data: np.ndarray, min_len: int = 2) -> Splits:
    """Deterministic 90/5/5 split by position; each part must hold at least `min_len` bytes."""
    n = len(data)
    a, b = int(n * 0.90), int(n * 0.95)
    splits = Splits(data[:a], data[a:b], data[b:])
    for name in ("train", "val", "test"):
        if len(getattr(splits, name)) < min_len:
            raise UserError(
                f"corpus of {n} bytes is too small: the {name} split needs at least {min_len} bytes"
            )
    return splits


def sample_batch(data: np.ndarray, batch_size: int, context: int, rng: np.random.Generator):
    """Random windows: inputs x and next-byte targets y, both (B, T) int64."""
    starts = rng.integers(0, len(data) - context - 1 + 1, size=batch_size)
    idx = starts[:, None] + np.arange(context + 1)[None, :]  # (B, T+1)
    win = data[idx].astype(np.int64)
    return win[:, :-1], win[:, 1:]


def eval_batches(data: np.ndarray, batch_size: int, context: int, max_batches: int):
    """Fixed, evenly spaced windows over `data` so every evaluation sees the same bytes."""
    n_windows = min(max_batches * batch_size, max(1, len(data) - context - 1))
    starts = np.linspace(0, len(data) - context - 1, n_windows).astype(np.int64)
    for i in range(0, n_windows, batch_size):
        idx = starts[i : i + batch_size, None] + np.arange(context + 1)[None, :]
        win = data[idx].astype(np.int64)
        yield win[:, :-1], win[:, 1:]


def encode(text: str) -> np.ndarray:
    """UTF-8 bytes of `text` as token ids."""
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int64)


def decode(ids) -> str:
    """Token ids back to text; invalid UTF-8 (a model can emit any byte) becomes U+FFFD."""
    return bytes(int(i) for i in ids).decode("utf-8", errors="replace")
