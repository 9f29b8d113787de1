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
from lrl.prompts import REFLECTION_ITEMS, RESPONSE_CHARS, solve_messages
from lrl.run_config import STAGE_NAMES
from lrl.stages.context import StageContext

# Qwen's tokenizer gives every digit a token of its own (and the space before it), so worked
# solutions, dense in numbers, hold far more tokens than chars/4: counting digits, words and marks
# tracks the real count within about 5% on every domain's traces.
_TRACE_TOKEN = re.compile(r"\d|\s(?=\d)|[^\W\d]+|[^\w\s]|\n")


def planned_calls(ctx: StageContext) -> list[dict]:
    """One row per (stage, role, kind of call): calls, mean input tokens, max output tokens."""
    cfg, splits = ctx.config, ctx.splits
    n_test, n_dev, n_train = len(splits["test"]), len(splits["dev"]), len(splits["train"])
    solve_in = sum(estimate_tokens(m["content"]) for m in solve_messages(ctx.domain, splits["test"][0]))
    with_strategy_in = solve_in + cfg.distill_max_tokens
    batches = math.ceil(n_train / cfg.batch_size)
    distillations = math.ceil(batches / cfg.distill_every)
    reflect_in = REFLECTION_ITEMS * (solve_in + RESPONSE_CHARS // 4)
    distill_in = cfg.distill_every * cfg.reflect_max_tokens + cfg.distill_max_tokens
    solve_out = cfg.solve_max_tokens
    answer_out = curriculum_answer_tokens(ctx)
    rows = {
        "0": [("student", n_test, solve_in, solve_out)],
        "1": [("teacher", n_test, solve_in, solve_out)],
        "2": [("teacher", n_dev + n_train + distillations * n_dev, with_strategy_in, solve_out),
              ("teacher", batches, reflect_in, cfg.reflect_max_tokens),
              ("teacher", distillations, distill_in, cfg.distill_max_tokens)],
        "3": [("teacher", n_test, with_strategy_in, solve_out)],
        "3b": [("student", 2 * n_test, with_strategy_in, solve_out)],
        # stage 4: the strategy's validation (stage 2's prompts: cache hits), the teacher's curriculum
        # solutions, then the exported and the base student on the test split in both prompt formats.
        # LoRA training, export and the fidelity gate run locally in JAX and llama.cpp, not counted here.
        "4": [("teacher", 2 * n_dev, with_strategy_in, solve_out),
              ("teacher", round(cfg.teacher_fraction * cfg.curriculum_size), with_strategy_in,
               max(solve_out, answer_out)),
              ("student", 4 * n_test, with_strategy_in, answer_out)],
    }
    plan = []
    for stage in cfg.stages:
        if ctx.run.stage_state(f"{stage}_{STAGE_NAMES[stage]}").get("complete"):
            continue
        for role, calls, tokens_in, tokens_out in rows[stage]:
            llm = ctx.teacher if role == "teacher" else ctx.student
            speed = local_speed(llm.model)
            plan.append({"stage": stage, "role": role, "model": llm.model, "calls": calls, "input_tokens": tokens_in,
                         "max_output_tokens": tokens_out,
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
