"""Stage 4: teach the strategy to the student's weights: curriculum -> LoRA -> GGUF export -> test evaluation.

The strategy is one that earned it: stage 2's, adopted because it beat no strategy on validation,
or the person's (--strategy FILE, or rewritten in --review); the pipeline decides (`_strategy_for_transfer`).
0. Validation: the teacher on the dev split with the strategy and without it, paired, so the
   report says what the taught strategy is worth (stage 2's own prompts come from the cache).
1. Curriculum from the train split (teacher solutions kept only when their reasoning checks out,
   and solver worked solutions, compact by default), disjoint from dev and test, in the prompt
   formats of --student-prompts: by default both, the shuffled problems alternating between no
   strategy in the prompt and the strategy in the prompt, so one student is trained on both. A
   tenth is the trainer's validation set. Its longest target sets the answer limit of every
   evaluation below (1.5x, counted with the student's tokenizer), so no trained answer is cut off.
2. LoRA training with the JAX trainer (best adapter by validation loss), one packed row per step, for
   --lora-steps or the steps that make --lora-epochs passes over the training chats (default one);
   the result records steps, rows and epochs, and a run under one epoch says so in one line.
3. Export: fused F16 and Q8_0, the configured quantization and the adapter GGUF, each file's sha256 kept.
4. Fidelity gate on the test split, or on a seeded subset of --gate-items of it, asked in the
   first trained format; it chooses the deployed artifact (the smallest that passes) and a
   failing gate stops the run with its report written.
5. The deployed artifact and the base student, each on the whole test split in both prompt formats,
   paired for McNemar tests with each other and with stage 1's teacher when it ran.
   Where the domain checks the steps of a worked solution (`lrl.step_report`), both students'
   per-step rates say at which step the wrong answers go wrong.
Why train on both formats: the student is measured with exactly the prompt it
was trained with, and with and without the strategy; a student trained on both meets both at
once with one training run and one export. A single-format student (--student-prompts strategy
or zero-shot) is still measured in both formats, its untrained column marked as such.

Every model call, the exported files' included, goes through the run's response cache (an
exported file is named by its sha256) and every evaluation saves its records chunk by chunk, so a
killed run resumes without asking any model the same thing twice; each step's outcome is saved in
the stage state, so a resumed run skips what finished.
"""
from __future__ import annotations

import hashlib
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from backends.export.model_path import resolve_gguf
from backends.llamacpp_draft import DraftCheckedLLM
from backends.spec import BackendOptions, parse_spec
from k1core.errors import UserError
from lrl.curriculum import CurriculumConfig, build_curriculum
from lrl.domain import Problem, write_jsonl
from lrl.evaluation import compare
from lrl.export_job import ExportConfig, artifact_spec, build_export, gate_export
from lrl.model_pool import LazyLLM
from lrl.rundir import write_text_atomic
from lrl.stage import CallSizes, PlannedCall, ReportRow, Stage
from lrl.stages import teacher_baseline
from lrl.stages.context import StageContext, bar_callback, evaluate, evaluation_summary, seeded_subset
from lrl.step_report import has_step_checks, step_summary
from lrl.student_prompt import PROMPT_FORMATS, TRAINING_PROMPTS, prompt_strategy
from lrl.transfer_report import transfer_by_format

def student_gguf(spec_text: str):
    """The student's base GGUF file; LoRA transfer needs local weights, not an API model."""
    spec = parse_spec(spec_text)
    if spec.backend != "llamacpp":
        raise UserError(f"stage 4 trains the student's weights, so --student must be a local GGUF "
                        f"(llamacpp:<file> or an alias), not {spec_text}")
    return resolve_gguf(spec_text)


def student_token_counter(base) -> Callable[[str], int]:
    """Tokens of a text in the student's own vocabulary (what answer limits are counted in)."""
    from backends.student.tokenizer import gguf_tokenizer

    encode = gguf_tokenizer(base).encode
    return lambda text: len(encode(text))


