"""The training loop behind `k1 train`: every requested model in turn on the same data and seed,
with progress, periodic validation, atomic checkpoints, bit-identical resume, and a final report."""
from __future__ import annotations

import dataclasses
import math
import sys
import time
from collections import Counter
from pathlib import Path
from typing import TextIO

import numpy as np
import orjson

from k1core import registry
from k1core.budget import calibrate_equal_time, clock, plan_steps
from k1core.checkpoint import load_checkpoint, save_checkpoint
from k1core.compute import NUMPY, Compute
from k1core.config import TrainConfig
from k1core.corpus import Splits, decode, eval_batches, load_corpus, sample_batch, split_corpus
from k1core.errors import UserError
from k1core.json_object import json_object
from k1core.memory import keep_freed_memory
from k1core.plots import plot_losses, plot_structure  # imports matplotlib lazily, only if installed
from k1core.progress import Progress
from k1core.report import compare_at_equal_budgets, format_table, loss_summary

SAMPLE_TEMPERATURE, SAMPLE_TOP_K = 0.8, 200


GROUPS = {"both": ["gpt", "k1"], "all": ["gpt", "k1", "k1-notree"]}
PROBE_FRACTION = 0.02  # head of the train split held out for K-1's trust and plasticity checks


def model_names(cfg: TrainConfig) -> list[str]:
    return GROUPS.get(cfg.model, [cfg.model])


def hold_out_probe(splits: Splits, context: int) -> tuple[Splits, np.ndarray]:
    """Train split without its head, and that head as probe data.

    K-1 decides trust and keeps or rolls back structural changes on probe batches; drawing them
    from the validation split would let those decisions fit the data its loss is reported on.
    No model trains on the probe data, so the comparison stays fair. The head, not the tail: the
    tail runs straight into the validation text (same play, same speakers), and holding it out
    cost the GPT 0.044 nats of validation loss (1.870 -> 1.915 at the default config).
    """
    n = max(context + 2, int(len(splits.train) * PROBE_FRACTION))
    return Splits(splits.train[n:], splits.val, splits.test), splits.train[:n]


def write_json(path: Path, obj) -> None:
    """orjson to `path` via a temporary file, so a reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))
    tmp.replace(path)


def saved_config(out: str | Path) -> dict | None:
    """The effective config a previous run saved in `out`, if any; UserError if it is unreadable."""
    path = Path(out) / "config.json"
    if not path.is_file():
        return None
    try:
        return json_object(path.read_bytes())
    except ValueError as err:
        raise UserError(f"{path} holds no config object: {err}; fix it or move the folder aside to start afresh") from None


def resume_config(out: str | Path) -> dict:
    """The saved config of the run in `out`, to resume; UserError when there is nothing to resume."""
    saved = saved_config(out)
    if saved is None:
        raise UserError(f"nothing to resume in {out}: it holds no config.json (drop --resume to start a new run)")
    return {**saved, "out": str(out)}  # where the run is now, wherever it was made


def check_run_folder(out: Path, previous: dict | None, cfg: TrainConfig, resume: bool) -> None:
    """`out` must be a folder (or not exist yet); a resumed run must match the saved config.

    Where the run lives is not part of what it is: `out` is left out, so a moved folder resumes.
    """
    blocking = next((p for p in (out, *out.parents) if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise UserError(f"--out {out}: {blocking} is a file; give a folder for the run's results and checkpoints")
    if resume and previous is not None:
        changed = sorted(k for k in cfg.to_dict() if k != "out" and previous.get(k) != getattr(cfg, k))
        if changed:
            raise UserError(f"--resume with a different config than the saved run (keys: {', '.join(changed)})")


def load_splits(cfg: TrainConfig) -> tuple[Splits, np.ndarray]:
    """The run's train/val/test splits (train without its probe head) and the probe data."""
    return hold_out_probe(split_corpus(load_corpus(cfg.data), min_len=cfg.context + 2), cfg.context)


def equal_time_plan(models: dict[str, tuple[str, TrainConfig]], gpt_steps: int, path: Path, log: TextIO,
                    compute: Compute = NUMPY, reuse: bool = True) -> dict:
    """Steps for each of `models` (label -> (model name, config); one labelled 'gpt') at equal time
    with the GPT's `gpt_steps` (budget.calibrate_equal_time), kept in `path`; with `reuse`, the plan
    already there (a resumed run keeps its allotments)."""
    if reuse and path.is_file():
        return orjson.loads(path.read_bytes())
    cfg = models["gpt"][1]
    splits, probe_data = load_splits(cfg)
    builds = {label: (lambda steps, name=name, c=c: registry.build(name, dataclasses.replace(c, steps=steps), compute))
              for label, (name, c) in models.items()}
    plan = calibrate_equal_time(builds, gpt_steps, splits.train, probe_data, cfg.batch_size, cfg.context,
                                cfg.clock, cfg.seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, plan)
    print("equal time with the gpt's " + f"{gpt_steps} steps ({cfg.clock} clock): " + ", ".join(
        f"{label} {m['steps']} steps ({m['ratio']:.3f}x its cost per step)" for label, m in plan["models"].items()),
        file=log)
    return plan


