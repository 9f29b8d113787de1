"""Training speed of the baseline GPT at `k1 train`'s default configuration (d_model 128, 4 layers, 4 heads,
context 64, batch 12): ms/step (median and min after warmup), tokens/s, and optionally where the
time goes per kernel. Writes bench/results/gpt_train_<time>.json.

    python bench/bench_gpt_train.py [--steps 50] [--warmup 5] [--profile]
"""
from __future__ import annotations

import argparse
import cProfile
import os
import platform
import pstats
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from k1core.config import make_config  # noqa: E402
from k1core.corpus import load_corpus, sample_batch  # noqa: E402
from k1core.gpt_builder import build_gpt  # noqa: E402
from k1core.memory import keep_freed_memory  # noqa: E402
from bench.results_file import write_result  # noqa: E402


def time_steps(model, batches) -> np.ndarray:
    """Seconds per train_step over `batches`."""
    times = []
    for x, y in batches:
        t0 = time.perf_counter()
        model.train_step(x, y)
        times.append(time.perf_counter() - t0)
    return np.array(times)


def profile_steps(model, batches) -> list[tuple[str, float]]:
    """Milliseconds per step spent inside each k1core function (own time), largest first."""
    prof = cProfile.Profile()
    prof.enable()
    time_steps(model, batches)
    prof.disable()
    per_fn: dict[str, float] = {}
    for (file, _, fn), (_, _, own, _, _) in pstats.Stats(prof).stats.items():
        key = fn if "k1core" in file else "numpy/other: " + fn
        per_fn[key] = per_fn.get(key, 0.0) + own * 1e3 / len(batches)
    return sorted(per_fn.items(), key=lambda kv: -kv[1])[:15]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--profile", action="store_true", help="also print time per kernel")
    args = ap.parse_args()
    keep_freed_memory()
    cfg = make_config({"steps": 2000})
    model = build_gpt(cfg)
    data, rng = load_corpus(), np.random.default_rng(0)
    batches = [sample_batch(data, cfg.batch_size, cfg.context, rng) for _ in range(args.steps)]
    load_before = os.getloadavg()
    time_steps(model, batches[: args.warmup])
    secs = time_steps(model, batches)
    tokens = cfg.batch_size * cfg.context
    result = {
        "bench": "gpt_train", "config": {k: getattr(cfg, k) for k in
                                         ("d_model", "n_layers", "n_heads", "context", "batch_size")},
        "steps": args.steps, "warmup": args.warmup,
        "ms_per_step_median": float(np.median(secs) * 1e3), "ms_per_step_min": float(secs.min() * 1e3),
        "tokens_per_s_median": tokens / float(np.median(secs)), "tokens_per_s_best": tokens / float(secs.min()),
        "load_average_before": load_before, "load_average_after": os.getloadavg(),
        "numpy": np.__version__, "python": platform.python_version(), "machine": platform.machine(),
        "cpus": os.cpu_count(), "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
    }
    if args.profile:
        result["profile_ms_per_step"] = dict(profile_steps(model, batches[: min(20, args.steps)]))
    print(f"{'ms/step median':>16} {'ms/step min':>12} {'tok/s median':>13} {'tok/s best':>11}  load avg")
    print(f"{result['ms_per_step_median']:>16.1f} {result['ms_per_step_min']:>12.1f} "
          f"{result['tokens_per_s_median']:>13.0f} {result['tokens_per_s_best']:>11.0f}  "
          f"{load_before[0]:.2f} -> {result['load_average_after'][0]:.2f}")
    for name, ms in result.get("profile_ms_per_step", {}).items():
        print(f"  {ms:7.2f} ms  {name}")
    print(f"wrote {write_result('gpt_train', result)}")


if __name__ == "__main__":
    main()
