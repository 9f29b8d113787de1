"""Stage 0: the student, zero-shot, on the test split: what the student knows before any transfer."""
from __future__ import annotations

from lrl.stage import CallSizes, PlannedCall, Stage
from lrl.stages.context import StageContext, evaluate_on_test_split


def run(ctx: StageContext) -> dict:
    """Evaluate the student with the zero-shot prompt on the test split."""
    return evaluate_on_test_split(ctx, STAGE.key, "student", None, "stage 0: student baseline")


def planned_calls(ctx: StageContext, sizes: CallSizes) -> list[PlannedCall]:
    return [PlannedCall("student", len(ctx.splits["test"]), sizes.solve_in, sizes.solve_out)]


STAGE = Stage("0", "student_baseline", "Student baseline", run, planned_calls=planned_calls)
