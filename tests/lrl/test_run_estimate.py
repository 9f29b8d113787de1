"""The pre-run estimate: dollars for API models, minutes at measured (batched) speed for the shipped local
ones, and what the test split can show."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from backends.llm import estimate_tokens
from backends.local_speed import MEASURED, TokenSpeed
from backends.pricing import FREE
from lrl.domain import get_domain
from lrl.ledger import Ledger
from lrl.run_config import RunConfig
from lrl.stages import stage_ids
from lrl.run_estimate import check_estimate, local_seconds, local_time_lines, planned_calls, split_power_lines
from lrl.stage import PlannedCall
from lrl.rundir import RunDir
from lrl.stages.context import StageContext


def context(tmp_path, teacher: str, student: str, parallel: int = 8, n_test: int = 10, echo=lambda _line: None):
    config = RunConfig(out=tmp_path, stages=stage_ids(), parallel=parallel, n_test=n_test)
    domain = get_domain("scheduling")
    splits = {split: domain.generate(n, 0, split, "balanced")
              for split, n in (("train", 20), ("dev", 6), ("test", n_test))}
    model = lambda name: SimpleNamespace(model=name, price=FREE)  # noqa: E731
    return StageContext(config, RunDir(tmp_path), domain, splits, model(teacher), model(student), Ledger(None),
                        echo=echo)


# The measured table (backends/local_speed.py): aggregate generation tokens/s of qwen0.5b, 2 threads.
GENERATION_TOK_S = {1: 26, 4: 72, 8: 87, 16: 108, 32: 123}


def test_generation_runs_at_the_measured_aggregate_speed_of_n_sequences():
    speed = MEASURED["qwen0.5b"]
    for n, tok_s in GENERATION_TOK_S.items():
        assert math.isclose(speed.batch_seconds(n, 0, 100, parallel=n), n * 100 / tok_s)
    assert math.isclose(speed.speedup(6), 72 / 26) and math.isclose(speed.speedup(64), 123 / 26)  # the size below
    # 20 calls at --parallel 8: two waves of 8, then 4 together.
    assert math.isclose(speed.batch_seconds(20, 0, 100, parallel=8), 2 * 800 / 87 + 400 / 72)
    # Prompts go at one speed whatever N is.
    assert math.isclose(speed.batch_seconds(8, 150, 0, parallel=8), 8 * 150 / 200)


def test_the_teacher_keeps_its_measured_cost_ratio_and_batches_like_the_student():
    student, teacher = MEASURED["qwen0.5b"], MEASURED["qwen1.5b"]
    assert teacher.prompt_tok_s == pytest.approx(student.prompt_tok_s / 1.47, rel=0.01)
    assert teacher.generation_tok_s == pytest.approx(student.generation_tok_s / 1.79, rel=0.01)
    assert teacher.speedup(8) == student.speedup(8)


def test_calls_handed_over_in_groups_batch_within_each_group():
    speed = TokenSpeed(prompt_tok_s=100.0, generation_tok_s=10.0, load_seconds=0.0)
    one_by_one = PlannedCall("teacher", 5, 0, 10, at_once=1)
    assert math.isclose(local_seconds(speed, one_by_one, parallel=8), 5 * 1.0)
    batches_of_10 = PlannedCall("teacher", 20, 0, 10, at_once=10)  # each batch: 8 together, then 2 (no speed-up)
    assert math.isclose(local_seconds(speed, batches_of_10, parallel=8),
                        2 * (8 * 10 / (10 * 87 / 26) + 2 * 10 / 10))


def test_local_models_are_timed_per_stage_at_their_batched_speed(tmp_path):
    batched = planned_calls(context(tmp_path / "8", "qwen1.5b", "qwen0.5b", parallel=8))
    alone = planned_calls(context(tmp_path / "1", "qwen1.5b", "qwen0.5b", parallel=1))
    assert {row["stage"] for row in batched} == set(stage_ids())
    for fast, slow in zip(batched, alone):
        speed = MEASURED[fast["model"]]
        generating = fast["calls"] * fast["max_output_tokens"] / speed.generation_tok_s
        assert math.isclose(slow["local_seconds"],
                            fast["calls"] * fast["input_tokens"] / speed.prompt_tok_s + generating)
        if fast["at_once"] == 1:  # reflections and distillations wait for each other
            assert math.isclose(fast["local_seconds"], slow["local_seconds"])
    stage0 = next(row for row in batched if row["stage"] == "0")  # 10 test items: 8 together, then 2
    assert math.isclose(stage0["local_seconds"], 10 * stage0["input_tokens"] / 200
                        + stage0["max_output_tokens"] * (8 / 87 + 2 / 26))
    assert [row["model"] for row in batched if row["stage"] == "1"] == ["qwen1.5b"]
    time_line, assumptions = local_time_lines(batched, parallel=8)
    assert "stage 0: 10 calls ~" in time_line and "stage 4: " in time_line
    assert time_line.endswith(" LoRA training, export and the fidelity gate come on top.")
    without_4 = local_time_lines([row for row in batched if row["stage"] != "4"], parallel=8)[0]
    assert "come on top" not in without_4
    assert "qwen0.5b, qwen1.5b" in assumptions and "--parallel 8" in assumptions and "3.3x" in assumptions
def test_stage4_answers_get_room_for_the_longest_worked_solution(tmp_path):
    ctx = context(tmp_path, "qwen1.5b", "qwen0.5b")
    student_rows = [row for row in planned_calls(ctx) if row["stage"] == "4" and row["role"] == "student"]
    traces = [ctx.domain.worked_solution(p) for p in ctx.domain.generate(20, 0, "train", "balanced")]
    longest = max(len(t) for t in traces) / 3  # digits are tokens of their own: well above chars/4
    assert student_rows[0]["max_output_tokens"] >= 1.5 * longest > 1.5 * max(map(estimate_tokens, traces))


def test_the_transfer_checks_arm_without_the_strategy_is_counted_only_without_stage_0(tmp_path):
    def stage_3b_calls(stages):
        ctx = context(tmp_path / "-".join(stages), "qwen1.5b", "qwen0.5b")
        ctx = StageContext(**{**vars(ctx), "config": RunConfig(out=tmp_path, stages=stages, n_test=10)})
        return [row["calls"] for row in planned_calls(ctx) if row["stage"] == "3b"]

    assert stage_3b_calls(("0", "3b")) == [10]  # stage 0's answers are the arm without the strategy
    assert stage_3b_calls(("3b",)) == [20]


def test_api_models_get_no_local_time(tmp_path):
    plan = planned_calls(context(tmp_path, "claude-haiku-4-5", "my.gguf"))
    assert all(row["local_seconds"] is None for row in plan) and local_time_lines(plan, 8) == []


def test_a_small_test_split_is_warned_about_and_a_large_one_is_not():
    small = split_power_lines(10)
    assert "26.3 points" in small[0] and "no paired gain" in small[0] and "50% of items assumed discordant" in small[0]
    assert small[1].startswith("Warning: 10 test items cannot separate a 20-point gain") and "103 can" in small[1]
    large = split_power_lines(400)
    assert len(large) == 1 and "4.9 points" in large[0] and "gain over the base student of 10." in large[0]


def test_the_estimate_is_printed_and_journaled_before_the_run(tmp_path):
    printed = []
    check_estimate(context(tmp_path, "qwen1.5b", "qwen0.5b", n_test=30, echo=printed.append))
    assert printed[0].startswith("Pre-run estimate: at most ") and printed[1].startswith("Local models: at most ~")
    assert printed[3].startswith("Test split: 30 items") and printed[4].startswith("Warning: 30 test items")
    assert all(line in (tmp_path / "journal.md").read_text() for line in printed)


@pytest.mark.slow
def test_stage4_answer_estimate_covers_the_real_token_count(tmp_path, qwen_gguf):
    from backends.student.tokenizer import gguf_tokenizer

    tokenizer = gguf_tokenizer(qwen_gguf)
    ctx = context(tmp_path, "qwen1.5b", "qwen0.5b")
    student_rows = [row for row in planned_calls(ctx) if row["stage"] == "4" and row["role"] == "student"]
    traces = [ctx.domain.worked_solution(p) for p in ctx.domain.generate(20, 0, "train", "balanced")]
    assert student_rows[0]["max_output_tokens"] >= math.ceil(1.5 * max(len(tokenizer.encode(t)) for t in traces))
