"""K-1's ablations over seeds: which of its mechanisms pay for themselves at equal training time.

Per seed, every row's cost per step relative to the GPT is measured first, all rows in one process
in interleaved bursts (budget.calibrate_equal_time), and each row trains the steps that cost what the
GPT's configured steps cost. Each row is read at the GPT's step
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
from k1core.train import equal_time_plan, train, write_json

VARIANTS = {  # row -> (model, its [k1] settings)
    "k1": ("k1", {"plasticity": True, "controller": True}),  # full K-1: every mechanism on
    "k1, frozen tree": ("k1", {"plasticity": False, "controller": True}),
    "k1, no controller": ("k1", {"plasticity": False, "controller": False}),  # the default K-1
    "k1, dense updates": ("k1", {"plasticity": False, "controller": True, "dense_updates": True}),
    "k1, no tree": ("k1-notree", {"controller": True}),
    "gpt": ("gpt", {}),
}
AXES = {"steps": "equal steps", "train_s": "equal time", "train_flops": "equal FLOPs"}


def run_dir(out: Path, seed: int, row: str) -> Path:
    return out / f"seed{seed}" / row.replace(", ", "-").replace(" ", "-")


def row_config(out: Path, seed: int, row: str, base: dict, steps: int | None = None):
    """The run config of one row for one seed (`steps`: its equal-time allotment)."""
    model, settings = VARIANTS[row]
    layer = {"model": model, "seed": seed, "out": str(run_dir(out, seed, row)), "k1": settings, "budget": "steps"}
    return make_config(base, layer, {} if steps is None else {"steps": steps})


def run_row(out: Path, seed: int, row: str, base: dict, plan: dict, log: TextIO) -> dict:
    """One row's result for one seed, trained for its allotment in `plan` (the seed's equal-time
    plan): trained now, resumed, or read back when already finished."""
    folder = run_dir(out, seed, row)
    if (folder / "results.json").is_file():
        return orjson.loads((folder / "results.json").read_bytes())["models"]
    model = VARIANTS[row][0]
    cfg = row_config(out, seed, row, base, plan["models"][row]["steps"])
    load_before = os.getloadavg()
    results = train(cfg, resume=(folder / "config.json").is_file(), log=log,
                    equal_time={"models": {model: plan["models"][row]}})
    write_json(folder / "load.json", {"before": load_before, "after": os.getloadavg()})
    return results["models"]


def run_ablation(base: dict, seeds: list[int], out: Path, log: TextIO, rows=tuple(VARIANTS)) -> dict:
    """Per seed: the equal-time plan of every row with the GPT, then every row (the GPT first); then
    the summary."""
    for seed in seeds:
        labels = ("gpt", *(row for row in rows if row != "gpt"))
        gpt_cfg = row_config(out, seed, "gpt", base)
        plan = equal_time_plan({row: (VARIANTS[row][0], row_config(out, seed, row, base)) for row in labels},
                               gpt_cfg.steps, out / f"seed{seed}" / "equal_time.json", log)
        for row in labels:
            run_row(out, seed, row, base, plan, log)
        summary = summarize(out, seeds, rows)
        write_json(out / "ablation.json", summary)
        (out / "ablation.md").write_text(render_markdown(summary))
    return summary


def row_readings(result: dict, gpt: dict) -> dict:
    """One run's validation loss at the GPT's steps, time and FLOPs, and its speed."""
    h = result["history"]
    out = {axis: curve_at(xs(result), h["val_loss"], float(total(gpt))) for axis, (total, xs) in BUDGET_AXES.items()}
    return out | {"final": result["loss_nats"]["val"], "tokens_per_s": result["tokens_per_s"],
                  "steps_trained": result["steps"], "seconds_trained": result["train_s"],
                  "stopped_early": result["stopped_early"]}


def summarize(out: Path, seeds: list[int], rows=tuple(VARIANTS)) -> dict:
    """Per row: each seed's readings, mean and 95% CI of each, paired differences vs k1 and vs gpt."""
    readings: dict[str, dict[int, dict]] = {row: {} for row in rows}
    loads, plans = [], {}
    for seed in seeds:
        plan_file = out / f"seed{seed}" / "equal_time.json"
        if plan_file.is_file():
            plans[str(seed)] = orjson.loads(plan_file.read_bytes())
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
    summary = {"seeds": seeds, "load_average": loads, "equal_time": plans, "rows": {}}
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
    return "\n".join(lines + equal_time_lines(summary)) + "\n"


def equal_time_lines(summary: dict) -> list[str]:
    """How the equal-time allotments were measured: each row's cost per step relative to the GPT and
    the load average around each seed's calibration."""
    plans = summary.get("equal_time") or {}
    if not plans:
        return []
    method = next(iter(plans.values()))
    loads = ", ".join(f"seed {seed}: {p['load_average']['before'][0]:.1f} -> {p['load_average']['after'][0]:.1f}"
                      for seed, p in plans.items())
    lines = ["", f"Equal time: every row trains the steps that cost what the GPT's {method['gpt_steps']} steps cost, "
             f"at its cost per step relative to the GPT, measured per seed in one process before training "
             f"({method['method']}; {method['clock']} clock). 1-minute load average around each calibration: "
             f"{loads}. A run that stopped itself (K-1's controller: a plateau shown on its paired held-out "
             f"evaluations `patience` times in a row, or a second divergence) trained fewer steps than allotted "
             f"and is read at its end.", "",
             "| row | cost per step / GPT's | steps allotted | steps trained | seeds that stopped themselves |",
             "|---|---|---|---|---|"]
    for row, e in summary["rows"].items():
        entries = [p["models"][row] for p in plans.values() if row in p["models"]]
        if entries:
            stopped = sum(bool(r.get("stopped_early")) for r in e["seeds"].values())
            lines.append(f"| {row} | {_ci(mean_ci([m['ratio'] for m in entries]))} | "
                         f"{_ci(mean_ci([m['steps'] for m in entries]), 0)} | {_ci(e['steps_trained'], 0)} | "
                         f"{stopped} of {len(e['seeds'])} |")
    return lines
