"""Stage 1: the teacher on the test split before learning anything.

Zero-shot by default. `--baseline-prompt published` reproduces the published baseline, whose
prompt already described the sweep-line algorithm; the report labels which one was used.
"""
from __future__ import annotations

from lrl.stages.context import StageContext, test_evaluation

NAME = "1_teacher_baseline"


def run(ctx: StageContext) -> dict:
    """Evaluate the teacher with the configured baseline prompt on the test split."""
    return test_evaluation(ctx, NAME, "teacher", None, "stage 1: teacher baseline", ctx.config.baseline_prompt)
