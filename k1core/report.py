"""Loss units and the printed comparison table: nats, bits per byte and perplexity side by side."""
from __future__ import annotations

import math

import numpy as np


def loss_summary(losses_nats: dict[str, float]) -> dict:
    """The same losses (nats/byte) also as bits/byte and perplexity."""
    return {
        "loss_nats": dict(losses_nats),
        "loss_bits_per_byte": {k: v / math.log(2) for k, v in losses_nats.items()},
        "perplexity": {k: math.exp(min(v, 700.0)) for k, v in losses_nats.items()},
    }


COLUMNS = [  # (header, function of one model's result, format)
    ("model", lambda r: r["model"], "{}"),
    ("params", lambda r: r["stats"]["params"], "{:,}"),
    ("FLOPs/tok", lambda r: r["stats"]["flops_per_token"], "{:.3g}"),
    ("steps", lambda r: r["steps"], "{}"),
    ("train", lambda r: r["loss_nats"]["train"], "{:.4f}"),
    ("val", lambda r: r["loss_nats"]["val"], "{:.4f}"),
    ("test", lambda r: r["loss_nats"]["test"], "{:.4f}"),
    ("val bpb", lambda r: r["loss_bits_per_byte"]["val"], "{:.4f}"),
    ("val ppl", lambda r: r["perplexity"]["val"], "{:.3f}"),
    ("upd/step", lambda r: r["stats"].get("params_updated_fraction", 1.0), "{:.0%}"),
    ("tok/s", lambda r: r["tokens_per_s"], "{:,.0f}"),
    ("ms/step", lambda r: r["ms_per_step"], "{:.1f}"),
    ("wall", lambda r: r["wall_s"], "{:.0f}s"),
]


def format_table(results: dict) -> str:
    """Models as rows; losses in nats/byte unless the header says bpb (bits/byte) or ppl."""
    rows = [[h for h, _, _ in COLUMNS]]
    for r in results["models"].values():
        rows.append([fmt.format(get(r)) for _, get, fmt in COLUMNS])
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(row, widths)) for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    lines += [f"{r['model']} structural events: " + ", ".join(f"{k} {v}" for k, v in sorted(r["events"]["counts"].items()))
              for r in results["models"].values() if r["events"]["counts"]]
    matched = results.get("matched_wall_clock")
    if matched:
        lines.append(f"val loss at matched training time ({matched['train_s']:.0f}s, the fastest model's total): "
                     + ", ".join(f"{k} {'-' if v is None else f'{v:.4f}'}" for k, v in matched["val_loss"].items()))
    samples = [f"--- sample from {r['model']} ---\n{s['prompt']}{s['text']}"
               for r in results["models"].values() for s in r["samples"]]
    return "\n".join(["losses in nats/byte", *lines, *samples])


def matched_wall_clock(models: dict) -> dict:
    """Each model's validation loss after the training time the fastest-finishing model took.

    Interpolated linearly between a model's validation points (None when it had not been
    validated by then), so a slower model is judged at the same compute-time budget.
    """
    budget = min(r["train_s"] for r in models.values())
    val = {}
    for name, r in models.items():
        t, v = r["history"]["val_train_s"], r["history"]["val_loss"]
        val[name] = float(np.interp(budget, t, v)) if t and t[0] <= budget else None
    return {"train_s": budget, "val_loss": val}
