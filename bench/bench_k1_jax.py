"""K-1 training step time on JAX against NumPy (the reference) and Numba, default K1Config.

All backends train from the same weights on the same batches in one process, timed in interleaved
rounds whose order rotates, so load from other processes falls on all of them alike. JAX's compile
time is reported apart from its steady-state steps. `jax` is the whole step in one program;
`jax-host-update` is the same model with only loss and gradients compiled and top-K credit, clipping
and AdamW run by the NumPy model's code on the host (JaxK1(update_on_device=False); its step is
also split into the device and host parts), to show what moving the update into the program buys.
Writes JSON under bench/results/.
Run: python -m bench.bench_k1_jax [--threads 2] [--rounds 6] [--steps 5]
"""
from __future__ import annotations

import argparse
import os
import platform
import time

from k1core.interleave import interleaved
from bench.results_file import write_result

BATCH = 12  # the harness's default batch
HOST_UPDATE = "-host-update"  # suffix: a JAX model with update_on_device off


def _summary(seconds: list[float], tokens_per_step: int) -> dict:
    import numpy as np
    ms = 1e3 * np.asarray(seconds)
    return {"median_ms": float(np.median(ms)), "min_ms": float(ms.min()), "n": len(ms),
            "tokens_per_s": tokens_per_step / (float(np.median(ms)) / 1e3)}


def run(backends: list[str], rounds: int, steps: int) -> dict:
    """Interleaved step timings of K-1 on each backend; the JAX step also split into device and host."""
    import numpy as np
    from k1core.corpus import load_corpus, sample_batch
    from k1core.k1 import build_k1
    from backends.compute import load_compute
    models = {name: build_k1(None, load_compute(name.removesuffix(HOST_UPDATE)))
              for name in backends}
    for name, model in models.items():
        if name.endswith(HOST_UPDATE):
            model.update_on_device = False
    context = next(iter(models.values())).cfg.context
    data, rng = load_corpus(), np.random.default_rng(0)
    batches = [sample_batch(data, BATCH, context, rng) for _ in range(rounds * steps + 1)]
    warmup = {}
    for name, model in models.items():  # JAX compiles here, Numba loads its cache
        start = time.perf_counter()
        model.train_step(*batches[0])
        warmup[name] = time.perf_counter() - start
    jax_split = {"device_s": [], "host_s": []}
    compile_steps = 0

    def stepper(name, model):
        """One training step per call, on the same batches for every model; False when it compiled."""
        own_batches, host_update = iter(batches[1:]), name.endswith(HOST_UPDATE)

        def step():
            nonlocal compile_steps
            x, y = next(own_batches)
            compiled = getattr(model, "compiles", 0)
            start = time.perf_counter()
            if host_update:
                routed = model.gradients(x, y, model.exploration())
                mid = time.perf_counter()
                model.credit_and_update(routed)
            else:
                model.train_step(x, y)
            end = time.perf_counter()
            if getattr(model, "compiles", 0) > compiled:  # a compile step is not a steady-state step
                compile_steps += 1
                return False
            if host_update:
                jax_split["device_s"].append(mid - start)
                jax_split["host_s"].append(end - mid)
            return True
        return step

    load_before = os.getloadavg()
    times = interleaved({name: stepper(name, model) for name, model in models.items()}, rounds,
                        lambda step: step(), steps)
    tokens = BATCH * context
    out = {"config": "default K1Config", "batch": BATCH, "context": context, "host": platform.node(),
           "load_avg_before": load_before, "load_avg_after": os.getloadavg(), "warmup_s": warmup,
           "steps": {name: _summary(ts, tokens) for name, ts in times.items()}}
    if jax_split["device_s"]:
        out["jax" + HOST_UPDATE] = {"device_ms_median": 1e3 * float(np.median(jax_split["device_s"])),
                                    "host_ms_median": 1e3 * float(np.median(jax_split["host_s"]))}
    if "jax" in models:
        jx = models["jax"]
        out["jax"] = {"compiles": jx.compiles, "compile_seconds": jx.compile_seconds,
                      "timed_steps_that_compiled": compile_steps,
                      "rows_per_depth": {str(k): v for k, v in jx.rows.items()}, "block": jx.block}
    if "numpy" in models:
        ref = out["steps"]["numpy"]["median_ms"]
        for name, s in out["steps"].items():
            s["speedup_vs_numpy"] = ref / s["median_ms"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="threads for BLAS/XLA/Numba (default: all cores)")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--steps", type=int, default=5, help="steps per backend per round")
    parser.add_argument("--backends", default=f"numpy,numba,jax,jax{HOST_UPDATE}")
    args = parser.parse_args()
    from backends.threads import configure_threads
    threads = configure_threads(args.threads)  # before numpy / jax start their pools
    result = run(args.backends.split(","), args.rounds, args.steps) | {"threads": threads}
    for name, s in result["steps"].items():
        print(f"{name:6s} median {s['median_ms']:7.1f} ms  min {s['min_ms']:7.1f} ms  "
              f"{s['tokens_per_s']:8.0f} tok/s  x{s.get('speedup_vs_numpy', float('nan')):.2f} vs numpy  "
              f"(first step {result['warmup_s'][name]:.1f} s)")
    if "jax" + HOST_UPDATE in result:
        j = result["jax" + HOST_UPDATE]
        print(f"jax{HOST_UPDATE}: device {j['device_ms_median']:.1f} ms + host {j['host_ms_median']:.1f} ms per step")
    if "jax" in result:
        j = result["jax"]
        print(f"jax: {j['compiles']} compile(s), {sum(j['compile_seconds'].values()):.1f} s")
    print(f"load average before {result['load_avg_before']}, after {result['load_avg_after']}")
    print(f"wrote {write_result('k1_jax', result)}")


if __name__ == "__main__":
    main()
