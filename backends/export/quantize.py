"""Quantize a GGUF with llama.cpp's own quantizer (llama_model_quantize), from Python.

K-quants (Q4_K_M, Q5_K_M) mix types per tensor by llama.cpp's rules, so only llama.cpp can make
them the way users expect. The call runs in a child process: llama.cpp aborts the whole process
on some malformed inputs (GGML_ASSERT) and logs to stderr, and neither may reach the caller.
The child writes to `<out>.tmp` and the parent renames, so a failure never leaves a valid-looking file.

`q4_k_m_lora_q8` is Q4_K_M with every tensor a LoRA adapter can touch (attention and MLP
projections) kept at Q8_0 through llama.cpp's per-tensor type overrides: a rank-8 delta is
smaller than a Q4_K grid step, and this keeps it while the token embedding stays 4-bit.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from backends.gguf_header import read_header
from k1core.errors import UserError

# Our names -> llama.cpp's LLAMA_FTYPE_* constants (llama.h).
QUANT_TYPES = {"q4_k_m": "LLAMA_FTYPE_MOSTLY_Q4_K_M", "q4_k_m_lora_q8": "LLAMA_FTYPE_MOSTLY_Q4_K_M",
               "q5_k_m": "LLAMA_FTYPE_MOSTLY_Q5_K_M", "q6_k": "LLAMA_FTYPE_MOSTLY_Q6_K",
               "q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0", "f16": "LLAMA_FTYPE_MOSTLY_F16"}
# Tensor-name patterns (llama.cpp regex search) kept at Q8_0 per quantization: the LoRA target projections.
PROTECTED = {"q4_k_m_lora_q8": r"attn_(q|k|v|output)\.weight|ffn_(gate|up|down)\.weight"}
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def check_quant(quant: str) -> str:
    """The quant name lower-cased, or UserError listing the choices."""
    name = quant.lower()
    if name not in QUANT_TYPES:
        raise UserError(f"unknown quantization {quant!r}; choose one of {', '.join(QUANT_TYPES)}")
    return name


def quantize_gguf(src: str | Path, dst: str | Path, quant: str, n_threads: int = 2, timeout_s: float = 1800) -> Path:
    """`src` (F32/F16/Q8_0 GGUF) quantized to `quant` at `dst`; UserError with llama.cpp's reason on failure."""
    quant, src, dst = check_quant(quant), Path(src), Path(dst)
    read_header(src)  # a clear error for a missing, truncated or non-GGUF file before llama.cpp sees it
    tmp = dst.with_name(dst.name + ".tmp")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "backends.export.quantize", str(src), str(tmp), quant, str(n_threads)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        tmp.unlink(missing_ok=True)
        raise UserError(f"quantizing {src.name} to {quant} took longer than {timeout_s:.0f}s") from None
    if done.returncode != 0 or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        reason = lines[-1].strip() if lines else f"exit status {done.returncode}"
        raise UserError(f"llama.cpp could not quantize {src} to {quant}: {reason}")
    os.replace(tmp, dst)
    return dst


def _child(src: str, dst: str, quant: str, n_threads: str) -> int:
    """Runs in the child process: one llama_model_quantize call; its return code is ours."""
    import ctypes

    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, QUANT_TYPES[quant])
    params.nthread = int(n_threads)
    params.allow_requantize = True  # a Q8_0 input is legitimate; llama.cpp refuses it by default
    if quant in PROTECTED:  # a NULL-pattern entry ends llama.cpp's override list
        overrides = (llama_cpp.llama_model_tensor_override * 2)(
            llama_cpp.llama_model_tensor_override(PROTECTED[quant].encode(), llama_cpp.GGML_TYPE_Q8_0),
            llama_cpp.llama_model_tensor_override(None, 0))
        params.tt_overrides = ctypes.cast(overrides, ctypes.POINTER(llama_cpp.llama_model_tensor_override))
    status = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(params))
    if status != 0:
        print(f"llama_model_quantize returned {status}", file=sys.stderr)
    return int(status)


if __name__ == "__main__":
    sys.exit(_child(*sys.argv[1:5]))
