"""`k1 lrl run`: the LRL stages in order, resumable, with every model call cached and metered.

A stage that finished is never run again: its result sits in `stages/<stage>.json` with
`complete: true`. A stage that was interrupted resumes from its saved items, and whatever it
asks again comes from the response cache, so a killed run re-run with the same command ends
with the same results.json and no repeated backend call.
"""
from __future__ import annotations

import importlib.metadata as metadata
import platform
import time
from typing import Callable

from backends.model_assets import ASSETS
from k1core import __version__ as k1_version
from k1core.errors import UserError
from backends.spec import BackendOptions
from lrl.cache import ResponseCache
from lrl.domain import get_domain, write_problems
from lrl.evaluation import compare
from lrl.ledger import Ledger
from lrl.model_pool import build_role_models
from lrl.prompts import TEMPLATE_VERSION
from lrl.run_config import STAGE_NAMES, RunConfig
from lrl.run_estimate import check_estimate
from lrl.run_report import render_report
from lrl.rundir import RunDir, read_json, write_json_atomic, write_text_atomic
from lrl.stages import bootstrap, lora_transfer, student_baseline, teacher_baseline, teacher_strategy, transfer_check
from lrl.stages.context import StageContext, model_label

SPLIT_SIZES = (("train", "n_train"), ("dev", "n_val"), ("test", "n_test"))
PACKAGES = ("k1", "numpy", "click", "orjson", "llama_cpp_python", "anthropic", "httpx", "mlx-lm")
RECORD_KEYS = ("records", "without_records")
Reviewer = Callable[[str, bool], dict]


def run(config: RunConfig, *, reviewer: Reviewer | None = None, progress=None,
        echo: Callable[[str], None] = lambda _text: None, llms: dict | None = None) -> dict:
    """Run (or resume) the configured stages; returns the results dict also written to results.json.

    `reviewer(strategy, adopted)` answers --review; `llms` maps a role to a ready LLM (tests).
    """
    if config.review and reviewer is None:
        raise UserError("--review needs someone to ask; none was given")
    domain = get_domain(config.domain)
    rundir = RunDir(config.out)
    rundir.bind_config(config.identity())
    splits = {split: domain.generate(getattr(config, size), config.seed, split, config.variant)
              for split, size in SPLIT_SIZES}
    (rundir / "problems").mkdir(exist_ok=True)
    for split, problems in splits.items():
        write_problems(rundir / "problems" / f"{split}.jsonl", problems)
    ledger = _ledger(rundir, config.budget_usd)
    cache = ResponseCache(rundir.cache_path)
    models = build_role_models({"teacher": config.teacher, "student": config.student}, cache, ledger,
                               TEMPLATE_VERSION, offline=config.offline, injected=llms,
                               options=BackendOptions(n_threads=config.n_threads, parallel=config.parallel,
                                                      anthropic_batches=config.anthropic_batches,
                                                      batch_dir=rundir.path / "batches"))
    _write_manifest(rundir, config, models)
    ctx = StageContext(config, rundir, domain, splits, models["teacher"], models["student"], ledger, progress, echo,
                       cache=cache)
    check_estimate(ctx)
    results = _run_stages(ctx, reviewer)
    ctx.save_ledger()
    public = _public_results(config, results, models)
    write_json_atomic(rundir / "results.json", public)
    write_text_atomic(rundir / "report.md", render_report(public, ledger.summary()))
    cache.close()
    return public


def _ledger(rundir: RunDir, budget_usd: float | None) -> Ledger:
    """The ledger carried over from an earlier process of this run, with this run's budget."""
    saved = read_json(rundir / "ledger.json")
    ledger = Ledger.from_dict(saved) if saved else Ledger(budget_usd)
    ledger.budget_usd = budget_usd
    return ledger


def _run_stages(ctx: StageContext, reviewer: Reviewer | None) -> dict:
    results = {}
    for stage in ctx.config.stages:
        name = f"{stage}_{STAGE_NAMES[stage]}"
        state = ctx.run.stage_state(name)
        if state.get("complete"):
            results[stage] = state["result"]
            continue
        strategy, provenance = None, None
        if stage in ("3", "3b", "4"):
            strategy, provenance = _strategy_for_teaching(ctx, reviewer)
            if strategy is None:
                results[stage] = {"skipped": provenance["review"] or "no strategy"}
                continue
        ctx.echo(f"stage {stage}: {STAGE_NAMES[stage].replace('_', ' ')}")
        started = time.time()
        with ctx.ledger.stage(name):
            result = _STAGE_RUNNERS[stage](ctx, strategy)
        if provenance:
            result["strategy"] = provenance
        ctx.run.save_stage_state(name, {**ctx.run.stage_state(name), "complete": True, "result": result})
        ctx.save_ledger()
        ctx.run.journal(f"Stage {stage} ({STAGE_NAMES[stage]}) finished in {time.time() - started:.0f} s."
                        + _accuracy_note(result))
        results[stage] = result
    return results


