"""The pre-run cost estimate: how many calls each stage will make and what they could cost.

It is an upper bound: every output runs to max_tokens and no call is a response-cache hit (on a
resumed run many will be). It informs; the hard stop is the ledger's --budget-usd check before
each paid call.
"""
from __future__ import annotations

import math

from backends.llm import estimate_tokens
from lrl.ledger import estimate_run_usd
from lrl.prompts import REFLECTION_ITEMS, RESPONSE_CHARS, solve_messages
from lrl.run_config import STAGE_NAMES
from lrl.stages.context import StageContext


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
    rows = {
        "0": [("student", n_test, solve_in, solve_out)],
        "1": [("teacher", n_test, solve_in, solve_out)],
        "2": [("teacher", n_dev + n_train + distillations * n_dev, with_strategy_in, solve_out),
              ("teacher", batches, reflect_in, cfg.reflect_max_tokens),
              ("teacher", distillations, distill_in, cfg.distill_max_tokens)],
        "3": [("teacher", n_test, with_strategy_in, solve_out)],
        "3b": [("student", 2 * n_test, with_strategy_in, solve_out)],
        # stage 4's model calls are the teacher's curriculum solutions; training, export and the
        # exported student's evaluation run locally in JAX and llama.cpp
        "4": [("teacher", round(cfg.teacher_fraction * cfg.curriculum_size), with_strategy_in, solve_out)],
    }
    plan = []
    for stage in cfg.stages:
        if ctx.run.stage_state(f"{stage}_{STAGE_NAMES[stage]}").get("complete"):
            continue
        for role, calls, tokens_in, tokens_out in rows[stage]:
            price = (ctx.teacher if role == "teacher" else ctx.student).price
            usd = estimate_run_usd(price, calls, tokens_in, tokens_out)
            plan.append({"stage": stage, "role": role, "calls": calls, "input_tokens": tokens_in,
                         "max_output_tokens": tokens_out, "usd_upper_bound": usd})
    return plan


def check_estimate(ctx: StageContext) -> list[dict]:
    """Tell the person (and the journal) what the remaining stages could cost before any call."""
    plan = planned_calls(ctx)
    calls = sum(row["calls"] for row in plan)
    usd = sum(row["usd_upper_bound"] for row in plan)
    budget = ctx.config.budget_usd
    line = (f"Pre-run estimate: at most {calls} model calls, at most ${usd:.4f}"
            + (f" (budget ${budget:.2f}, spent so far ${ctx.ledger.spent_usd:.4f}; the run stops "
               "before a call that could pass it)" if budget is not None else "")
            + ". Cached responses are free, so a resumed run costs less.")
    ctx.echo(line)
    ctx.run.journal(line)
    return plan
