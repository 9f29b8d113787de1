"""The pre-run estimate: how many calls each stage will make, what they could cost in dollars, how
long the shipped local models take over them, and what the test split's size can show.

Time and dollars are upper bounds: every output runs to max_tokens and no call is a response-cache
hit (on a resumed run many will be). Local time comes from measured tokens per second
(`backends.local_speed`: this machine's once `k1 models --calibrate` has run, else shipped figures),
with the calls a stage hands the model together decoded `--parallel` at a time at the measured
batched speed, plus loading each model once. It informs; the hard stop is the ledger's --budget-usd
check before each paid call.
"""
from __future__ import annotations

import math
import re

from backends.llm import estimate_tokens
from backends.local_speed import TokenSpeed, local_speed
from lrl.curriculum import LIMIT_FACTOR
from lrl.ledger import estimate_run_usd
from lrl.mcnemar_power import items_needed, mcnemar_power, smallest_detectable_gain
from lrl.prompts import solve_messages
from lrl.stage import CallSizes, PlannedCall
from lrl.stages import get_stage
from lrl.stages.context import StageContext
from lrl.stats import wilson_half_width

# Qwen's tokenizer gives every digit a token of its own (and the space before it), so worked
# solutions, dense in numbers, hold far more tokens than chars/4: counting digits, words and marks
# tracks the real count within about 5% on every domain's traces.
_TRACE_TOKEN = re.compile(r"\d|\s(?=\d)|[^\W\d]+|[^\w\s]|\n")

# Share of test items on which the trained and the base student disagree in correctness. The base
# student sits near the 50% majority class on the balanced sets, so it is right about independently of
# the trained one, and independence puts half the items in the discordant cells whatever the trained
# accuracy. A student that keeps its base's answers would disagree less and need fewer items.
ASSUMED_DISCORDANCE = 0.5
TARGET_GAIN = 0.20  # the gain a run's test split must be able to separate from the base student
POWER = 0.8


def planned_calls(ctx: StageContext) -> list[dict]:
    """One row per (stage, role, kind of call) of the stages still to run: calls, mean input tokens,
    max output tokens, the dollars they could cost at most, and a shipped local model's seconds."""
    cfg = ctx.config
    solve_in = sum(estimate_tokens(m["content"]) for m in solve_messages(ctx.domain, ctx.splits["test"][0]))
    sizes = CallSizes(solve_in=solve_in, with_strategy_in=solve_in + cfg.distill_max_tokens,
                      solve_out=cfg.solve_max_tokens, answer_out=curriculum_answer_tokens(ctx))
    plan = []
    for stage in map(get_stage, cfg.stages):
        if ctx.run.stage_state(stage.key).get("complete"):
            continue
        for call in (PlannedCall(*row) for row in stage.planned_calls(ctx, sizes)):
            llm = ctx.teacher if call.role == "teacher" else ctx.student
            speed = local_speed(llm.model)
            plan.append({"stage": stage.id, "role": call.role, "model": llm.model, "calls": call.calls,
                         "input_tokens": call.input_tokens, "max_output_tokens": call.max_output_tokens,
                         "at_once": call.at_once,
                         "usd_upper_bound": estimate_run_usd(llm.price, call.calls, call.input_tokens,
                                                             call.max_output_tokens),
                         "local_seconds": local_seconds(speed, call, cfg.parallel) if speed else None})
    return plan


def local_seconds(speed: TokenSpeed, call: PlannedCall, parallel: int) -> float:
    """Seconds for a row's calls: handed over `at_once` at a time, each group decoded `parallel` at a time."""
    group = call.at_once or call.calls or 1
    full, rest = divmod(call.calls, group)
    seconds = lambda n: speed.batch_seconds(n, call.input_tokens, call.max_output_tokens, parallel)  # noqa: E731
    return full * seconds(group) + seconds(rest)


def curriculum_answer_tokens(ctx: StageContext) -> int:
    """Stage 4's answer limit: LIMIT_FACTOR x the longest worked solution on a sample of train problems."""
    cfg = ctx.config
    problems = ctx.domain.generate(20, cfg.seed, "train", cfg.variant)
    longest = max(len(_TRACE_TOKEN.findall(ctx.domain.worked_solution(p, verbose=cfg.trace_style == "verbose")))
                  for p in problems)
    return math.ceil(LIMIT_FACTOR * longest)