def make_curriculum(ctx: StageContext, strategy: str, base, work) -> dict:
    """The curriculum files and their statistics (target lengths counted with the student's tokenizer)."""
    cfg = ctx.config
    config = CurriculumConfig(n_problems=cfg.curriculum_size, variants=(cfg.variant,) if cfg.variant else (),
                              seed=cfg.seed, teacher_fraction=cfg.teacher_fraction,
                              prompt_formats=TRAINING_PROMPTS[cfg.student_prompts],
                              teacher_params=ctx.params(cfg.solve_max_tokens), trace_style=cfg.trace_style)
    n_teacher = round(cfg.teacher_fraction * cfg.curriculum_size)
    with ctx.bar("stage 4: teacher solutions for the curriculum", n_teacher) as bar:
        curriculum = build_curriculum(ctx.domain, strategy, config, teacher=ctx.teacher,
                                      held_out=list(ctx.splits["dev"]) + list(ctx.splits["test"]),
                                      progress=bar_callback(bar), count_tokens=student_token_counter(base))
    n_val = max(1, len(curriculum.lines) // 10)
    write_jsonl(work / "curriculum.val.jsonl", curriculum.lines[:n_val])
    write_jsonl(work / "curriculum.train.jsonl", curriculum.lines[n_val:])
    stats = curriculum.stats()
    ctx.echo(f"stage 4: curriculum of {stats['lines']} chats ({stats['from_teacher']} teacher, "
             f"{stats['from_solver']} solver; prompts {stats['by_prompt_format']}); teacher solutions rejected: "
             f"{stats['teacher_rejected']}/{stats['teacher_asked']} {stats['teacher_rejected_by_reason']}; "
             f"answers limited to {stats['generation_limit']} tokens")
    return stats


def validate_strategy(ctx: StageContext, strategy: str) -> dict:
    """The taught strategy against no strategy on the validation split, teacher answering, paired.
    Stage 2 asked these very prompts when the strategy is its own, so they come from the cache."""
    dev = ctx.splits["dev"]
    without = evaluate(ctx, STAGE.key, "validation_no_strategy", ctx.teacher, dev, None, "stage 4: validation, no strategy")
    with_it = evaluate(ctx, STAGE.key, "validation_strategy", ctx.teacher, dev, strategy, "stage 4: validation, strategy")
    return {"with_strategy": evaluation_summary(with_it, ctx.config.batch_size),
            "without_strategy": evaluation_summary(without, ctx.config.batch_size),
            "comparison": compare(with_it, without)}


def train_adapter(ctx: StageContext, base, work) -> dict:
    """The LoRA adapter, one packed row per step, for --lora-steps or the steps of --lora-epochs; returns
    the steps, rows and epochs trained (one line says so when they are under one epoch)."""
    from backends.student.finetune import load_training_data
    from backends.student.lora import LoraConfig
    from backends.student.train_config import TrainConfig

    cfg, batch_size, grad_accum = ctx.config, 1, 1  # one packed row per step
    data = load_training_data(base, work / "curriculum.train.jsonl", work / "curriculum.val.jsonl", cfg.lora_seq_len)
    length = data.length(batch_size, grad_accum, cfg.seed, cfg.lora_steps, cfg.lora_epochs)
    ctx.echo(f"stage 4: LoRA training, {length.describe()}")
    if length.shortfall():
        ctx.echo(f"stage 4: {length.shortfall()}")
    steps = length.steps
    tcfg = TrainConfig(out_dir=str(work / "lora"), steps=steps, seq_len=cfg.lora_seq_len, batch_size=batch_size,
                       grad_accum=grad_accum,
                       lora=LoraConfig(rank=cfg.lora_rank, alpha=2.0 * cfg.lora_rank, layers=cfg.lora_layers),  # optim: the LoRA recipe
                       eval_every=max(1, steps // 5), checkpoint_every=max(1, steps // 5), seed=cfg.seed)
    result = data.fit(tcfg)  # patience 0: it trains every step
    return {**length.to_dict(), "best_val_loss": result.best_val, "history": result.history}


def gate_problems(ctx: StageContext) -> list[Problem]:
    """The test split, or --gate-items of it drawn with the run's seed (kept in test order)."""
    return seeded_subset(ctx.splits["test"], ctx.config.gate_items, ctx.config.seed)


def exported_llm(ctx: StageContext, entry: dict) -> LazyLLM:
    """One exported artifact, loaded on its first uncached call, named by its content for the cache."""
    label = f"{Path(entry['path']).name}@{entry['sha256'][:12]}"
    if "base" in entry:
        label = f"{Path(entry['base']).name}@{entry['base_sha256'][:12]}+lora={label}"
    options = BackendOptions(n_threads=ctx.config.n_threads, parallel=ctx.config.parallel)
    return LazyLLM(artifact_spec(entry), options, label=label)


def run_gate(ctx: StageContext, config: ExportConfig, built: dict, problems: list[Problem]) -> dict:
    """The fidelity gate over the built files, every call through the run's response cache (the base
    student's calls through its own, shared with its evaluations)."""
    @contextmanager
    def open_cached(name, entry, _config, drafts):
        if name == "base":
            yield ctx.student
            return
        lazy = exported_llm(ctx, entry)
        try:  # the draft check sits inside the cache: its answers are the artifact's own greedy answers
            yield ctx.cached(DraftCheckedLLM(lazy, drafts) if drafts else lazy)
        finally:
            lazy.unload()

    def progress(quant, done, total):
        if done in (1, total):
            ctx.echo(f"stage 4: gate {quant}: {done}/{total}")

    ctx.echo(f"stage 4: fidelity gate on {len(problems)} of {len(ctx.splits['test'])} test items")
    report = gate_export(built, config, ctx.domain, problems, progress, open_cached)
    entry = built["files"][report["deployed"]]
    in_run = {**entry, "path": str(Path(entry["path"]).relative_to(ctx.run.path))}  # results name no run location
    return {"gate": report["gate"], "deployed": report["deployed"], "deployed_spec": str(artifact_spec(in_run)),
            "items": len(problems), "test_items": len(ctx.splits["test"]),
            "subset_seed": ctx.config.seed if len(problems) < len(ctx.splits["test"]) else None}


def evaluate_both_formats(ctx: StageContext, strategy: str, built: dict, deployed: str,
                          trained: tuple[str, ...], max_tokens: int) -> dict:
    """{"exported"|"base": {format: records}} on the whole test split; the trained formats first."""
    test = ctx.splits["test"]
    exported = exported_llm(ctx, built["files"][deployed])
    order = list(trained) + [f for f in PROMPT_FORMATS if f not in trained]
    runs = {"exported": {}, "base": {}}
    for fmt in order:
        runs["exported"][fmt] = evaluate(ctx, STAGE.key, f"exported_{fmt}", ctx.cached(exported), test,
                                         prompt_strategy(fmt, strategy), f"stage 4: exported student, {fmt}",
                                         max_tokens=max_tokens)
    exported.unload()
    for fmt in order:
        runs["base"][fmt] = evaluate(ctx, STAGE.key, f"base_{fmt}", ctx.student, test, prompt_strategy(fmt, strategy),
                                     f"stage 4: base student, {fmt}", max_tokens=max_tokens)
    return runs


def step_summaries(ctx: StageContext, runs: dict) -> dict:
    """{"steps": {"exported"|"base": {format: per-step rates}}} on the test split; {} when the domain
    checks no steps."""
    if not has_step_checks(ctx.domain):
        return {}
    test = ctx.splits["test"]
    return {"steps": {who: {fmt: step_summary(ctx.domain, test, records) for fmt, records in by_format.items()}
                      for who, by_format in runs.items()}}


def run(ctx: StageContext) -> dict:
    """Curriculum, training, export with its gate, and the paired test evaluations in both prompt formats."""
    cfg, strategy = ctx.config, ctx.strategy
    state = ctx.run.stage_state(STAGE.key)
    taught = hashlib.sha256(strategy.encode()).hexdigest()
    if state.setdefault("strategy_sha256", taught) != taught:
        raise UserError(f"{ctx.run.path}: stage 4 was started with another strategy, and what it built was "
                        "made from that one; resume without changing --strategy, or choose a new --out")
    ctx.run.save_stage_state(STAGE.key, state)
    base = student_gguf(cfg.student)
    work = ctx.run / "transfer"
    work.mkdir(exist_ok=True)
    trained = TRAINING_PROMPTS[cfg.student_prompts]
    out = work / "student.gguf"
    write_text_atomic(work / "strategy.md", strategy.strip() + "\n")

    def export_config() -> ExportConfig:  # answers within the curriculum's limit, known once it is built
        return ExportConfig(quant=cfg.export_quant, strategy=prompt_strategy(trained[0], strategy),
                            max_tokens=state["curriculum"]["generation_limit"], seed=cfg.seed, n_threads=cfg.n_threads,
                            enforce_gate=not cfg.gate_report_only, parallel=cfg.parallel)

    steps = (("validation", lambda: validate_strategy(ctx, strategy)),
             ("curriculum", lambda: make_curriculum(ctx, strategy, base, work)),
             ("training", lambda: train_adapter(ctx, base, work)),
             ("files", lambda: build_export(base, work / "lora" / "best", out, export_config())),
             ("export", lambda: run_gate(ctx, export_config(), state["files"], gate_problems(ctx))))
    for key, step in steps:
        if key not in state:
            value = step()
            state = ctx.run.stage_state(STAGE.key)  # evaluations save their records into it meanwhile
            state[key] = value
            ctx.run.save_stage_state(STAGE.key, state)
    runs = evaluate_both_formats(ctx, strategy, state["files"], state["export"]["deployed"], trained,
                                 state["curriculum"]["generation_limit"])
    teacher_state = ctx.run.stage_state(teacher_baseline.STAGE.key)
    teacher = teacher_state["result"]["records"] if teacher_state.get("complete") else None
    primary = trained[0]
    return {"model": state["export"]["deployed_spec"], "role": "student", "split": "test",
            "prompt": primary, "with_strategy": primary == "strategy", "trained_prompts": list(trained),
            "summary": evaluation_summary(runs["exported"][primary], cfg.batch_size),
            "records": runs["exported"][primary],
            "by_prompt": {fmt: evaluation_summary(records, cfg.batch_size) for fmt, records in runs["exported"].items()},
            "curriculum": state["curriculum"], "strategy_validation": state["validation"],
            "training": {k: v for k, v in state["training"].items() if k != "history"},
            "export": {"files": {q: {"path": str(Path(f["path"]).relative_to(ctx.run.path)), "bytes": f["bytes"],
                                     "sha256": f["sha256"]} for q, f in state["files"]["files"].items()},
                       **state["export"]},
            "transfer": transfer_by_format(runs["exported"], runs["base"], teacher, trained),
            **step_summaries(ctx, runs)}


def planned_calls(ctx: StageContext, sizes: CallSizes) -> list[PlannedCall]:
    """The strategy's validation (stage 2's prompts: cache hits), the teacher's curriculum solutions, then
    the exported and the base student on the test split in both prompt formats. LoRA training, export
    and the fidelity gate run locally in JAX and llama.cpp, not counted here."""
    cfg, n_dev, n_test = ctx.config, len(ctx.splits["dev"]), len(ctx.splits["test"])
    return [PlannedCall("teacher", 2 * n_dev, sizes.with_strategy_in, sizes.solve_out, at_once=n_dev),
            PlannedCall("teacher", round(cfg.teacher_fraction * cfg.curriculum_size), sizes.with_strategy_in,
                        max(sizes.solve_out, sizes.answer_out)),
            PlannedCall("student", 4 * n_test, sizes.with_strategy_in, sizes.answer_out, at_once=n_test)]


def comparisons(results: dict) -> dict:
    """The exported student against the base student and the teacher, per prompt format, and across formats."""
    transfer = results.get("4", {}).get("transfer", {})
    found = {}
    for fmt, summary in transfer.get("formats", {}).items():
        for key in ("vs_base", "vs_teacher"):
            if key in summary:
                found[f"4_{fmt}_{key}"] = summary[key]
    if "strategy_vs_zero_shot" in transfer:
        found["4_strategy_vs_zero-shot"] = transfer["strategy_vs_zero_shot"]
    return found


COMPARISON_TITLES = {
    **{f"4_{fmt}_vs_base": f"Exported student (A) vs base student (B), both {fmt}" for fmt in PROMPT_FORMATS},
    **{f"4_{fmt}_vs_teacher": f"Exported student, {fmt} (A) vs teacher baseline (B)" for fmt in PROMPT_FORMATS},
    "4_strategy_vs_zero-shot": "Exported student, strategy in prompt (A) vs no strategy (B)",
}

def report_rows(result: dict) -> list[ReportRow]:
    """The exported student in its headline prompt format, then in each other format evaluated."""
    rows = [STAGE.summary_row(result)]
    for fmt, summary in result["by_prompt"].items():
        if fmt != result["prompt"]:
            trained = "" if fmt in result["trained_prompts"] else ", not trained on it"
            rows.append(ReportRow(STAGE.title, result["model"], summary, fmt + trained))
    return rows


# Left out of the default run: it trains and exports a model, hours on a CPU. The published plot
# draws its bars from the paired records instead (lrl.publish.transfer_headline).
STAGE = Stage("4", "lora_transfer", "Exported student (LoRA, GGUF)", run, needs_strategy=True,
              teaches_strategy=True, default=False, planned_calls=planned_calls, comparisons=comparisons,
              comparison_titles=COMPARISON_TITLES, report_rows=report_rows, plot_bars=lambda _result: [],
              unplanned_work="LoRA training, export and the fidelity gate")
