"""atomic_gguf_writer: the destination holds the old file or the complete new one, never a partial write."""
from __future__ import annotations

import numpy as np
import pytest

from backends.export.atomic_gguf import atomic_gguf_writer
from backends.student.gguf_loader import open_gguf


def write_one_tensor(writer, values: np.ndarray) -> None:
    writer.add_tensor("w", values)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()


def test_success_replaces_the_destination(tmp_path):
    out = tmp_path / "m.gguf"
    out.write_bytes(b"old")
    with atomic_gguf_writer(out, "llama") as writer:
        write_one_tensor(writer, np.arange(4, dtype=np.float32))
    reader = open_gguf(out)
    np.testing.assert_array_equal(np.asarray(reader.tensors[0].data), np.arange(4, dtype=np.float32))
    assert not (tmp_path / "m.gguf.tmp").exists()


def test_failure_midway_keeps_the_old_file_and_removes_the_temp(tmp_path):
    out = tmp_path / "m.gguf"
    out.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_gguf_writer(out, "llama") as writer:
            write_one_tensor(writer, np.arange(4, dtype=np.float32))
            assert (tmp_path / "m.gguf.tmp").exists()
            raise RuntimeError("disk full")
    assert out.read_bytes() == b"old"
    assert not (tmp_path / "m.gguf.tmp").exists()