def _minutes(seconds: float) -> str:
    return f"~{seconds / 60:.1f} min" if seconds < 600 else f"~{seconds / 60:.0f} min"


def local_time_lines(plan: list[dict], parallel: int) -> list[str]:
    """Minutes and calls per stage for the rows a shipped local model answers, and the speeds assumed."""
    local = [row for row in plan if row["local_seconds"] is not None]
    if not local:
        return []
    per_stage: dict[str, list] = {}
    for row in local:
        calls_seconds = per_stage.setdefault(row["stage"], [0, 0.0])
        calls_seconds[0] += row["calls"]
        calls_seconds[1] += row["local_seconds"]
    models = sorted({row["model"] for row in local})
    speeds = [local_speed(model) for model in models]
    total = sum(seconds for _, seconds in per_stage.values()) + sum(speed.load_seconds for speed in speeds)
    stages = "; ".join(f"stage {stage}: {calls} calls {_minutes(seconds)}"
                       for stage, (calls, seconds) in per_stage.items())
    left_out = "".join(f" {get_stage(stage).unplanned_work} come on top." for stage in per_stage
                       if get_stage(stage).unplanned_work)
    batching = (f"generation {' / '.join(f'{s.speedup(parallel):.1f}x' for s in speeds)} that with {parallel} "
                "sequences at once" if parallel > 1 else "one call at a time")
    sources = sorted({s.source for s in speeds})
    origin = sources[0] if len(sources) == 1 else "; ".join(f"{m}: {s.source}" for m, s in zip(models, speeds))
    return [f"Local models: at most {_minutes(total)} with loading ({stages}).{left_out}",
            f"It assumes {', '.join(models)} in llama.cpp on an otherwise idle machine, --parallel {parallel}: "
            f"prompts at {' / '.join(f'{s.prompt_tok_s:g}' for s in speeds)} tok/s, "
            f"one sequence generating at {' / '.join(f'{s.generation_tok_s:g}' for s in speeds)} tok/s, "
            f"{batching}; speeds: {origin}."]


def split_power_lines(n_test: int) -> list[str]:
    """What `n_test` paired test items can show: the 95% CI half-width, the smallest paired gain the
    exact McNemar test detects with 80% power, and a warning when a 20-point gain is out of reach."""
    half = wilson_half_width(0.5, n_test)
    gain = smallest_detectable_gain(n_test, ASSUMED_DISCORDANCE, POWER)
    detects = (f"a paired gain over the base student of {100 * gain:.1f} points or more" if gain is not None
               else f"no paired gain over the base student (not even {100 * ASSUMED_DISCORDANCE:.0f} points)")
    lines = [f"Test split: {n_test} items, 95% CI half-width up to {100 * half:.1f} points (Wilson at 50%); "
             f"the exact McNemar test (alpha 0.05, {100 * ASSUMED_DISCORDANCE:.0f}% of items assumed discordant) "
             f"detects {detects} with {100 * POWER:.0f}% power."]
    if mcnemar_power(n_test, TARGET_GAIN, ASSUMED_DISCORDANCE) < POWER:
        lines.append(f"Warning: {n_test} test items cannot separate a {100 * TARGET_GAIN:.0f}-point gain from the "
                     f"base student; {items_needed(TARGET_GAIN, ASSUMED_DISCORDANCE, POWER)} can (--n-test).")
    return lines


def check_estimate(ctx: StageContext) -> list[dict]:
    """Tell the person (and the journal) what the remaining stages could cost, and what the test split
    can show, before any call."""
    plan = planned_calls(ctx)
    calls = sum(row["calls"] for row in plan)
    usd = sum(row["usd_upper_bound"] for row in plan)
    budget = ctx.config.budget_usd
    head = (f"Pre-run estimate: at most {calls} model calls, at most ${usd:.4f}"
            + (f" (budget ${budget:.2f}, spent so far ${ctx.ledger.spent_usd:.4f}; the run stops "
               "before a call that could pass it)" if budget is not None else "")
            + ". Cached responses are free, so a resumed run costs less.")
    lines = [head, *local_time_lines(plan, ctx.config.parallel), *split_power_lines(len(ctx.splits["test"]))]
    for line in lines:
        ctx.echo(line)
    ctx.run.journal(" ".join(lines))
    return plan
