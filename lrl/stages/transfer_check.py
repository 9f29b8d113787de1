"""Stage 3b: does the strategy, read as text, help the student? Student with vs without it.

Both arms run on the same test problems, so the comparison is paired: exact McNemar p-value on
the discordant items and a Newcombe 95% CI of the accuracy difference (`lrl.evaluation.compare`).
The arm without the strategy repeats stage 0's prompts, so it is served by the response cache.
"""
from __future__ import annotations

from lrl.evaluation import compare
from lrl.stage import CallSizes, PlannedCall, ReportRow, Stage
from lrl.stages import student_baseline
from lrl.stages.context import StageContext, evaluate_on_test_split


def run(ctx: StageContext) -> dict:
    """Student with the strategy (A) against the student without it (B), paired on the test split."""
    with_strategy = evaluate_on_test_split(ctx, STAGE.key, "student", ctx.strategy, "stage 3b: student + strategy",
                                           state_key="with_strategy")
    without = evaluate_on_test_split(ctx, STAGE.key, "student", None, "stage 3b: student alone",
                                     state_key="without_strategy")
    return {**with_strategy, "without_strategy": without["summary"], "without_records": without["records"],
            "comparison": compare(with_strategy["records"], without["records"])}


def planned_calls(ctx: StageContext, sizes: CallSizes) -> list[PlannedCall]:
    """With and without the strategy: two evaluations of the test split, the second free when stage 0
    (the same prompts) is part of the run or has run."""
    n_test = len(ctx.splits["test"])
    baseline = student_baseline.STAGE
    cached = baseline.id in ctx.config.stages or ctx.run.stage_state(baseline.key).get("complete")
    return [PlannedCall("student", (1 if cached else 2) * n_test, sizes.with_strategy_in, sizes.solve_out,
                        at_once=n_test)]


def comparisons(results: dict) -> dict:
    if "comparison" in results.get("3b", {}):
        return {"3b_with_vs_without": results["3b"]["comparison"]}
    return {}


def report_rows(result: dict) -> list[ReportRow]:
    """Both arms: the student with the strategy, then alone."""
    return [STAGE.summary_row(result),
            ReportRow("Student alone (transfer check)", result["model"], result["without_strategy"], "zero-shot")]


def plot_bars(result: dict) -> list[tuple[str, dict]]:
    """Both arms, as report_rows."""
    return [(f"{STAGE.id} {result['role']}, {prompt}", summary)
            for prompt, summary in ((result["prompt"], result["summary"]), ("zero-shot", result["without_strategy"]))]


STAGE = Stage("3b", "transfer_check", "Student + strategy (transfer check)", run, needs_strategy=True,
              planned_calls=planned_calls, comparisons=comparisons, report_rows=report_rows, plot_bars=plot_bars,
              comparison_titles={"3b_with_vs_without": "Student + strategy (A) vs student alone (B)"})
