"""Stage 1: the teacher on the test split before learning anything.

Zero-shot by default. `--baseline-prompt published` reproduces the published baseline, whose
prompt already described the sweep-line algorithm; the report labels which one was used.
"""
from __future__ import annotations

from lrl.stage import CallSizes, PlannedCall, Stage
from lrl.stages.context import StageContext, evaluate_on_test_split, teacher_test_problems


def run(ctx: StageContext) -> dict:
    """Evaluate the teacher with the configured baseline prompt on the test split."""
    return evaluate_on_test_split(ctx, STAGE.key, "teacher", None, "stage 1: teacher baseline",
                                  ctx.config.baseline_prompt)


def planned_calls(ctx: StageContext, sizes: CallSizes) -> list[PlannedCall]:
    return [PlannedCall("teacher", len(teacher_test_problems(ctx)), sizes.solve_in, sizes.solve_out)]


STAGE = Stage("1", "teacher_baseline", "Teacher baseline", run, planned_calls=planned_calls)
