"""Stage 0: the student, zero-shot, on the test split: what the student knows before any transfer."""
from __future__ import annotations

from lrl.stages.context import StageContext, test_evaluation

NAME = "0_student_baseline"


def run(ctx: StageContext) -> dict:
    """Evaluate the student with the zero-shot prompt on the test split."""
    return test_evaluation(ctx, NAME, "student", None, "stage 0: student baseline")
