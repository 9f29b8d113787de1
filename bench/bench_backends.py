"""Training and generation speed of each k1 backend against the same GPT in PyTorch (CPU).

All backends are built in one process and timed in interleaved rounds (the order rotates every
round), so load from other processes on a shared machine falls on all of them alike; ratios within
one run are the result. Reports median and minimum ms/step, tokens/s, ratios against torch,
compile/warm-up time separately, and the load average; writes JSON under bench/results/.
Run: python -m bench.bench_backends [--threads 2] [--rounds 6]
"""
from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

# Benchmark configurations: name -> (model config kwargs, batch size). The lead adds the default
# K-1 configuration here when it merges ("k1": (..., 12)), with a builder next to build_gpt.
CONFIGS = {"gpt": (dict(d_model=128, n_layers=4, n_heads=4, context=64), 12)}
RESULTS = Path(__file__).parent / "results"


def _builders(cfg, backends):
    """name -> zero-argument constructor, same seed (same initial weights) for every backend."""
    from backends.compute import build_gpt
    from k1core.optim import AdamWConfig
    optim = AdamWConfig(warmup_steps=10, total_steps=10_000)
    out = {}
    for name in backends:
        if name == "torch":
            from bench.torch_gpt import TorchGPT
            out[name] = lambda: TorchGPT(cfg, optim)
        else:
            out[name] = lambda name=name: build_gpt(cfg, name, optim)
    return out


def _interleaved(models: dict, rounds: int, work, per_round: int) -> dict[str, list[float]]:
    """Seconds per call of work(model) for each model, `per_round` calls per model per round."""
    times = {name: [] for name in models}
    names = list(models)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            for _ in range(per_round):
                start = time.perf_counter()
                work(models[name])
                times[name].append(time.perf_counter() - start)
    return times


def bench_config(label: str, backends: list[str], rounds: int, steps: int, gen_tokens: int) -> dict:
    """Train and generation timings of every backend on CONFIGS[label]."""
    import numpy as np
    from k1core.corpus import load_corpus, sample_batch
    from k1core.gpt import GPTConfig
    kwargs, batch = CONFIGS[label]
    cfg = GPTConfig(**kwargs)
    data = load_corpus()
    rng = np.random.default_rng(0)
    batches = [sample_batch(data, batch, cfg.context, rng) for _ in range(8)]
    models, warmup = {}, {}
    for name, build in _builders(cfg, backends).items():
        start = time.perf_counter()
        models[name] = build()
        x, y = batches[0]
        models[name].train_step(x, y)  # JAX compiles here; Numba loads its cache (or compiles)
        models[name].generate(x[0, :8], 2, **({} if name == "torch" else {"temperature": 0.0}))
        warmup[name] = time.perf_counter() - start
    counter = iter(range(10**9))

    def train(model):
        x, y = batches[next(counter) % len(batches)]
        model.train_step(x, y)

    def generate(model):
        prompt = batches[0][0][0, :16]
        if hasattr(model, "torch"):
            model.generate(prompt, gen_tokens)
        else:
            model.generate(prompt, gen_tokens, temperature=0.0)

    load_before = os.getloadavg()
    train_s = _interleaved(models, rounds, train, steps)
    gen_s = _interleaved(models, max(2, rounds // 2), generate, 1)
    load_after = os.getloadavg()
    tokens = batch * cfg.context
    rows = {}
    for name in models:
        med, low = float(np.median(train_s[name])), float(np.min(train_s[name]))
        gen = float(np.median(gen_s[name]))
        rows[name] = {"train_ms_median": 1e3 * med, "train_ms_min": 1e3 * low,
                      "train_tokens_per_s": tokens / med, "gen_tokens_per_s": gen_tokens / gen,
                      "warmup_s": warmup[name],
                      "compile_s": getattr(models[name], "compile_seconds", None)}
    if "torch" in rows:
        for row in rows.values():
            row["train_vs_torch"] = rows["torch"]["train_ms_median"] / row["train_ms_median"]
            row["train_min_vs_torch"] = rows["torch"]["train_ms_min"] / row["train_ms_min"]
            row["gen_vs_torch"] = row["gen_tokens_per_s"] / rows["torch"]["gen_tokens_per_s"]
    return {"config": label, "model": kwargs, "batch": batch, "tokens_per_step": tokens,
            "rounds": rounds, "steps_per_round": steps, "gen_tokens": gen_tokens,
            "load_avg_before": load_before, "load_avg_after": load_after, "backends": rows}


def _print(result: dict) -> None:
    print(f"\n{result['config']}: {result['model']} batch {result['batch']}; load avg "
          f"{result['load_avg_before'][0]:.1f} -> {result['load_avg_after'][0]:.1f}")
    print(f"{'backend':8s} {'med ms':>8s} {'min ms':>8s} {'tok/s':>8s} {'x torch':>8s} {'min x':>6s} "
          f"{'gen tok/s':>9s} {'x torch':>8s} {'warmup s':>9s}")
    for name, r in result["backends"].items():
        print(f"{name:8s} {r['train_ms_median']:8.1f} {r['train_ms_min']:8.1f} {r['train_tokens_per_s']:8.0f} "
              f"{r.get('train_vs_torch', float('nan')):8.2f} {r.get('train_min_vs_torch', float('nan')):6.2f} "
              f"{r['gen_tokens_per_s']:9.1f} {r.get('gen_vs_torch', float('nan')):8.2f} {r['warmup_s']:9.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="threads for every library (default: all cores)")
    parser.add_argument("--backends", default="numpy,numba,jax,torch")
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--steps", type=int, default=5, help="timed train steps per backend per round")
    parser.add_argument("--gen-tokens", type=int, default=32)
    args = parser.parse_args()
    from backends.threads import configure_threads
    threads = configure_threads(args.threads)  # before numpy/jax/torch load
    from k1core.memory import keep_freed_memory
    keep_freed_memory()
    import orjson
    results = []
    for label in args.configs.split(","):
        result = bench_config(label, args.backends.split(","), args.rounds, args.steps, args.gen_tokens)
        result["threads"] = threads
        _print(result)
        results.append(result)
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    path = RESULTS / f"backends-{stamp}.json"
    meta = {"machine": platform.machine(), "processor": platform.processor(), "cpus": os.cpu_count(),
            "python": platform.python_version()}
    path.write_bytes(orjson.dumps({"meta": meta, "results": results}, option=orjson.OPT_INDENT_2))
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
