"""Training and generation speed of the GPT and K-1 on each k1 backend, against the GPT in PyTorch (CPU).

Every (model, backend) pair is built in one process and timed in interleaved rounds (the order
rotates every round), so load from other processes on a shared machine falls on all of them alike;
ratios within one run are the result. Reports median and minimum ms/step, tokens/s, ratios against
the faster torch GPT (eager or torch.compile), K-1 tokens/s over GPT tokens/s (parameter counts printed: the default K-1 and the
default GPT are within 1% of each other), compile/warm-up time separately, and the load average;
writes JSON under bench/results/. A pair whose build or first step raises is reported unavailable
with the reason (e.g. a backend without a K-1 yet), so a new backend is picked up without edits here.
Run: python -m bench.bench_backends [--threads 2] [--rounds 6] [--models gpt,k1]
"""
from __future__ import annotations

import argparse
import os
import platform
import time
from typing import Callable

from k1core.interleave import interleaved
from bench.results_file import write_result

GPT = dict(d_model=128, n_layers=4, n_heads=4, context=64)  # `k1 train`'s default GPT
BATCH = 12  # sequences per step for both models (k1 train's default batch)
SCHEDULE_STEPS = 10_000  # lr schedule length; K-1 stays in phase 1 (no structural ops mid-benchmark)
MODELS = ("gpt", "k1")
TORCH_BACKENDS = ("torch", "torch-compile")  # the reference GPT in PyTorch, eager and through torch.compile


def _builders(models: list[str], backends: list[str], gpt: dict, batch: int,
              k1_overrides: dict) -> dict[str, Callable]:
    """'model/backend' -> zero-argument constructor; every backend of a model starts from the same weights."""
    from backends.compute import load_compute
    from k1core.gpt import GPTConfig
    from k1core.optim import AdamWConfig
    gpt_cfg, optim = GPTConfig(**gpt), AdamWConfig(warmup_steps=10, total_steps=SCHEDULE_STEPS)
    out = {}
    for backend in backends:
        if "gpt" in models:
            if backend in TORCH_BACKENDS:
                from bench.torch_gpt import TorchGPT
                out[f"gpt/{backend}"] = lambda compiled=backend == "torch-compile": TorchGPT(gpt_cfg, optim,
                                                                                          compiled=compiled)
            else:
                out[f"gpt/{backend}"] = lambda backend=backend: load_compute(backend).build_gpt(gpt_cfg, optim, 0)
        if "k1" in models and backend not in TORCH_BACKENDS:
            out[f"k1/{backend}"] = lambda backend=backend: build_k1_for_bench(backend, gpt["context"], batch,
                                                                              k1_overrides)
    return out


def build_k1_for_bench(backend: str, context: int, batch: int, overrides: dict):
    """K-1 as `k1 train --model k1 --backend <backend>` builds it, through the model registry (so any
    backend its builder learns is benchmarked too): the default K1Config plus `overrides`."""
    from backends.compute import load_compute
    from k1core import registry
    from k1core.config import make_config
    run = make_config({"backend": backend, "context": context, "steps": SCHEDULE_STEPS, "batch_size": batch})
    return registry.builder("k1")(run, load_compute(backend), **overrides)


def param_count(model) -> int:
    """Live parameters (K-1 excludes free agent slots); the GPT's stats name the same number."""
    if hasattr(model, "param_count"):
        return int(model.param_count())
    if hasattr(model, "stats"):
        return int(model.stats()["params"])
    return int(sum(p.numel() for p in model.p.values()))  # the torch reference


def _generate(model, prompt, n_tokens: int):
    if hasattr(model, "torch"):  # the torch reference generates greedily and takes no temperature
        return model.generate(prompt, n_tokens)
    return model.generate(prompt, n_tokens, temperature=0.0)


def _build_all(builders: dict, batch) -> tuple[dict, dict, dict]:
    """(models, warm-up seconds, unavailable reasons): one train step and a short generation each."""
    models, warmup, unavailable = {}, {}, {}
    x, y = batch
    for name, build in builders.items():
        start = time.perf_counter()
        try:
            model = build()
            model.train_step(x, y)  # JAX compiles here; Numba loads its cache (or compiles)
            _generate(model, x[0, :8], 2)
        except Exception as err:  # noqa: BLE001 - any failure makes this pair unavailable, not the run
            unavailable[name] = f"{type(err).__name__}: {err}"
            continue
        models[name], warmup[name] = model, time.perf_counter() - start
    return models, warmup, unavailable


