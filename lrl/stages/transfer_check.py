"""Stage 3b: does the strategy, read as text, help the student? Student with vs without it.

Both arms run on the same test problems, so the comparison is paired: exact McNemar p-value on
the discordant items and a Newcombe 95% CI of the accuracy difference (`lrl.evaluation.compare`).
The arm without the strategy repeats stage 0's prompts, so it is served by the response cache.
"""
from __future__ import annotations

from lrl.evaluation import compare
from lrl.stages.context import StageContext, test_evaluation

NAME = "3b_transfer_check"


def run(ctx: StageContext, strategy: str) -> dict:
    """Student with the strategy (A) against the student without it (B), paired on the test split."""
    with_strategy = test_evaluation(ctx, NAME, "student", strategy, "stage 3b: student + strategy",
                                    state_key="with_strategy")
    without = test_evaluation(ctx, NAME, "student", None, "stage 3b: student alone", state_key="without_strategy")
    return {**with_strategy, "without_strategy": without["summary"], "without_records": without["records"],
            "comparison": compare(with_strategy["records"], without["records"])}
