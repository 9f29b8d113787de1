"""The pre-run cost estimate: how many calls each stage will make and what they could cost.

It is an upper bound: every output runs to max_tokens and no call is a response-cache hit (on a
resumed run many will be). It informs; the hard stop is the ledger's --budget-usd check before
each paid call.
"""
from __future__ import annotations

from backends.llm import estimate_tokens
from lrl.ledger import estimate_run_usd
from lrl.prompts import solve_messages
from lrl.stage import CallSizes
from lrl.stages import get_stage
from lrl.stages.context import StageContext


def planned_calls(ctx: StageContext) -> list[dict]:
    """One row per (stage, role, kind of call) of the stages still to run: calls, mean input tokens,
    max output tokens, and the dollars they could cost at most."""
    cfg = ctx.config
    solve_in = sum(estimate_tokens(m["content"]) for m in solve_messages(ctx.domain, ctx.splits["test"][0]))
    sizes = CallSizes(solve_in=solve_in, with_strategy_in=solve_in + cfg.distill_max_tokens,
                      solve_out=cfg.solve_max_tokens)
    plan = []
    for stage in map(get_stage, cfg.stages):
        if ctx.run.stage_state(stage.key).get("complete"):
            continue
        for role, calls, tokens_in, tokens_out in stage.planned_calls(ctx, sizes):
            price = (ctx.teacher if role == "teacher" else ctx.student).price
            usd = estimate_run_usd(price, calls, tokens_in, tokens_out)
            plan.append({"stage": stage.id, "role": role, "calls": calls, "input_tokens": tokens_in,
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
