"""The LoRA step's dominant matrix products, NumPy/OpenBLAS against XLA, at 1 and 2 threads.

Qwen2.5-Coder-0.5B shapes, one sequence of 256 tokens: per layer the four frozen products forward
(x @ W, weights stored (in, out) as layer_stack keeps them) and their input gradients backward
(dy @ W.T), plus the vocabulary product at the 255 loss positions forward and backward. The frozen
weights need no weight gradient, and the LoRA products are rank 8, so these are the step's FLOPs.
Each (library, threads) pair runs in its own process with its thread count fixed before import.

    python -m bench.bench_matmul --threads 1 2 --repeats 3
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import orjson

ROOT = Path(__file__).resolve().parents[1]
D, Q, KV, F, V, T, LAYERS = 896, 896, 128, 4864, 151936, 256, 24

# name -> (rows, inner, cols, weight shape, weight transposed in the product, times per step)
PRODUCTS = {
    "qkv forward": (T, D, Q + 2 * KV, (D, Q + 2 * KV), False, LAYERS),
    "qkv input grad": (T, Q + 2 * KV, D, (D, Q + 2 * KV), True, LAYERS),
    "o forward": (T, Q, D, (Q, D), False, LAYERS),
    "o input grad": (T, D, Q, (Q, D), True, LAYERS),
    "gate|up forward": (T, D, 2 * F, (D, 2 * F), False, LAYERS),
    "gate|up input grad": (T, 2 * F, D, (D, 2 * F), True, LAYERS),
    "down forward": (T, F, D, (F, D), False, LAYERS),
    "down input grad": (T, D, F, (F, D), True, LAYERS),
    "vocab forward": (T - 1, D, V, (V, D), True, 1),
    "vocab input grad": (T - 1, V, D, (V, D), False, 1),
}


def thread_env(threads: int) -> dict:
    """Environment that pins OpenBLAS and XLA's CPU runtime to `threads` threads."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    multi = "true" if threads > 1 else "false"
    env["XLA_FLAGS"] = f"--xla_cpu_multi_thread_eigen={multi} intra_op_parallelism_threads={threads}"
    return env


def operands(rows, inner, w_shape, rng):
    a = rng.standard_normal((rows, inner), dtype=np.float32)
    w = rng.standard_normal(w_shape, dtype=np.float32) * np.float32(inner ** -0.5)
    return a, w


def time_numpy(repeats: int) -> dict:
    rng, out = np.random.default_rng(0), {}
    for name, (rows, inner, cols, w_shape, transposed, _) in PRODUCTS.items():
        a, w = operands(rows, inner, w_shape, rng)
        fn = (lambda: a @ w.T) if transposed else (lambda: a @ w)
        fn()
        out[name] = min(timed(fn) for _ in range(repeats))
    return out


def time_xla(repeats: int) -> dict:
    import jax
    import jax.numpy as jnp

    rng, out = np.random.default_rng(0), {}
    for name, (rows, inner, cols, w_shape, transposed, _) in PRODUCTS.items():
        a, w = (jax.device_put(x) for x in operands(rows, inner, w_shape, rng))
        product = jax.jit((lambda x, y: x @ y.T) if transposed else (lambda x, y: x @ y))
        product(a, w).block_until_ready()  # compile
        out[name] = min(timed(lambda: product(a, w).block_until_ready()) for _ in range(repeats))
    return out


def timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds / wall seconds): the second says how many cores the library kept busy."""
    tick, cpu = time.perf_counter(), time.process_time()
    fn()
    wall = time.perf_counter() - tick
    return wall, (time.process_time() - cpu) / wall


def child(library: str, repeats: int) -> None:
    seconds = time_numpy(repeats) if library == "numpy" else time_xla(repeats)
    print("RESULT " + orjson.dumps(seconds).decode())


def pin_to(threads: int):
    """preexec_fn that binds the child to `threads` cores (Linux): XLA's CPU runtime does not honour
    its thread flags everywhere, so affinity is what makes "1 thread" mean one core for both."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cores = sorted(os.sched_getaffinity(0))[:threads]
    return lambda: os.sched_setaffinity(0, cores)


def measure(library: str, threads: int, repeats: int) -> dict:
    cmd = [sys.executable, "-m", "bench.bench_matmul", "--child", library, "--repeats", str(repeats)]
    run = subprocess.run(cmd, capture_output=True, text=True, env=thread_env(threads), cwd=ROOT, timeout=3600,
                         preexec_fn=pin_to(threads))
    lines = [ln for ln in run.stdout.splitlines() if ln.startswith("RESULT ")]
    if run.returncode or not lines:
        raise SystemExit(f"bench_matmul: {library} x{threads} failed:\n{run.stderr[-2000:]}")
    return orjson.loads(lines[-1][7:])


def gflops(name: str, seconds: float) -> float:
    """Achieved GFLOP/s of one product (2 * rows * inner * cols floating-point operations)."""
    rows, inner, cols = PRODUCTS[name][:3]
    return 2.0 * rows * inner * cols / seconds / 1e9


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=3, help="best of this many timings per product")
    ap.add_argument("--child", choices=["numpy", "xla"])
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "bench_matmul.json"))
    args = ap.parse_args()
    if args.child:
        return child(args.child, args.repeats)
    load_before = os.getloadavg()
    runs = {}
    for threads in args.threads:
        for library in ("numpy", "xla"):  # alternate so background load hits both alike
            runs[f"{library} x{threads}"] = measure(library, threads, args.repeats)
    report = {"benchmark": "LoRA-step matrix products, Qwen2.5-Coder-0.5B shapes, 1 x 256 tokens, float32",
              "numpy_blas": np.show_config(mode="dicts")["Build Dependencies"]["blas"].get("name"),
              "cpu_count": os.cpu_count(), "load_average_before": load_before,
              "load_average_after": os.getloadavg(), "products": {}, "per_step_s": {}}
    print("GFLOP/s per product, (cores busy) = CPU time / wall time of the best run")
    print(f"{'product':>20} {'GFLOP':>7}" + "".join(f" {k:>17}" for k in runs))
    for name in PRODUCTS:
        rows, inner, cols = PRODUCTS[name][:3]
        entry = {"shape": [rows, inner, cols], "per_step": PRODUCTS[name][5],
                 **{k: {"s": r[name][0], "gflops": gflops(name, r[name][0]), "cores_busy": r[name][1]}
                    for k, r in runs.items()}}
        report["products"][name] = entry
        print(f"{name:>20} {2 * rows * inner * cols / 1e9:7.2f}"
              + "".join(f" {gflops(name, r[name][0]):11.1f} ({r[name][1]:3.1f})" for r in runs.values()))
    for k, r in runs.items():
        report["per_step_s"][k] = sum(r[n][0] * PRODUCTS[n][5] for n in PRODUCTS)
    print("step total (s): " + ", ".join(f"{k} {s:.2f}" for k, s in report["per_step_s"].items()))
    print(f"load average before {load_before}, after {report['load_average_after']}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
