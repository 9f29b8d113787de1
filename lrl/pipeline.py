"""`k1 lrl run`: the LRL stages in order, resumable, with every model call cached and metered.

A stage that finished is never run again: its result sits in `stages/<stage>.json` with
`complete: true`. A stage that was interrupted resumes from its saved items, and whatever it
asks again comes from the response cache, so a killed run re-run with the same command ends
with the same results.json and no repeated backend call.
"""
from __future__ import annotations

import hashlib
import importlib.metadata as metadata
import os
import platform
import time
from dataclasses import replace
from typing import Callable

from backends.model_assets import ASSETS
from k1core import __version__ as k1_version
from k1core.errors import UserError
from backends.spec import BackendOptions
from lrl.cache import ResponseCache
from lrl.domain import get_domain, write_problems
from lrl.ledger import Ledger
from lrl.model_pool import build_role_models
from lrl import rounds
from lrl.prompts import TEMPLATE_VERSION
from lrl.run_config import RunConfig
from lrl.run_estimate import check_estimate
from lrl.run_report import render_report
from lrl.sandbox import UNSAFE_WARNING, code_sandbox
from lrl.rundir import RunDir, read_json, write_json_atomic, write_text_atomic
from lrl.stages import all_stages, bootstrap, get_stage
from lrl.stages.context import StageContext, model_label
from lrl.student_prompt import read_strategy

SPLIT_SIZES = (("train", "n_train"), ("dev", "n_val"), ("test", "n_test"))
PACKAGES = ("k1", "numpy", "click", "orjson", "llama_cpp_python", "anthropic", "httpx", "mlx-lm")
RECORD_KEYS = ("records", "without_records")
Reviewer = Callable[[str, bool], dict]


def run(config: RunConfig, *, reviewer: Reviewer | None = None, progress=None,
        echo: Callable[[str], None] = lambda _text: None, llms: dict | None = None,
        command: list[str] | None = None) -> dict:
    """Run (or resume) the configured stages; returns the results dict also written to results.json.

    `reviewer(strategy, adopted)` answers --review; `llms` maps a role to a ready LLM (tests);
    `command` is the command line that started this process, kept in the manifest's session.
    """
    if config.review and reviewer is None:
        raise UserError("--review needs someone to ask; none was given")
    domain = get_domain(config.domain)
    rundir = RunDir(config.out)
    rundir.bind_config(config.identity())
    sandbox = _sandbox_record(rundir, domain)  # refuses here, before any model call, if code cannot be isolated
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
    _write_manifest(rundir, config, models, command)
    ctx = StageContext(config, rundir, domain, splits, models["teacher"], models["student"], ledger, progress, echo,
                       cache=cache)
    check_estimate(ctx)
    results = _with_finished_stages(ctx.run, _run_stages(ctx, reviewer))
    second = (_second_round(ctx, results["4"])
              if config.rounds == 2 and "skipped" not in results.get("4", {"skipped": True}) else None)
    ctx.save_ledger()
    public = _public_results(config, results, models, second)
    if sandbox:
        public["sandbox"] = sandbox
    write_json_atomic(rundir / "results.json", public)
    write_text_atomic(rundir / "report.md", render_report(public, ledger.summary()))
    cache.close()
    return public


def _sandbox_record(rundir: RunDir, domain) -> dict | None:
    """The sandbox that ran model code, over every process of this run: unisolated once, said always."""
    current = code_sandbox([domain])
    if current is None:
        return None
    seen = read_json(rundir / "sandbox.json", [])
    if current not in seen:
        seen.append(current)
        write_json_atomic(rundir / "sandbox.json", seen)
    if all(s["isolated"] for s in seen):
        return current
    return {**current, "isolated": False, "warning": UNSAFE_WARNING}


def _ledger(rundir: RunDir, budget_usd: float | None) -> Ledger:
    """The ledger carried over from an earlier process of this run, with this run's budget."""
    saved = read_json(rundir / "ledger.json")
    ledger = Ledger.from_dict(saved) if saved else Ledger(budget_usd)
    ledger.budget_usd = budget_usd
    return ledger