def train(cfg: TrainConfig, resume: bool = False, log: TextIO | None = None, compute: Compute = NUMPY,
          equal_time: dict | None = None) -> dict:
    """Train each model of `cfg` on `compute`, write DIR/results.json (+ plots) and return the results.

    `compute` is the backend cfg.backend names (backends.compute.load_compute finds it by name).
    Under `--budget gpt` every model trains the steps that cost as much as the GPT's (an equal-time
    plan, calibrated here or given as `equal_time`: a plan whose "models" holds each model's entry).
    Progress goes to `log` (stderr by default); the final table goes to stdout.
    """
    log = log or sys.stderr
    if compute.name != cfg.backend:
        raise UserError(f"backend {cfg.backend!r} was asked for but {compute.name!r} was given; "
                        f"pass compute=backends.compute.load_compute({cfg.backend!r})")
    keep_freed_memory()
    for name in model_names(cfg):
        registry.builder(name)  # fail before any work if a model is missing
    out = Path(cfg.out)
    check_run_folder(out, saved_config(out) if out.is_dir() else None, cfg, resume)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", cfg.to_dict())
    names = model_names(cfg)
    if equal_time is None and cfg.budget == "gpt" and cfg.budget_seconds is None and "gpt" in names and len(names) > 1:
        equal_time = equal_time_plan({name: (name, cfg) for name in names}, cfg.steps, out / "equal_time.json", log,
                                     compute, reuse=resume)
    splits, probe_data = load_splits(cfg)
    results = {"config": cfg.to_dict(), "models": {}}
    if equal_time is not None:
        results["equal_time"] = equal_time
    for name in names:
        allotted = None if equal_time is None else equal_time["models"][name]
        results["models"][name] = train_model(name, cfg, splits, probe_data, out / name, resume, log,
                                              cfg.budget_seconds, compute, allotted)
    results["comparison"] = compare_at_equal_budgets(results["models"])
    write_json(out / "results.json", results)
    print(format_table(results))
    print(plot_losses(results, out / "loss.png"), file=log)
    for name, result in results["models"].items():
        if result["stats"].get("history"):
            print(plot_structure(result, out / f"{name}_structure.png"), file=log)
    return results


def planned_config(name: str, cfg: TrainConfig, splits: Splits, probe_data: np.ndarray, out: Path,
                   seconds: float | None, log: TextIO, compute: Compute) -> tuple[TrainConfig, dict | None]:
    """`cfg` with the step count that fills `seconds` (planned once, kept in out/plan.json for --resume)."""
    if seconds is None:
        return cfg, None
    path = out / "plan.json"
    if path.is_file():
        plan = orjson.loads(path.read_bytes())
    else:
        plan = plan_steps(lambda steps: registry.build(name, dataclasses.replace(cfg, steps=steps), compute), seconds,
                          splits.train, probe_data, cfg.batch_size, cfg.context, cfg.clock, cfg.seed)
        out.mkdir(parents=True, exist_ok=True)
        write_json(path, plan)
    print(f"{name}: {seconds:.1f} s budget ({cfg.clock} clock): {plan['steps']} steps planned "
          f"at {plan['pilot_step_ms']:.1f} ms/step", file=log)
    return dataclasses.replace(cfg, steps=plan["steps"]), plan


