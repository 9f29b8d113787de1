"""Stage 3: the teacher with the final strategy in its prompt, on the same test split as stage 1."""
from __future__ import annotations

from lrl.stages.context import StageContext, test_evaluation

NAME = "3_teacher_strategy"


def run(ctx: StageContext, strategy: str) -> dict:
    """Evaluate the teacher with `strategy` before each problem on the test split."""
    return test_evaluation(ctx, NAME, "teacher", strategy, "stage 3: teacher + strategy")
