"""Loss units and the printed comparison table: nats, bits per byte and perplexity side by side."""
from __future__ import annotations

import math


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
    samples = [f"--- sample from {r['model']} ---\n{s['prompt']}{s['text']}"
               for r in results["models"].values() for s in r["samples"]]
    return "\n".join(["losses in nats/byte", *lines, *samples])