def _run_stages(ctx: StageContext, reviewer: Reviewer | None) -> dict:
    """Each asked stage in order: a finished one's saved result, or its run (given the strategy when
    it needs one), saved as complete before the next starts. Keyed by stage id."""
    results = {}
    for stage in map(get_stage, ctx.config.stages):
        state = ctx.run.stage_state(stage.key)
        if state.get("complete"):
            results[stage.id] = state["result"]
            continue
        strategy, provenance = None, None
        if stage.needs_strategy:
            choose = _strategy_for_transfer if stage.teaches_strategy else _strategy_for_teaching
            strategy, provenance = choose(ctx, reviewer)
            if strategy is None:
                results[stage.id] = {"skipped": provenance.get("skipped") or provenance["review"] or "no strategy"}
                continue
        ctx.echo(f"stage {stage.id}: {stage.label}")
        started, load_start = time.time(), _load_average()
        ctx.run.journal(f"Stage {stage.id} ({stage.name}) started; load average {_loads(load_start)}.")
        with ctx.ledger.stage(stage.key):
            result = stage.run(replace(ctx, strategy=strategy))
        if provenance:
            result["strategy"] = provenance
        if "skipped" in result:  # e.g. what it needs has not run yet: asked again next time
            ctx.echo(f"stage {stage.id}: skipped ({result['skipped']})")
            results[stage.id] = result
            continue
        timing = _timing(started, load_start)
        ctx.run.save_stage_state(stage.key, {**ctx.run.stage_state(stage.key), "complete": True, "result": result,
                                             "timing": timing})
        ctx.save_ledger()
        ctx.run.journal(f"Stage {stage.id} ({stage.name}) finished in {timing['seconds']:.0f} s; load average "
                        f"{_loads(timing['load_end'])}." + _accuracy_note(result))
        results[stage.id] = result
    return results


def _with_finished_stages(run: RunDir, asked: dict) -> dict:
    """`asked` plus every stage an earlier process of this run finished, in stage order: results.json
    and report.md describe the whole run, not only the stages named on this command line."""
    merged = {}
    for stage in all_stages():
        if stage.id in asked:
            merged[stage.id] = asked[stage.id]
        elif (state := run.stage_state(stage.key)).get("complete"):
            merged[stage.id] = state["result"]
    return merged


def _load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages, saved beside each stage's wall time (a busy machine is slower)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # not every platform reports one
        return None


def _loads(load: list[float] | None) -> str:
    return "not reported" if load is None else " / ".join(f"{x:.2f}" for x in load)


def _accuracy_note(result: dict) -> str:
    summary = result.get("summary")
    if not summary:
        return ""
    low, high = summary["ci95"]
    return f" Accuracy {summary['accuracy']:.1%} (95% CI {low:.1%}-{high:.1%}) on {summary['n']} items."


def _strategy_for_teaching(ctx: StageContext, reviewer: Reviewer | None) -> tuple[str | None, dict]:
    """The final strategy from stage 2 after --review if asked (None when rejected or absent), and
    where it came from: adopted on validation or only the best candidate, and the review decision."""
    boot = ctx.run.stage_state(bootstrap.STAGE.key)
    if not boot.get("complete"):
        users = [s.id for s in all_stages() if s.needs_strategy]
        named = " and ".join(filter(None, [", ".join(users[:-1]), users[-1]]))
        raise UserError(f"stage{'s' if len(users) > 1 else ''} {named} need{'' if len(users) > 1 else 's'} "
                        f"the strategy from stage {bootstrap.STAGE.id}; include {bootstrap.STAGE.id} in --stages")
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


def _timing(started: float, load_start) -> dict:
    """When a stage started, its wall seconds and the load averages at its start and end."""
    return {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "seconds": round(time.time() - started, 1), "load_start": load_start, "load_end": _load_average()}


