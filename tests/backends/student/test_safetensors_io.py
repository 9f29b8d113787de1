"""bf16 safetensors: rounding checked against ml_dtypes, files read back by us and by the safetensors library."""
from __future__ import annotations

import numpy as np
import pytest

from backends.student.safetensors_io import bf16_bits, read_header, read_safetensors, write_safetensors

EDGES = np.array([0.0, -0.0, 1.0, -1.5, np.inf, -np.inf, np.finfo(np.float32).max, np.finfo(np.float32).tiny,
                  1e-40, -1e-40,  # subnormals
                  np.float32(1 + 2 ** -8), np.float32(1 + 3 * 2 ** -8),  # ties: to even, down then up
                  np.float32(1 + 2 ** -8 + 2 ** -20)], np.float32)  # just past a tie: up


def values(n=4096, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([EDGES, (rng.standard_normal(n) * 10.0 ** rng.integers(-6, 6, n)).astype(np.float32)])


def read_back(x: np.ndarray) -> np.ndarray:
    """The float32 values of x's bf16 bit patterns."""
    return (bf16_bits(x).astype(np.uint32) << 16).view(np.float32)


def test_bf16_rounds_to_nearest_even_like_ml_dtypes():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    x = values()
    assert np.array_equal(bf16_bits(x), x.astype(ml_dtypes.bfloat16).view(np.uint16))
    assert bf16_bits(np.array([1 + 2 ** -8], np.float32))[0] == 0x3F80  # a tie goes to the even 1.0
    assert np.isnan(read_back(np.array([np.nan, -np.nan], np.float32))).all()


def test_a_bf16_file_reads_back_as_the_rounded_values_at_half_the_size(tmp_path):
    tensors = {"a": values()[:3900].reshape(300, 13), "b": values(seed=1)[:64].reshape(8, 8)}
    write_safetensors(tmp_path / "f32.safetensors", tensors)
    write_safetensors(tmp_path / "bf16.safetensors", tensors, metadata={"format": "pt"}, dtype="BF16")
    back = read_safetensors(tmp_path / "bf16.safetensors")
    for name, x in tensors.items():
        assert back[name].dtype == np.float32 and back[name].shape == x.shape
        assert np.array_equal(back[name], read_back(x), equal_nan=True)
        finite = np.isfinite(back[name]) & (np.abs(x) >= np.finfo(np.float32).tiny)  # float32's max rounds to inf
        assert np.all(np.abs(back[name][finite] - x[finite]) <= 2 ** -8 * np.abs(x[finite]))  # half an ulp of 7 bits
    header, _ = read_header(tmp_path / "bf16.safetensors")
    assert {header[n]["dtype"] for n in tensors} == {"BF16"} and header["__metadata__"] == {"format": "pt"}
    data = sum(x.size for x in tensors.values())
    sizes = [(tmp_path / f).stat().st_size for f in ("f32.safetensors", "bf16.safetensors")]
    assert sizes[0] - 4 * data == pytest.approx(sizes[1] - 2 * data, abs=64)  # the same header, half the data


def test_the_safetensors_library_reads_our_bf16_file(tmp_path):
    safetensors = pytest.importorskip("safetensors")
    pytest.importorskip("jax")
    x = values()[:512].reshape(16, 32)
    write_safetensors(tmp_path / "w.safetensors", {"w": x}, dtype="BF16")
    with safetensors.safe_open(str(tmp_path / "w.safetensors"), framework="flax") as f:
        w = f.get_tensor("w")
    assert str(w.dtype) == "bfloat16" and np.array_equal(np.asarray(w, np.float32), read_back(x), equal_nan=True)


def test_only_f32_and_bf16_are_written(tmp_path):
    with pytest.raises(ValueError, match="F32 or BF16"):
        write_safetensors(tmp_path / "x.safetensors", {"x": np.zeros(2, np.float32)}, dtype="F16")
