"""The GGUF pre-check: agrees with the gguf package's reader, and every malformed input is one GGUFError."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

gguf = pytest.importorskip("gguf")

from backends.gguf_header import GGUFError, parse_header, read_header  # noqa: E402
from k1core.errors import UserError  # noqa: E402

TEMPLATE = "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}"


def tiny_gguf(path):
    """A real two-tensor GGUF written by the gguf package (f32 and q8_0 blocks)."""
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_string("tokenizer.chat_template", TEMPLATE)
    writer.add_uint32("test.count", 7)
    writer.add_array("test.list", [1, 2, 3])
    writer.add_tensor("a", np.arange(12, dtype=np.float32).reshape(3, 4))
    writer.add_tensor("b", np.ones((2, 5), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf")


def test_agrees_with_the_gguf_reader(tiny):
    header = read_header(tiny)
    reader = gguf.GGUFReader(str(tiny))
    assert header.tensor_count == len(reader.tensors) == 2
    assert header.data_offset == reader.data_offset
    assert header.data_end == max(t.data_offset + t.n_bytes for t in reader.tensors)
    assert header.data_end <= tiny.stat().st_size  # the writer pads the file to the alignment
    assert header.metadata["tokenizer.chat_template"] == TEMPLATE
    assert header.metadata["test.count"] == 7 and header.metadata["test.list"] is None


def test_every_truncation_is_a_clear_error_naming_the_file(tiny, tmp_path):
    data, end = tiny.read_bytes(), read_header(tiny).data_end
    for cut in sorted({0, 3, 4, 8, 23, 24, 60, end // 2, end - 1}):
        path = tmp_path / f"cut{cut}.gguf"
        path.write_bytes(data[:cut])
        with pytest.raises(UserError, match=f"{path}.*(not a valid GGUF|empty)"):
            read_header(path)


def test_random_bytes_and_missing_file(tmp_path):
    noise = tmp_path / "noise.gguf"
    noise.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(GGUFError, match="noise.gguf is not a valid GGUF model: not a GGUF file"):
        read_header(noise)
    with pytest.raises(UserError, match="not found"):
        read_header(tmp_path / "absent.gguf")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_random_bytes_never_escape_as_other_errors(data):
    try:
        parse_header(b"GGUF" + data)
    except GGUFError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_fuzz_corrupted_real_header(tiny, data):
    raw = bytearray(tiny.read_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, 400))] = data.draw(st.integers(0, 255))
    raw = raw[:data.draw(st.integers(0, len(raw)))]
    try:
        header = parse_header(bytes(raw))
    except GGUFError:
        return
    assert header.data_end <= len(raw)