def _second_round(ctx: StageContext, round1: dict) -> dict:
    """--rounds 2 after stage 4 (lrl/rounds.py), run once and saved like a stage."""
    state = ctx.run.stage_state(rounds.NAME)
    if not state.get("complete"):
        ctx.echo("round 2: the exported student's failures go back to the teacher")
        started, load_start = time.time(), _load_average()
        with ctx.ledger.stage(rounds.NAME):
            result = rounds.run(ctx, (ctx.run / "transfer" / "strategy.md").read_text(encoding="utf-8").strip(), round1)
        state = {**ctx.run.stage_state(rounds.NAME), "complete": True, "result": result,
                 "timing": _timing(started, load_start)}
        ctx.run.save_stage_state(rounds.NAME, state)
        ctx.save_ledger()
    return state["result"]


NOTHING_TO_TEACH = ("stage 2 adopted no strategy (none beat no strategy and the majority class on validation), "
                    "so stage 4 has nothing to teach; give one with --strategy FILE")


def _strategy_for_transfer(ctx: StageContext, reviewer: Reviewer | None) -> tuple[str | None, dict]:
    """What stage 4 teaches: the --strategy file, else stage 2's strategy only if it was adopted on
    validation (or rewritten by the person in --review); otherwise nothing, said in one line."""
    if ctx.config.strategy_file is not None:
        return read_strategy(ctx.config.strategy_file), {"source": "user-supplied", **_user_strategy(ctx.config),
                                                         "adopted_on_validation": None, "review": None}
    text, provenance = _strategy_for_teaching(ctx, reviewer)
    if text is not None and provenance["review"] == "edit":
        return text, {**provenance, "source": "stage 2, edited in review"}
    if text is None or not provenance["adopted_on_validation"]:
        if provenance["review"] != "reject":
            ctx.echo(f"stage 4: {NOTHING_TO_TEACH}")
            ctx.run.journal(f"Stage 4 did not run: {NOTHING_TO_TEACH}.")
        return None, {**provenance, "skipped": provenance["review"] or "no adopted strategy"}
    return text, {**provenance, "source": "stage 2, adopted on validation"}


def _public_results(config: RunConfig, results: dict, models: dict, second_round: dict | None = None) -> dict:
    """results.json: every stage's summaries, round 2's if it ran, and the paired tests, without per-item records."""
    stages = {s: {k: v for k, v in r.items() if k not in RECORD_KEYS} for s, r in results.items()}
    comparisons = {}
    for stage in all_stages():
        comparisons.update(stage.comparisons(results))
    if second_round and "test_round2_vs_round1" in second_round:
        comparisons["round2_vs_round1"] = second_round["test_round2_vs_round1"]
    return {"config": config.identity(), "template_version": TEMPLATE_VERSION,
            "models": {role: model_label(llm) for role, llm in models.items()}, "stages": stages,
            **({"round2": second_round} if second_round else {}), "comparisons": comparisons}


def _package_versions() -> dict:
    versions = {"python": platform.python_version(), "k1 (source)": k1_version}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _user_strategy(config: RunConfig) -> dict | None:
    """The --strategy file and its content's sha256, as the manifest records a user-supplied strategy."""
    if config.strategy_file is None:
        return None
    text = read_strategy(config.strategy_file)
    return {"file": str(config.strategy_file), "sha256": hashlib.sha256(text.encode()).hexdigest()}


def _write_manifest(rundir: RunDir, config: RunConfig, models: dict, command: list[str] | None) -> None:
    """manifest.json: versions, seeds, models, template version; each process of the run appends a session
    with its command line."""
    manifest = read_json(rundir / "manifest.json") or {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "sessions": []}
    manifest.update({
        "seed": config.seed, "split_seeds": {split: config.seed for split, _ in SPLIT_SIZES},
        "models": {role: {"spec": getattr(config, role), "backend": m.backend, "model": m.model,
                          "file_sha256": ASSETS[m.model].sha256 if m.model in ASSETS else None}
                   for role, m in models.items()},
        "template_version": TEMPLATE_VERSION, "packages": _package_versions(),
    })
    manifest["sessions"].append({"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "command": command,
                                 "stages": list(config.stages), "offline": config.offline,
                                 "budget_usd": config.budget_usd, "user_strategy": _user_strategy(config)})
    write_json_atomic(rundir / "manifest.json", manifest)