def bench(models_wanted: list[str], backends: list[str], rounds: int, steps: int, gen_tokens: int,
          gpt: dict = GPT, batch: int = BATCH, k1_overrides: dict | None = None) -> dict:
    """Train and generation timings of every available (model, backend) pair, interleaved in one run.

    `gpt`, `batch` and `k1_overrides` exist for tiny smoke runs; the defaults are the benchmark."""
    import numpy as np
    from k1core.corpus import load_corpus, sample_batch
    data = load_corpus()
    rng = np.random.default_rng(0)
    batches = [sample_batch(data, batch, gpt["context"], rng) for _ in range(8)]
    builders = _builders(models_wanted, backends, gpt, batch, k1_overrides or {})
    models, warmup, unavailable = _build_all(builders, batches[0])
    counter = iter(range(10**9))

    def train(model):
        x, y = batches[next(counter) % len(batches)]
        model.train_step(x, y)

    load_before = os.getloadavg()
    train_s = interleaved(models, rounds, train, steps)
    gen_s = interleaved(models, max(2, rounds // 2), lambda m: _generate(m, batches[0][0][0, :16], gen_tokens), 1)
    load_after = os.getloadavg()
    tokens = batch * gpt["context"]
    rows = {}
    for name, model in models.items():
        med, low = float(np.median(train_s[name])), float(np.min(train_s[name]))
        rows[name] = {"params": param_count(model), "train_ms_median": 1e3 * med, "train_ms_min": 1e3 * low,
                      "train_tokens_per_s": tokens / med, "gen_tokens_per_s": gen_tokens / float(np.median(gen_s[name])),
                      "warmup_s": warmup[name], "compile_s": getattr(model, "compile_seconds", None)}
    return {"gpt_model": gpt, "k1_overrides": k1_overrides or {}, "batch": batch, "tokens_per_step": tokens,
            "rounds": rounds, "steps_per_round": steps, "gen_tokens": gen_tokens,
            "load_avg_before": load_before, "load_avg_after": load_after, "rows": rows,
            "unavailable": unavailable, "ratios": ratios(rows)}


def ratios(rows: dict) -> dict:
    """Train speed against the fastest torch GPT (per row), and K-1 over GPT tokens/s (same backend; fastest of each)."""
    out = {"vs_torch_gpt": {}, "k1_over_gpt": {}}
    torch_rows = [rows[f"gpt/{b}"] for b in TORCH_BACKENDS if f"gpt/{b}" in rows]
    torch = min(torch_rows, key=lambda r: r["train_ms_median"], default=None)
    if torch:
        out["vs_torch_gpt"] = {name: {"train": torch["train_ms_median"] / r["train_ms_median"],
                                      "train_min": torch["train_ms_min"] / r["train_ms_min"],
                                      "gen": r["gen_tokens_per_s"] / torch["gen_tokens_per_s"]}
                               for name, r in rows.items()}
    for name, r in rows.items():
        model, backend = name.split("/")
        if model == "k1" and f"gpt/{backend}" in rows:
            out["k1_over_gpt"][backend] = r["train_tokens_per_s"] / rows[f"gpt/{backend}"]["train_tokens_per_s"]
    best = {m: max((n for n in rows if n.startswith(m + "/")), key=lambda n: rows[n]["train_tokens_per_s"],
                   default=None) for m in MODELS}
    if best["gpt"] and best["k1"]:
        out["k1_over_gpt"]["fastest"] = {"k1": best["k1"], "gpt": best["gpt"],
                                         "ratio": rows[best["k1"]]["train_tokens_per_s"]
                                         / rows[best["gpt"]]["train_tokens_per_s"]}
    return out


def _print(result: dict) -> None:
    print(f"\nGPT {result['gpt_model']} and K-1 (default config{', ' if result['k1_overrides'] else ''}"
          f"{result['k1_overrides'] or ''}), batch {result['batch']} x {result['gpt_model']['context']}; "
          f"load avg {result['load_avg_before'][0]:.1f} -> {result['load_avg_after'][0]:.1f}")
    vs = result["ratios"]["vs_torch_gpt"]
    print(f"{'model/backend':18s} {'params':>8s} {'med ms':>8s} {'min ms':>8s} {'tok/s':>7s} {'x torch':>7s} "
          f"{'min x':>6s} {'gen tok/s':>9s} {'x torch':>7s} {'warmup s':>8s}")
    for name, r in result["rows"].items():
        v = vs.get(name, {})
        print(f"{name:18s} {r['params']:8d} {r['train_ms_median']:8.1f} {r['train_ms_min']:8.1f} "
              f"{r['train_tokens_per_s']:7.0f} {v.get('train', float('nan')):7.2f} {v.get('train_min', float('nan')):6.2f} "
              f"{r['gen_tokens_per_s']:9.1f} {v.get('gen', float('nan')):7.2f} {r['warmup_s']:8.1f}")
    for name, why in result["unavailable"].items():
        print(f"{name:18s} unavailable: {why}")
    for backend, ratio in result["ratios"]["k1_over_gpt"].items():
        if backend == "fastest":
            print(f"K-1/GPT train tokens/s, fastest of each ({ratio['k1']} / {ratio['gpt']}): {ratio['ratio']:.2f}")
        else:
            print(f"K-1/GPT train tokens/s on {backend}: {ratio:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="threads for every library (default: all cores)")
    parser.add_argument("--backends", default="numpy,numba,jax,torch,torch-compile")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--steps", type=int, default=5, help="timed train steps per pair per round")
    parser.add_argument("--gen-tokens", type=int, default=32)
    args = parser.parse_args()
    from backends.threads import configure_threads
    threads = configure_threads(args.threads)  # before numpy/jax/torch load
    from k1core.memory import keep_freed_memory
    keep_freed_memory()
    result = bench(args.models.split(","), args.backends.split(","), args.rounds, args.steps, args.gen_tokens)
    result["threads"] = threads
    _print(result)
    meta = {"machine": platform.machine(), "processor": platform.processor(), "cpus": os.cpu_count(),
            "python": platform.python_version()}
    print(f"\nwrote {write_result('backends', {'meta': meta, 'result': result})}")


if __name__ == "__main__":
    main()
