"""The pre-run estimate: dollars for API models, minutes at measured speed for the shipped local ones."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from backends.llm import estimate_tokens
from backends.local_speed import MEASURED
from backends.pricing import FREE
from lrl.domain import get_domain
from lrl.ledger import Ledger
from lrl.run_config import RunConfig
from lrl.stages import stage_ids
from lrl.run_estimate import local_time_line, planned_calls
from lrl.rundir import RunDir
from lrl.stages.context import StageContext


def context(tmp_path, teacher: str, student: str) -> StageContext:
    config = RunConfig(out=tmp_path, stages=stage_ids())
    domain = get_domain("scheduling")
    splits = {split: domain.generate(n, 0, split, "balanced") for split, n in (("train", 20), ("dev", 6), ("test", 10))}
    model = lambda name: SimpleNamespace(model=name, price=FREE)  # noqa: E731
    return StageContext(config, RunDir(tmp_path), domain, splits, model(teacher), model(student), Ledger(None))


def test_local_models_are_timed_per_stage_at_their_measured_speed(tmp_path):
    plan = planned_calls(context(tmp_path, "qwen1.5b", "qwen0.5b"))
    assert {row["stage"] for row in plan} == set(stage_ids())
    for row in plan:
        speed = MEASURED[row["model"]]
        assert math.isclose(row["local_seconds"], row["calls"] * speed.call_seconds(row["input_tokens"],
                                                                                     row["max_output_tokens"]))
    teacher_rows = [row for row in plan if row["stage"] == "1"]
    assert [row["model"] for row in teacher_rows] == ["qwen1.5b"]
    line = local_time_line(plan)
    assert "qwen0.5b, qwen1.5b" in line and "stage 2 ~" in line and "stage 4 ~" in line


def test_stage4_answers_get_room_for_the_longest_worked_solution(tmp_path):
    ctx = context(tmp_path, "qwen1.5b", "qwen0.5b")
    student_rows = [row for row in planned_calls(ctx) if row["stage"] == "4" and row["role"] == "student"]
    traces = [ctx.domain.worked_solution(p) for p in ctx.domain.generate(20, 0, "train", "balanced")]
    longest = max(len(t) for t in traces) / 3  # digits are tokens of their own: well above chars/4
    assert student_rows[0]["max_output_tokens"] >= 1.5 * longest > 1.5 * max(map(estimate_tokens, traces))


def test_api_models_get_no_local_time(tmp_path):
    plan = planned_calls(context(tmp_path, "claude-haiku-4-5", "my.gguf"))
    assert all(row["local_seconds"] is None for row in plan) and local_time_line(plan) == ""


@pytest.mark.slow
def test_stage4_answer_estimate_covers_the_real_token_count(tmp_path, qwen_gguf):
    from backends.student.tokenizer import gguf_tokenizer

    tokenizer = gguf_tokenizer(qwen_gguf)
    ctx = context(tmp_path, "qwen1.5b", "qwen0.5b")
    student_rows = [row for row in planned_calls(ctx) if row["stage"] == "4" and row["role"] == "student"]
    traces = [ctx.domain.worked_solution(p) for p in ctx.domain.generate(20, 0, "train", "balanced")]
    assert student_rows[0]["max_output_tokens"] >= math.ceil(1.5 * max(len(tokenizer.encode(t)) for t in traces))
