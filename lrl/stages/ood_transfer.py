"""Stage 4b: does what the exported student learned carry to problems unlike its curriculum?

The artifact stage 4 deployed and the base student answer --ood-items problems of each variant the
domain names as out of distribution for the run's variant (`domain.ood_variants`: for scheduling,
many more meetings and minute resolution), in the student's first trained prompt format, paired
per variant (exact McNemar, Newcombe CI). Longer problems need longer worked solutions, so each
variant's answer limit is the curriculum's factor over the longest solver solution of its items,
counted with the student's tokenizer, never below stage 4's limit. Records are saved chunk by
chunk in the stage state and every call goes through the run's response cache, as in stage 4.
"""
from __future__ import annotations

import math
from typing import Callable

from backends.llm import estimate_tokens
from lrl.curriculum import LIMIT_FACTOR
from lrl.evaluation import compare
from lrl.stage import CallSizes, PlannedCall, ReportRow, Stage
from lrl.stages import lora_transfer
from lrl.stages.context import StageContext, evaluate, evaluation_summary, model_label
from lrl.student_prompt import prompt_strategy, strategy_steps


def ood_variants(ctx: StageContext) -> tuple[str, ...]:
    """The domain's out-of-distribution variants for this run's variant (none for a domain without them)."""
    return tuple(getattr(ctx.domain, "ood_variants", {}).get(ctx.config.variant, ()))


def answer_limit(ctx: StageContext, problems, strategy: str | None, floor: int,
                 count_tokens: Callable[[str], int]) -> int:
    """max_tokens for these problems: LIMIT_FACTOR x their longest worked solution in the trained style."""
    verbose = ctx.config.trace_style == "verbose"
    steps = strategy_steps(strategy) if verbose and strategy else None
    longest = max(count_tokens(ctx.domain.worked_solution(p, steps, verbose=verbose)) for p in problems)
    return max(floor, math.ceil(LIMIT_FACTOR * longest))


def ood_problems(ctx: StageContext, variant: str):
    """--ood-items problems of `variant` (--n-test when not given)."""
    return ctx.domain.generate(ctx.config.ood_items or ctx.config.n_test, ctx.config.seed, "test", variant)


def run(ctx: StageContext) -> dict:
    """The deployed student and the base student on each out-of-distribution variant, paired."""
    transfer = ctx.run.stage_state(lora_transfer.STAGE.key)
    if not transfer.get("complete"):
        return {"skipped": f"stage {lora_transfer.STAGE.id} has not exported a student"}
    variants = ood_variants(ctx)
    if not variants:
        return {"skipped": f"the {ctx.config.domain} domain names no out-of-distribution variant "
                           f"for {ctx.config.variant or 'its default'}"}
    strategy = (ctx.run / "transfer" / "strategy.md").read_text(encoding="utf-8").strip()
    fmt = transfer["result"]["trained_prompts"][0]
    exported = lora_transfer.exported_llm(ctx, transfer["files"]["files"][transfer["export"]["deployed"]])
    asked = prompt_strategy(fmt, strategy)
    count_tokens = lora_transfer.student_token_counter(lora_transfer.student_gguf(ctx.config.student))
    results = {}
    try:
        for variant in variants:
            problems = ood_problems(ctx, variant)
            limit = answer_limit(ctx, problems, strategy, transfer["curriculum"]["generation_limit"], count_tokens)
            mine = evaluate(ctx, STAGE.key, f"exported_{variant}", ctx.cached(exported), problems, asked,
                            f"stage 4b: exported student, {variant}", max_tokens=limit)
            base = evaluate(ctx, STAGE.key, f"base_{variant}", ctx.student, problems, asked,
                            f"stage 4b: base student, {variant}", max_tokens=limit)
            results[variant] = {"max_tokens": limit, "exported": evaluation_summary(mine, ctx.config.batch_size),
                                "base": evaluation_summary(base, ctx.config.batch_size),
                                "vs_base": compare(mine, base)}
    finally:
        exported.unload()
    return {"model": transfer["export"]["deployed_spec"], "base_model": model_label(ctx.student), "role": "student",
            "prompt": fmt, "variants": results}


def planned_calls(ctx: StageContext, sizes: CallSizes) -> list[PlannedCall]:
    """Both students on --ood-items items of each out-of-distribution variant, prompts and answers as long
    as its longest problem needs (estimated in characters; the strategy is not known before the run)."""
    calls = []
    for variant in ood_variants(ctx):
        problems = ood_problems(ctx, variant)
        longest_prompt = max(estimate_tokens(ctx.domain.render_prompt(p)) for p in problems)
        calls.append(("student", 2 * len(problems), sizes.with_strategy_in + longest_prompt,
                      answer_limit(ctx, problems, None, sizes.answer_out, estimate_tokens)))
    return calls


def comparisons(results: dict) -> dict:
    """The exported student against the base student on each out-of-distribution variant."""
    variants = results.get("4b", {}).get("variants", {})
    return {f"4b_{variant}_vs_base": {**found["vs_base"], "title": f"Exported student (A) vs base student (B), "
                                                                  f"out of distribution: {variant}"}
            for variant, found in variants.items()}


def report_rows(result: dict) -> list[ReportRow]:
    """Per variant, the exported student and then the base student."""
    return [row for variant, found in result["variants"].items() for row in (
        ReportRow(f"Exported student, {variant}", result["model"], found["exported"], result["prompt"]),
        ReportRow(f"Base student, {variant}", result["base_model"], found["base"], result["prompt"]))]


# The published plot draws its bars from the paired records instead (lrl.publish.ood_headline).
STAGE = Stage("4b", "ood_transfer", "Exported student, out of distribution", run, default=False,
              planned_calls=planned_calls, comparisons=comparisons, report_rows=report_rows,
              plot_bars=lambda _result: [])
