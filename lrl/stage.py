"""The Stage protocol: one LRL stage is one `Stage` object, the `STAGE` of one module in `lrl/stages/`.

The pipeline finds the stages by listing that package (`lrl.stages.all_stages`), runs the asked ones
in id order with `stage.run(ctx)`, and takes the pre-run estimate, the report's rows, the published
plot's bars and the paired comparisons from the same object, so adding a stage is adding one module.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Mapping, NamedTuple

if TYPE_CHECKING:
    from lrl.stages.context import StageContext


class PlannedCall(NamedTuple):
    """Calls of one kind a stage will make; a plain (role, calls, input, output) tuple reads as one too."""

    role: str  # "teacher" or "student"
    calls: int
    input_tokens: int  # mean per call
    max_output_tokens: int
    at_once: int | None = None  # most calls handed to the model together (a batch, one reflection); None: all


@dataclass(frozen=True)
class CallSizes:
    """Token counts the pre-run estimate shares across stages (upper bounds, see lrl.run_estimate)."""

    solve_in: int  # a solve prompt without a strategy
    with_strategy_in: int  # a solve prompt with a strategy at its longest
    solve_out: int
    answer_out: int  # stage 4's answer limit: LIMIT_FACTOR x the curriculum's longest worked solution


class ReportRow(NamedTuple):
    """One accuracy row of report.md."""

    title: str
    model: str
    summary: dict  # lrl.stages.context.evaluation_summary of the records
    prompt: str


def _no_calls(_ctx: StageContext, _sizes: CallSizes) -> list[PlannedCall]:
    return []


def _no_comparisons(_results: dict) -> dict:
    return {}


@dataclass(frozen=True)
class Stage:
    """Everything the pipeline, the estimate and the report know about one stage."""

    id: str  # what --stages names and results.json keys by: "0", "3b"
    name: str  # "transfer_check"; `key` names the state file and the ledger's entry
    title: str  # the report's row title
    run: Callable[[StageContext], dict]  # the stage's entry for results.json, per-item records included
    needs_strategy: bool = False  # runs only with stage 2's strategy, given as ctx.strategy
    teaches_strategy: bool = False  # trains on it: only a strategy adopted on validation, or --strategy FILE
    default: bool = True  # part of `--stages default` (False: asked for by id or by `all`)
    planned_calls: Callable[[StageContext, CallSizes], list[PlannedCall]] = _no_calls
    unplanned_work: str = ""  # local work beyond its model calls, which the estimate does not time
    comparisons: Callable[[dict], dict] = _no_comparisons  # paired tests, from every finished stage's result
    comparison_titles: Mapping[str, str] = field(default_factory=dict)  # the report's name for each test
    # how a result that is not one test-split evaluation ("summary", "prompt", "role") is shown
    report_rows: Callable[[dict], list[ReportRow]] | None = None
    plot_bars: Callable[[dict], list[tuple[str, dict]]] | None = None

    @property
    def key(self) -> str:
        """`3b_transfer_check`: the stage's state file under stages/ and its ledger entry."""
        return f"{self.id}_{self.name}"

    @property
    def label(self) -> str:
        return self.name.replace("_", " ")

    def summary_row(self, result: dict) -> ReportRow:
        """The row of a result that is one test-split evaluation ("model", "summary", "prompt")."""
        return ReportRow(self.title, result["model"], result["summary"], result["prompt"])

    def rows(self, result: dict) -> list[ReportRow]:
        """report.md's accuracy rows for this stage's result."""
        return self.report_rows(result) if self.report_rows is not None else [self.summary_row(result)]

    def bars(self, result: dict) -> list[tuple[str, dict]]:
        """(label, summary) of each accuracy the published plot shows for this stage's result."""
        if self.plot_bars is not None:
            return self.plot_bars(result)
        return [(f"{self.id} {result['role']}, {result['prompt']}", result["summary"])]


def stage_order(stage_id: str) -> tuple[int, str]:
    """Sort key of a stage id: numerically by its number, then by its letter ("3" < "3b" < "4" < "10")."""
    number = re.match(r"\d+", stage_id)
    return (int(number.group()) if number else -1, stage_id)
