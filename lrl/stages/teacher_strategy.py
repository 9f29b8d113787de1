"""Stage 3: the teacher with the final strategy in its prompt, on the same test items as stage 1."""
from __future__ import annotations

from lrl.evaluation import compare
from lrl.stage import CallSizes, PlannedCall, Stage
from lrl.stages.context import StageContext, evaluate_on_test_split, teacher_test_problems


def run(ctx: StageContext) -> dict:
    """Evaluate the teacher with the strategy before each problem on the test split."""
    return evaluate_on_test_split(ctx, STAGE.key, "teacher", ctx.strategy, "stage 3: teacher + strategy")


def planned_calls(ctx: StageContext, sizes: CallSizes) -> list[PlannedCall]:
    return [PlannedCall("teacher", len(teacher_test_problems(ctx)), sizes.with_strategy_in, sizes.solve_out)]


def comparisons(results: dict) -> dict:
    """Teacher with the strategy against stage 1's teacher baseline, paired on the test split."""
    if "records" in results.get("3", {}) and "records" in results.get("1", {}):
        return {"3_vs_1": compare(results["3"]["records"], results["1"]["records"])}
    return {}


STAGE = Stage("3", "teacher_strategy", "Teacher + strategy", run, needs_strategy=True,
              planned_calls=planned_calls, comparisons=comparisons,
              comparison_titles={"3_vs_1": "Teacher + strategy (A) vs teacher baseline (B)"})
