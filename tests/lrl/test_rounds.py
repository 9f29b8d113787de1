"""--rounds 2 on the rule-based test double: the student's practice failures (never test items) give
strategy v2, validated against v1; only a better v2 runs stage 4 again, compared pairwise with round 1."""
from __future__ import annotations

import pytest

from k1core.errors import UserError
from lrl import rounds
from lrl.cache import CachedLLM, ResponseCache
from lrl.domain import get_domain
from lrl.ledger import Ledger
from lrl.prompts import TEMPLATE_VERSION
from lrl.run_config import RunConfig
from lrl.rundir import RunDir
from lrl.stages import lora_transfer
from lrl.stages.context import StageContext
from tests.lrl.rules_llm import RulesLLM

SWEEP = "1. Make start and end events.\n2. Sort them and sweep, counting overlaps.\n3. Compare the peak with the rooms."


class ExportedStudent(RulesLLM):
    """The round-1 exported student: answers like the rules double, and can be unloaded."""

    def unload(self):
        pass


def context(tmp_path) -> StageContext:
    config = RunConfig(teacher="anthropic:claude-haiku-4-5", student="qwen0.5b", out=tmp_path / "run", n_train=20,
                       n_val=10, n_test=10, stages=("2", "4"), rounds=2)
    domain = get_domain("scheduling")
    splits = {split: domain.generate(n, 0, split, config.variant) for split, n in (("train", 20), ("dev", 10), ("test", 10))}
    ledger, cache = Ledger(None), ResponseCache(tmp_path / "responses.sqlite")
    teacher = CachedLLM(RulesLLM(), cache, template_version=TEMPLATE_VERSION, ledger=ledger, offline=False)
    run = RunDir(config.out)
    run.save_stage_state(lora_transfer.STAGE.key, {"files": {"files": {"q4_k_m": {"path": "student.gguf", "sha256": "0" * 64}}},
                                                   "export": {"deployed": "q4_k_m"},
                                                   "curriculum": {"generation_limit": 120}})
    return StageContext(config, run, domain, splits, teacher, teacher, ledger, cache=cache)


def round1(ctx) -> dict:
    records = [{"id": p.id, "verdict": "wrong" if i % 2 else "correct"} for i, p in enumerate(ctx.splits["test"])]
    return {"trained_prompts": ["zero-shot", "strategy"], "records": records}


@pytest.fixture
def transfers(monkeypatch):
    """Stage 4 stand-in: records the strategy and run directory, answers every test item right."""
    seen = []

    def stage4(ctx):
        seen.append((ctx.strategy, ctx.run.path))
        return {"records": [{"id": p.id, "verdict": "correct"} for p in ctx.splits["test"]], "by_prompt": {}}

    monkeypatch.setattr(lora_transfer, "exported_llm", lambda ctx, file: ExportedStudent(model="round1-student"))
    monkeypatch.setattr(lora_transfer, "run", stage4)
    return seen


def test_a_better_v2_is_taught_again_and_compared_with_round_one(tmp_path, transfers):
    ctx = context(tmp_path)
    result = rounds.run(ctx, "1. Count the meetings.", round1(ctx))
    practice = {r["id"] for r in ctx.run.stage_state(rounds.NAME)["student_practice"]}
    assert practice == {p.id for p in ctx.splits["train"] + ctx.splits["dev"]}  # never a test item
    assert result["practice"]["accuracy"] < 1 and result["strategy_v2"] == SWEEP
    assert result["validation_v2"]["accuracy"] > result["validation_v1"]["accuracy"]
    v2_vs_v1 = result["validation_v2_vs_v1"]  # paired on the same validation items
    assert v2_vs_v1["n"] == len(ctx.splits["dev"]) and v2_vs_v1["difference"] == pytest.approx(
        result["validation_v2"]["accuracy"] - result["validation_v1"]["accuracy"])
    assert "+1. Make start and end events." in result["strategy_diff"] and "-1. Count the meetings." in result["strategy_diff"]
    assert transfers == [(SWEEP, tmp_path / "run" / "round2")]
    paired = result["test_round2_vs_round1"]
    assert (paired["n"], paired["only_a"], paired["only_b"]) == (10, 5, 0)
    assert (tmp_path / "run" / "round2" / "strategy.md").read_text().strip() == SWEEP


def test_a_v2_no_better_than_v1_stops_the_round(tmp_path, transfers):
    ctx = context(tmp_path)
    result = rounds.run(ctx, SWEEP, round1(ctx))
    assert result["skipped"] == "strategy v2 did not beat v1 and the majority class on validation" and result["strategy_diff"] == ""
    assert transfers == []


def test_two_rounds_need_stage_four():
    with pytest.raises(UserError, match="include 4 in --stages"):
        RunConfig(stages=("0", "1", "2"), rounds=2)
    with pytest.raises(UserError, match="--rounds must be 1 or 2"):
        RunConfig(stages=("2", "4"), rounds=3)


def test_report_shows_both_rounds_side_by_side_with_the_diff(tmp_path, transfers):
    from lrl.run_report import _second_round

    ctx = context(tmp_path)
    second = rounds.run(ctx, "1. Count the meetings.", round1(ctx))
    acc = lambda a: {"accuracy": a, "ci95": [a - 0.1, a + 0.1]}  # noqa: E731
    second["transfer"]["by_prompt"] = {"zero-shot": acc(0.9)}
    text = "\n".join(_second_round({"by_prompt": {"zero-shot": acc(0.5)}}, second))
    assert "| zero-shot | 50.0% (CI 40.0%–60.0%) | 90.0% (CI 80.0%–100.0%) |" in text
    assert "```diff\n--- strategy v1\n+++ strategy v2" in text and "strategy v2 " in text
    paired = second["validation_v2_vs_v1"]
    assert f"v2 − v1 on the same items {100 * paired['difference']:+.1f} pts [" in text
    stopped = rounds.run(context(tmp_path / "again"), SWEEP, round1(ctx))
    assert "No second transfer: strategy v2 did not beat v1 and the majority class on validation." in "\n".join(_second_round({}, stopped))
