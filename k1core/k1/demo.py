"""run_k1_demo: train K-1 on the embedded corpus and report what the issue's bar asks for.

    python -m k1core.k1.demo [steps] [--ablation]
"""
from __future__ import annotations

import sys
import time

import numpy as np

from k1core.corpus import eval_batches, load_corpus, sample_batch, split_corpus
from k1core.k1 import build_k1


def run_k1_demo(steps: int | None = None, batch_size: int = 12, seed: int = 0, eval_batches_n: int = 8,
                **overrides) -> dict:
    """Train the default K-1 (or with K1Config `overrides`) and return val loss, events, traffic, tokens/s."""
    settings = {"seed": seed} | ({"steps": steps} if steps else {})
    model = build_k1(settings, **overrides)
    cfg = model.cfg
    splits = split_corpus(load_corpus())
    data_rng, probe_rng = np.random.default_rng(seed), np.random.default_rng(seed + 1)
    # probes come from the first half of val, the reported val loss from the second half
    probe_data, val_data = splits.val[: len(splits.val) // 2], splits.val[len(splits.val) // 2:]

    def probe():
        return sample_batch(probe_data, batch_size, cfg.context, probe_rng)

    events, train_time, step = [], 0.0, 0
    for step in range(cfg.total_steps):
        x, y = sample_batch(splits.train, batch_size, cfg.context, data_rng)
        t0 = time.perf_counter()
        model.train_step(x, y)
        train_time += time.perf_counter() - t0
        new = model.on_step_end(step, probe)
        events += new
        if any(e["type"] == "stop" for e in new):
            break
    steps_done = step + 1
    val = model.evaluate(eval_batches(val_data, batch_size, cfg.context, eval_batches_n))
    stats = model.stats()
    return {"steps": steps_done, "val_loss": val, "val_bits_per_byte": val / np.log(2),
            "tokens_per_s": steps_done * batch_size * cfg.context / train_time,
            "ms_per_step": 1e3 * train_time / steps_done,
            "events": stats.get("events"), "events_kept": stats.get("events_kept"),
            "traffic_fraction": stats.get("traffic_fraction"), "agents": stats.get("agents"),
            "mean_trust": stats.get("mean_trust"), "params": stats["params"],
            "params_updated_fraction": stats["params_updated_fraction"], "log": events, "stats": stats}


def main(argv: list[str]) -> None:
    numbers = [a for a in argv if a.isdigit()]
    steps = int(numbers[0]) if numbers else None
    for use_tree in (True, False) if "--ablation" in argv else (True,):
        r = run_k1_demo(steps, use_tree=use_tree)
        print(f"use_tree={use_tree} steps={r['steps']} val_loss={r['val_loss']:.4f} nats "
              f"({r['val_bits_per_byte']:.3f} bits/byte) tokens/s={r['tokens_per_s']:.0f} "
              f"ms/step={r['ms_per_step']:.1f} params={r['params']} "
              f"updated/step={r['params_updated_fraction']:.3f}")
        if use_tree:
            print(f"  events={r['events']} kept={r['events_kept']} traffic_fraction={r['traffic_fraction']:.3f} "
                  f"agents={r['agents']} mean_trust={r['mean_trust']:.3f}")
            st = r["stats"]
            print(f"  trust_histogram={st['trust_histogram']} depth_histogram={st['depth_histogram']} "
                  f"routing_entropy={st['routing_entropy_bits']:.3f} bits "
                  f"closest_sibling_similarity={st['closest_sibling_similarity']}")
            for e in r["log"]:
                if e["type"] != "diagnostic":
                    print("  ", {k: (round(v, 4) if isinstance(v, float) else v) for k, v in e.items()})


if __name__ == "__main__":
    main(sys.argv[1:])
