"""The pre-run cost estimate: how many calls each stage will make, what they could cost in dollars,
and how long the shipped local models take over them.

It is an upper bound: every output runs to max_tokens and no call is a response-cache hit (on a
resumed run many will be). Local time comes from measured tokens per second (`backends.local_speed`),
one sequence at a time, on a quiet 2-core machine, plus loading each model once. It informs; the
hard stop is the ledger's --budget-usd check before each paid call.
"""
from __future__ import annotations

import math
import re

from backends.llm import estimate_tokens
from backends.local_speed import local_speed
from lrl.curriculum import LIMIT_FACTOR
from lrl.ledger import estimate_run_usd
from lrl.prompts import solve_messages
from lrl.stage import CallSizes
from lrl.stages import get_stage
from lrl.stages.context import StageContext

# Qwen's tokenizer gives every digit a token of its own (and the space before it), so worked
# solutions, dense in numbers, hold far more tokens than chars/4: counting digits, words and marks
# tracks the real count within about 5% on every domain's traces.
_TRACE_TOKEN = re.compile(r"\d|\s(?=\d)|[^\W\d]+|[^\w\s]|\n")


def planned_calls(ctx: StageContext) -> list[dict]:
    """One row per (stage, role, kind of call) of the stages still to run: calls, mean input tokens,
    max output tokens, and the dollars they could cost at most."""
    cfg = ctx.config
    solve_in = sum(estimate_tokens(m["content"]) for m in solve_messages(ctx.domain, ctx.splits["test"][0]))
    sizes = CallSizes(solve_in=solve_in, with_strategy_in=solve_in + cfg.distill_max_tokens,
                      solve_out=cfg.solve_max_tokens, answer_out=curriculum_answer_tokens(ctx))
    plan = []
    for stage in map(get_stage, cfg.stages):
        if ctx.run.stage_state(stage.key).get("complete"):
            continue
        for role, calls, tokens_in, tokens_out in stage.planned_calls(ctx, sizes):
            llm = ctx.teacher if role == "teacher" else ctx.student
            speed = local_speed(llm.model)
            plan.append({"stage": stage.id, "role": role, "model": llm.model, "calls": calls,
                         "input_tokens": tokens_in, "max_output_tokens": tokens_out,
                         "usd_upper_bound": estimate_run_usd(llm.price, calls, tokens_in, tokens_out),
                         "local_seconds": calls * speed.call_seconds(tokens_in, tokens_out) if speed else None})
    return plan


def curriculum_answer_tokens(ctx: StageContext) -> int:
    """Stage 4's answer limit: LIMIT_FACTOR x the longest worked solution on a sample of train problems."""
    cfg = ctx.config
    problems = ctx.domain.generate(20, cfg.seed, "train", cfg.variant)
    longest = max(len(_TRACE_TOKEN.findall(ctx.domain.worked_solution(p, verbose=cfg.trace_style == "verbose")))
                  for p in problems)
    return math.ceil(LIMIT_FACTOR * longest)


def local_time_line(plan: list[dict]) -> str:
    """'Local models: about N min (stage 0 ~a min, ...)' for the rows a shipped local model answers."""
    per_stage: dict[str, float] = {}
    for row in plan:
        if row["local_seconds"] is not None:
            per_stage[row["stage"]] = per_stage.get(row["stage"], 0.0) + row["local_seconds"]
    if not per_stage:
        return ""
    stages = ", ".join(f"stage {stage} ~{seconds / 60:.0f}" for stage, seconds in per_stage.items())
    models = sorted({row["model"] for row in plan if row["local_seconds"] is not None})
    loading = sum(local_speed(model).load_seconds for model in models)
    return (f" Local models ({', '.join(models)}, one call at a time at their measured speed on a quiet "
            f"2-core machine): at most ~{(sum(per_stage.values()) + loading) / 60:.0f} min ({stages} min).")


def check_estimate(ctx: StageContext) -> list[dict]:
    """Tell the person (and the journal) what the remaining stages could cost before any call."""
    plan = planned_calls(ctx)
    calls = sum(row["calls"] for row in plan)
    usd = sum(row["usd_upper_bound"] for row in plan)
    budget = ctx.config.budget_usd
    line = (f"Pre-run estimate: at most {calls} model calls, at most ${usd:.4f}"
            + (f" (budget ${budget:.2f}, spent so far ${ctx.ledger.spent_usd:.4f}; the run stops "
               "before a call that could pass it)" if budget is not None else "")
            + "." + local_time_line(plan) + " Cached responses are free, so a resumed run costs less.")
    ctx.echo(line)
    ctx.run.journal(line)
    return plan