def train_model(name: str, cfg: TrainConfig, splits: Splits, probe_data: np.ndarray, out: Path,
                resume: bool, log: TextIO, seconds: float | None = None, compute: Compute = NUMPY,
                allotted: dict | None = None) -> dict:
    """Train one model for cfg.steps, its `allotted` equal-time steps, or `seconds` of training on
    cfg.clock (with a step count planned to fill them), or until its stop event; resumes from
    out/checkpoint.npz when asked."""
    ckpt_path, result_path = out / "checkpoint.npz", out / "result.json"
    if allotted is not None:
        cfg = dataclasses.replace(cfg, steps=allotted["steps"])
    cfg, plan = planned_config(name, cfg, splits, probe_data, out, seconds, log, compute)
    model = registry.build(name, cfg, compute)
    batch_rng = np.random.default_rng(cfg.seed)  # same batches for every model
    probe_rng = np.random.default_rng(cfg.seed + 1)  # held-out batches for on_step_end
    run = {"step": 0, "done": False, "train_s": 0.0, "wall_s": 0.0, "train_flops": 0.0, "step_ms": [],
           "history": {"step": [], "train_loss": [], "val_step": [], "val_loss": [], "val_train_s": [],
                       "val_flops": []}, "events": []}
    if resume and ckpt_path.is_file():
        state = load_checkpoint(ckpt_path)
        model.load_state_dict(state["model"])
        batch_rng.bit_generator.state = state["batch_rng"]
        probe_rng.bit_generator.state = state["probe_rng"]
        run = state["run"]
        if run["done"] and result_path.is_file():
            print(f"{name}: already finished, keeping {result_path}", file=log)
            return orjson.loads(result_path.read_bytes())

    def probe():
        return sample_batch(probe_data, cfg.batch_size, cfg.context, probe_rng)

    def checkpoint():
        save_checkpoint(ckpt_path, {"name": name, "config": cfg.to_dict(), "model": model.state_dict(),
                                    "batch_rng": batch_rng.bit_generator.state,
                                    "probe_rng": probe_rng.bit_generator.state, "run": run})

    val_set = list(eval_batches(splits.val, cfg.batch_size, cfg.context, cfg.eval_batches))
    hist, tokens_per_step = run["history"], cfg.batch_size * cfg.context
    progress = Progress(name, cfg.steps, tokens_per_step, log)
    wall_start = time.perf_counter() - run["wall_s"]
    now = clock(cfg.clock)
    stopped = False
    out_of_time = seconds is not None and run["train_s"] >= seconds  # a resumed run that had spent it
    while run["step"] < cfg.steps and not stopped and not out_of_time:
        step = run["step"]
        x, y = sample_batch(splits.train, cfg.batch_size, cfg.context, batch_rng)
        t0 = now()
        loss = model.train_step(x, y)
        events = model.on_step_end(step, probe)
        dt = now() - t0
        if not math.isfinite(loss):
            raise UserError(f"{name}: loss became {loss} at step {step}; lower the learning rate")
        run["train_s"] += dt
        run["train_flops"] += model.flops_per_token() * tokens_per_step
        run["step_ms"].append(dt * 1e3)
        hist["step"].append(step)
        hist["train_loss"].append(loss)
        run["events"].extend(events)
        stopped = any(e.get("type") == "stop" for e in events)
        out_of_time = seconds is not None and run["train_s"] >= seconds
        run["step"] = step + 1
        val = None
        if run["step"] % cfg.eval_interval == 0 or run["step"] == cfg.steps or stopped or out_of_time:
            val = model.evaluate(val_set)
            hist["val_step"].append(step)
            hist["val_loss"].append(val)
            hist["val_train_s"].append(run["train_s"])
            hist["val_flops"].append(run["train_flops"])
        progress.update(run["step"], loss, val, dt)
        run["wall_s"] = time.perf_counter() - wall_start
        if cfg.checkpoint_interval and run["step"] % cfg.checkpoint_interval == 0:
            checkpoint()
    result = finish(name, model, cfg, splits, run, stopped)
    result["budget"] = {"seconds": seconds, "clock": cfg.clock, "plan": plan, "out_of_time": out_of_time,
                        "equal_time": allotted}
    run["done"] = True
    run["wall_s"] = time.perf_counter() - wall_start
    result["wall_s"] = run["wall_s"]
    checkpoint()
    write_json(result_path, result)
    return result


def finish(name: str, model, cfg: TrainConfig, splits: Splits, run: dict, stopped: bool) -> dict:
    """Final train/val/test losses, speed, samples and events of one model."""
    def loss_on(data):
        return model.evaluate(eval_batches(data, cfg.batch_size, cfg.context, cfg.eval_batches))

    losses = {"train": loss_on(splits.train), "val": loss_on(splits.val), "test": loss_on(splits.test)}
    prompt = splits.val[: min(16, cfg.context)]
    sample = model.generate(prompt, cfg.sample_length, SAMPLE_TEMPERATURE, SAMPLE_TOP_K, seed=cfg.seed)
    step_ms = np.array(run["step_ms"]) if run["step_ms"] else np.zeros(1)
    events = run["events"]
    return {
        "model": name,
        "stats": model.stats(),
        "steps": run["step"],
        "stopped_early": stopped,
        **loss_summary(losses),
        "tokens_per_s": run["step"] * cfg.batch_size * cfg.context / max(run["train_s"], 1e-9),
        "ms_per_step": float(np.median(step_ms)),
        "ms_per_step_min": float(step_ms.min()),
        "train_s": run["train_s"],
        "train_flops": run["train_flops"],
        "history": run["history"],
        "events": {"counts": dict(Counter(e.get("type", "?") for e in events)), "list": events},
        "samples": [{"prompt": decode(prompt), "text": decode(sample[len(prompt):]),
                     "temperature": SAMPLE_TEMPERATURE, "top_k": SAMPLE_TOP_K}],
    }