_STAGE_RUNNERS = {
    "0": lambda ctx, _s: student_baseline.run(ctx),
    "1": lambda ctx, _s: teacher_baseline.run(ctx),
    "2": lambda ctx, _s: bootstrap.run(ctx),
    "3": teacher_strategy.run,
    "3b": transfer_check.run,
    "4": lora_transfer.run,
}


def _accuracy_note(result: dict) -> str:
    summary = result.get("summary")
    if not summary:
        return ""
    low, high = summary["ci95"]
    return f" Accuracy {summary['accuracy']:.1%} (95% CI {low:.1%}-{high:.1%}) on {summary['n']} items."


def _strategy_for_teaching(ctx: StageContext, reviewer: Reviewer | None) -> tuple[str | None, dict]:
    """The final strategy from stage 2 after --review if asked (None when rejected or absent), and
    where it came from: adopted on validation or only the best candidate, and the review decision."""
    boot = ctx.run.stage_state(f"2_{STAGE_NAMES['2']}")
    if not boot.get("complete"):
        raise UserError("stages 3, 3b and 4 need the strategy from stage 2; include 2 in --stages")
    text, adopted = bootstrap.final_strategy(boot["result"])
    if text is None:
        return None, {"adopted_on_validation": False, "review": None}
    review = ctx.run.stage_state("review")
    if not review and ctx.config.review:
        review = {**reviewer(text, adopted), "adopted_on_validation": adopted}
        ctx.run.save_stage_state("review", review)
        ctx.run.journal(f"Review: the person chose to {review['decision']} the strategy.")
    if review:
        text = review["text"]
    if text is not None:
        write_text_atomic(ctx.run / "strategy.md", text.strip() + "\n")
    return text, {"adopted_on_validation": adopted, "review": review.get("decision")}


def _public_results(config: RunConfig, results: dict, models: dict) -> dict:
    """results.json: every stage's summaries and the paired tests, without per-item records."""
    stages = {s: {k: v for k, v in r.items() if k not in RECORD_KEYS} for s, r in results.items()}
    comparisons = {}
    if "records" in results.get("3", {}) and "records" in results.get("1", {}):
        comparisons["3_vs_1"] = compare(results["3"]["records"], results["1"]["records"])
    if "comparison" in results.get("3b", {}):
        comparisons["3b_with_vs_without"] = results["3b"]["comparison"]
    transfer = results.get("4", {}).get("transfer", {})
    for fmt, summary in transfer.get("formats", {}).items():
        for key in ("vs_base", "vs_teacher"):
            if key in summary:
                comparisons[f"4_{fmt}_{key}"] = summary[key]
    if "strategy_vs_zero_shot" in transfer:
        comparisons["4_strategy_vs_zero-shot"] = transfer["strategy_vs_zero_shot"]
    return {"config": config.identity(), "template_version": TEMPLATE_VERSION,
            "models": {role: model_label(llm) for role, llm in models.items()}, "stages": stages,
            "comparisons": comparisons}


def _package_versions() -> dict:
    versions = {"python": platform.python_version(), "k1 (source)": k1_version}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _write_manifest(rundir: RunDir, config: RunConfig, models: dict) -> None:
    """manifest.json: versions, seeds, models, template version; each process of the run appends a session."""
    manifest = read_json(rundir / "manifest.json") or {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "sessions": []}
    manifest.update({
        "seed": config.seed, "split_seeds": {split: config.seed for split, _ in SPLIT_SIZES},
        "models": {role: {"spec": getattr(config, role), "backend": m.backend, "model": m.model,
                          "file_sha256": ASSETS[m.model].sha256 if m.model in ASSETS else None}
                   for role, m in models.items()},
        "template_version": TEMPLATE_VERSION, "packages": _package_versions(),
    })
    manifest["sessions"].append({"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                 "stages": list(config.stages), "offline": config.offline,
                                 "budget_usd": config.budget_usd})
    write_json_atomic(rundir / "manifest.json", manifest)
