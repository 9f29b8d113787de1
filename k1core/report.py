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
    comparison = results.get("comparison")
    if comparison:
        lines += format_comparison(comparison)
    samples = [f"--- sample from {r['model']} ---\n{s['prompt']}{s['text']}"
               for r in results["models"].values() for s in r["samples"]]
    return "\n".join(["losses in nats/byte", *lines, *samples])


def curve_at(xs, ys, x: float) -> float | None:
    """A validation curve's value at x, linear between its points; None before its first point, its
    last value after its end (the model had finished training by then)."""
    if not xs or x < xs[0]:
        return None
    return float(np.interp(x, xs, ys))


def calibrated_step_s(result: dict) -> float | None:
    """A model's seconds per step from the equal-time calibration (budget.py), if it had one."""
    return ((result.get("budget") or {}).get("equal_time") or {}).get("step_s")


def _seconds_total(r: dict) -> float:
    step_s = calibrated_step_s(r)
    return r["train_s"] if step_s is None else r["steps"] * step_s


def _seconds_axis(r: dict) -> list[float]:
    """Training seconds at each validation: calibrated cost x steps under an equal-time plan (the
    same load for every model), else the seconds measured during the run."""
    step_s, h = calibrated_step_s(r), r["history"]
    return h["val_train_s"] if step_s is None else [(s + 1) * step_s for s in h["val_step"]]


BUDGET_AXES = {  # equal budget -> (the reference's total, the x values of each validation of a result)
    "steps": (lambda r: r["steps"], lambda r: [s + 1 for s in r["history"]["val_step"]]),
    "train_s": (_seconds_total, _seconds_axis),
    "train_flops": (lambda r: r["train_flops"], lambda r: r["history"]["val_flops"]),
}


def compare_at_equal_budgets(models: dict) -> dict:
    """Every model's validation loss at the reference model's full budget in steps, training seconds
    (calibrated ones under an equal-time plan) and training FLOPs (reference: the GPT when it ran,
    else the model that trained for least time).

    Read off each model's validation curve, so a model given a longer schedule is judged part way
    through it (its learning rate not yet decayed): a conservative reading for that model."""
    ref = "gpt" if "gpt" in models else min(models, key=lambda n: models[n]["train_s"])
    out = {"reference": ref}
    for axis, (total, xs) in BUDGET_AXES.items():
        at = float(total(models[ref]))
        out[axis] = {"at": at,
                     "val_loss": {n: curve_at(xs(r), r["history"]["val_loss"], at) for n, r in models.items()},
                     "ended_before": [n for n, r in models.items() if xs(r) and xs(r)[-1] < at]}
    return out


def format_comparison(comparison: dict) -> list[str]:
    """The equal-steps / equal-time / equal-FLOPs rows of the printed report."""
    labels = {"steps": "{:.0f} steps", "train_s": "{:.1f} s of training", "train_flops": "{:.3g} training FLOPs"}
    names = list(comparison["steps"]["val_loss"])
    rows = [[f"val loss at the {comparison['reference']}'s", *names]]
    for axis, label in labels.items():
        c = comparison[axis]
        rows.append([label.format(c["at"])] + ["-" if c["val_loss"][n] is None else
                                               f"{c['val_loss'][n]:.4f}" + ("*" if n in c["ended_before"] else "")
                                               for n in names])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths)))
             for row in rows]
    return [*lines, "(* the model had finished training before that point: its final value)"]
