"""K-1's ablations over seeds: which of its mechanisms pay for themselves at equal training time.

Per seed, the GPT trains its configured steps first; every other row then trains for the GPT's
training time (a step count planned to fill it, see budget.py). Each row is read at the GPT's step
count, training time and training FLOPs (report.curve_at on its validation curve); rows are compared
with full K-1 and with the GPT seed by seed (paired), mean and 95% t interval over seeds. Every run
keeps its own folder, so an interrupted ablation resumes where it stopped.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TextIO

import orjson

from k1core.config import make_config
from k1core.report import BUDGET_AXES, curve_at
from k1core.seed_stats import mean_ci, paired_difference
from k1core.train import train, write_json

VARIANTS = {  # row -> (model, its [k1] settings)
    "k1": ("k1", {"plasticity": True}),  # full K-1: every mechanism on
    "k1, frozen tree": ("k1", {"plasticity": False}),
    "k1, no controller": ("k1", {"controller": False}),
    "k1, dense updates": ("k1", {"dense_updates": True}),
    "k1, no tree": ("k1-notree", {}),
    "gpt": ("gpt", {}),
}
AXES = {"steps": "equal steps", "train_s": "equal time", "train_flops": "equal FLOPs"}


def run_dir(out: Path, seed: int, row: str) -> Path:
    return out / f"seed{seed}" / row.replace(", ", "-").replace(" ", "-")


def run_row(out: Path, seed: int, row: str, base: dict, budget_s: float | None, log: TextIO) -> dict:
    """One row's result for one seed: trained now, resumed, or read back when already finished."""
    folder = run_dir(out, seed, row)
    if (folder / "results.json").is_file():
        return orjson.loads((folder / "results.json").read_bytes())["models"]
    model, settings = VARIANTS[row]
    layer = {"model": model, "seed": seed, "out": str(folder), "k1": settings}
    layer |= {"budget": "steps"} if budget_s is None else {"budget_seconds": budget_s}
    load_before = os.getloadavg()
    results = train(make_config(base, layer), resume=(folder / "config.json").is_file(), log=log)
    write_json(folder / "load.json", {"before": load_before, "after": os.getloadavg()})
    return results["models"]


def run_ablation(base: dict, seeds: list[int], out: Path, log: TextIO, rows=tuple(VARIANTS)) -> dict:
    """Train every row for every seed (seed by seed, the GPT first) and write the summary."""
    for seed in seeds:
        gpt = run_row(out, seed, "gpt", base, None, log)["gpt"]
        for row in rows:
            if row != "gpt":
                run_row(out, seed, row, base, gpt["train_s"], log)
        summary = summarize(out, seeds, rows)
        write_json(out / "ablation.json", summary)
        (out / "ablation.md").write_text(render_markdown(summary))
    return summary


def row_readings(result: dict, gpt: dict) -> dict:
    """One run's validation loss at the GPT's steps, time and FLOPs, and its speed."""
    h = result["history"]
    out = {axis: curve_at(xs(h), h["val_loss"], float(total(gpt))) for axis, (total, xs) in BUDGET_AXES.items()}
    return out | {"final": result["loss_nats"]["val"], "tokens_per_s": result["tokens_per_s"],
                  "steps_trained": result["steps"], "seconds_trained": result["train_s"]}


def summarize(out: Path, seeds: list[int], rows=tuple(VARIANTS)) -> dict:
    """Per row: each seed's readings, mean and 95% CI of each, paired differences vs k1 and vs gpt."""
    readings: dict[str, dict[int, dict]] = {row: {} for row in rows}
    loads = []
    for seed in seeds:
        gpt_file = run_dir(out, seed, "gpt") / "results.json"
        if not gpt_file.is_file():
            continue
        gpt = orjson.loads(gpt_file.read_bytes())["models"]["gpt"]
        for row in rows:
            folder = run_dir(out, seed, row)
            if (folder / "results.json").is_file():
                models = orjson.loads((folder / "results.json").read_bytes())["models"]
                readings[row][seed] = row_readings(next(iter(models.values())), gpt)
            if (folder / "load.json").is_file():
                loads.append(orjson.loads((folder / "load.json").read_bytes()))
    summary = {"seeds": seeds, "load_average": loads, "rows": {}}
    for row, by_seed in readings.items():
        entry = {"seeds": {str(s): r for s, r in by_seed.items()}}
        for key in (*AXES, "final", "tokens_per_s", "steps_trained"):
            entry[key] = mean_ci([r[key] for r in by_seed.values()])
        for ref in ("k1", "gpt"):
            if ref != row and ref in readings:
                entry[f"minus_{ref}"] = {axis: paired_difference(
                    {s: r[axis] for s, r in by_seed.items()},
                    {s: r[axis] for s, r in readings[ref].items()}) for axis in AXES}
        summary["rows"][row] = entry
    return summary


def _ci(c: dict, digits: int = 3) -> str:
    if c["mean"] is None:
        return "-"
    if c["n"] < 2:
        return f"{c['mean']:.{digits}f} (n=1)"
    return f"{c['mean']:.{digits}f} [{c['lo']:.{digits}f}, {c['hi']:.{digits}f}]"


def render_markdown(summary: dict) -> str:
    """The ablation table: val loss (nats/byte) at each equal budget, and paired differences."""
    lines = ["| row | seeds | val, equal steps | val, equal time | val, equal FLOPs | steps trained | tokens/s |",
             "|---|---|---|---|---|---|---|"]
    for row, e in summary["rows"].items():
        lines.append(f"| {row} | {e['train_s']['n']} | {_ci(e['steps'])} | {_ci(e['train_s'])} | "
                     f"{_ci(e['train_flops'])} | {_ci(e['steps_trained'], 0)} | {_ci(e['tokens_per_s'], 0)} |")
    lines += ["", "A row that trained fewer steps (or FLOPs) than the GPT is read at its end there: its final value.",
              "", "Paired differences over seeds (row minus reference; negative = the row is better), "
              "mean [95% CI], nats/byte:", "",
              "| row | vs | equal steps | equal time | equal FLOPs |", "|---|---|---|---|---|"]
    for row, e in summary["rows"].items():
        for ref in ("k1", "gpt"):
            if f"minus_{ref}" in e:
                d = e[f"minus_{ref}"]
                lines.append(f"| {row} | {ref} | {_ci(d['steps'])} | {_ci(d['train_s'])} | {_ci(d['train_flops'])} |")
    return "\n".join(lines) + "\n"
