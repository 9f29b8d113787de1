"""llama.cpp rounding emulation: the quantizers against ggml's own, the forward against llama.cpp."""
import ctypes
import dataclasses
from pathlib import Path

import numpy as np
import pytest

from backends.student.forward_numpy import numpy_logits
from backends.student.ggml_numerics import (
    activation_rounding, bf16_roundtrip, llama_cpp_arithmetic, q8_0_roundtrip, q8_K_roundtrip,
)
from backends.student.gguf_loader import load_gguf
from backends.student.hf_loader import load_hf_dir
from backends.student.layer_stack import stack_layers
from k1core.errors import UserError
from tiny_models import random_weights, tiny_config, write_gguf

Q8_0_BLOCK = np.dtype([("d", "<f2"), ("qs", "i1", 32)])
Q8_K_BLOCK = np.dtype([("d", "<f4"), ("qs", "i1", 256), ("bsums", "<i2", 16)])


def activation_rows(seed: int = 0) -> np.ndarray:
    """Heavy-tailed rows at three scales, with all-zero blocks and exact .5 ties mixed in."""
    rng = np.random.default_rng(seed)
    rows = [(rng.standard_normal(4864) * rng.exponential(1.0, 4864) * s).astype(np.float32) for s in (1e-3, 1.0, 60.0)]
    rows[0][:256] = 0.0
    rows.append((np.round(np.linspace(-127.0, 127.0, 4864) * 2) / 2).astype(np.float32))  # q lands on .5
    return np.stack(rows)  # (4, 4864)


@pytest.fixture(scope="module")
def ggml_cpu():
    """ggml's CPU library as shipped with llama-cpp-python (its quantize_row_* are what mul_mat runs)."""
    llama_cpp = pytest.importorskip("llama_cpp")
    path = Path(llama_cpp.__file__).parent / "lib" / "libggml-cpu.so"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    lib = ctypes.CDLL(str(path))
    lib.ggml_cpu_init()
    return lib


def ggml_roundtrip(lib, fn: str, x: np.ndarray, block: np.dtype, size: int) -> np.ndarray:
    """x quantized by ggml's `fn` and dequantized from its blocks (qs * d)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    out = np.zeros(x.size // size, dtype=block)
    getattr(lib, fn)(x.ctypes.data_as(ctypes.c_void_p), out.ctypes.data_as(ctypes.c_void_p), ctypes.c_int64(x.size))
    return (out["qs"].astype(np.float32) * out["d"].astype(np.float32)[:, None]).reshape(x.shape)


def test_q8_0_matches_ggml_bit_for_bit(ggml_cpu):
    x = activation_rows()
    assert np.array_equal(q8_0_roundtrip(x), ggml_roundtrip(ggml_cpu, "quantize_row_q8_0", x, Q8_0_BLOCK, 32))


def test_q8_K_matches_ggml_bit_for_bit(ggml_cpu):
    x = activation_rows(1)
    assert np.array_equal(q8_K_roundtrip(x), ggml_roundtrip(ggml_cpu, "quantize_row_q8_K", x, Q8_K_BLOCK, 256))


@pytest.mark.parametrize("roundtrip, size, stored", [(q8_0_roundtrip, 32, np.float16), (q8_K_roundtrip, 256, np.float32)])
def test_quantizers_err_by_half_a_step_plus_the_stored_scale_error(roundtrip, size, stored):
    x = activation_rows(2)
    blocks = x.reshape(len(x), -1, size).astype(np.float64)
    step = np.abs(blocks).max(-1, keepdims=True) / 127
    scale_err = np.abs(step.astype(stored).astype(np.float64) - step)  # Q8_0 keeps its scale in fp16
    err = np.abs(roundtrip(x).reshape(blocks.shape) - blocks)
    assert np.all(err <= 0.5 * step + 127 * scale_err + 1e-6 * step)
    assert np.all(err[step[..., 0] == 0] == 0)
    assert np.abs(roundtrip(x) - x).max() > 0


def test_bf16_rounds_to_nearest_even():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    x = activation_rows(3)
    x[0, :3] = [1.0 + 2.0 ** -8, 1.0 + 3 * 2.0 ** -8, -0.0]  # exact ties: to even, both ways
    assert np.array_equal(bf16_roundtrip(x), x.astype(ml_dtypes.bfloat16).astype(np.float32))


def test_unemulated_weight_type_is_a_user_error():
    with pytest.raises(UserError, match="blk.0.ffn_down.*IQ2_XXS"):
        activation_rounding("IQ2_XXS", "blk.0.ffn_down")


def test_hf_model_has_no_tensor_types(tiny_files):
    hf_dir, _, _ = tiny_files["qwen2"]
    with pytest.raises(UserError, match="tensor types"):
        llama_cpp_arithmetic(load_hf_dir(hf_dir))


def test_forward_with_llama_cpp_rounding_matches_llama_cpp_on_a_quantized_tiny_model(tmp_path, tiny_tok):
    """Q5_0 q/k/o/gate/up/down beside Q8_0 v and embedding (one fused product, two roundings).

    A few layers are too shallow for float32 summation order to cascade through the 8-bit
    rounding, so the emulation must land on llama.cpp's logits to float32 noise.
    """
    llama_cpp = pytest.importorskip("llama_cpp")
    cfg = dataclasses.replace(tiny_config("qwen2", tiny_tok.get_vocab_size() + 12), dim=64, ffn_dim=96,
                              head_dim=16, n_layers=3)
    weights = random_weights(cfg, seed=3)
    types = {n: "Q8_0" if ".v_proj." in n or "embed" in n else "Q5_0" for n, a in weights.items() if a.ndim == 2}
    path = write_gguf(cfg, weights, tiny_tok, tmp_path / "q.gguf", types)
    ids = tiny_tok.encode("the cat sat on the mat. what is 2 + 3 ? answer: yes the cat").ids
    llm = llama_cpp.Llama(str(path), n_ctx=64, logits_all=True, verbose=False, n_threads=1)
    llm.eval(ids)
    ref = np.array(llm.scores[:len(ids)], dtype=np.float32)
    llm.close()
    model = load_gguf(path)
    layers, head = stack_layers(model)
    plain = numpy_logits(model.config, layers, head, np.array([ids]))[0]
    emulated = numpy_logits(model.config, layers, head, np.array([ids]), llama_cpp=llama_cpp_arithmetic(model))[0]
    assert np.abs(emulated - ref).max() < 2e-5 * np.abs(ref).max()
    assert np.abs(plain - ref).max() > 100 * np.abs(emulated - ref).max()  # the rounding is what differed
