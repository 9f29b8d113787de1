"""Stage 4b's parts that need no trained student: which variants are out of distribution, how long
their answers may be, what the estimate plans, that it waits for stage 4, and how the report shows it."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from lrl.domain import get_domain
from lrl.evaluation import compare
from lrl.pipeline import run
from lrl.run_config import RunConfig
from lrl.run_report import render_report
from lrl.stage import CallSizes
from lrl.stages import ood_transfer
from lrl.stages.context import evaluation_summary
from lrl.domains.scheduling import question_kind
from tests.lrl.rules_llm import RulesLLM

SCHEDULING = get_domain("scheduling")


def context(variant: str, n_test: int = 6, domain=SCHEDULING, ood_items: int | None = None):
    config = SimpleNamespace(variant=variant, n_test=n_test, ood_items=ood_items, seed=0, trace_style="compact",
                             domain=domain.name)
    return SimpleNamespace(domain=domain, config=config)


@pytest.mark.parametrize("variant", ["balanced", "seed", "min-rooms"])
def test_out_of_distribution_variants_ask_the_same_question_of_other_problems(variant):
    own = SCHEDULING.generate(6, 0, "test", variant)
    others = ood_transfer.ood_variants(context(variant))
    assert len(others) == 2 and variant not in others
    for other in others:
        problems = SCHEDULING.generate(6, 0, "test", other)
        assert {question_kind(p) for p in problems} == {question_kind(own[0])}
        assert {SCHEDULING.canonical_key(p) for p in problems}.isdisjoint(SCHEDULING.canonical_key(p) for p in own)


def test_a_domain_without_them_has_none():
    assert ood_transfer.ood_variants(context("story", domain=get_domain("arithmetic"))) == ()
    assert ood_transfer.ood_variants(context("large")) == ()


def test_longer_problems_get_a_longer_answer_limit_never_below_stage_4s():
    ctx = context("balanced")
    count = len  # characters: monotone in the solution's length, as tokens are
    small = SCHEDULING.generate(6, 0, "test", "balanced")
    large = SCHEDULING.generate(6, 0, "test", "large")
    longest_large = max(len(SCHEDULING.worked_solution(p)) for p in large)
    assert ood_transfer.answer_limit(ctx, large, None, 10, count) == -(-3 * longest_large // 2)
    assert ood_transfer.answer_limit(ctx, small, None, 10_000, count) == 10_000


def test_the_estimate_plans_both_students_on_each_variant():
    sizes = CallSizes(solve_in=100, with_strategy_in=150, solve_out=320, answer_out=180)
    planned = ood_transfer.planned_calls(context("balanced", n_test=7), sizes)
    assert [calls for _, calls, _, _ in planned] == [14, 14]
    assert [calls for _, calls, _, _ in ood_transfer.planned_calls(context("balanced", 7, ood_items=3), sizes)] == [6, 6]
    large, minutes = planned
    assert large[2] > minutes[2] > sizes.with_strategy_in and large[3] > sizes.answer_out


def test_without_an_exported_student_it_is_skipped_and_asked_again_later(tmp_path):
    llm = RulesLLM()
    config = RunConfig(teacher="anthropic:claude-3-5-haiku-latest", student="qwen0.5b", out=tmp_path / "run",
                       n_train=20, n_val=6, n_test=6, stages=("0", "4b"))
    results = run(config, llms={"teacher": llm, "student": llm})
    assert "has not exported a student" in results["stages"]["4b"]["skipped"]
    assert not (tmp_path / "run" / "stages" / "4b_ood_transfer.json").exists()
    assert "| 4b | Exported student, out of distribution | | skipped" in (tmp_path / "run" / "report.md").read_text()


def records(answers, truth="YES"):
    return [{"id": str(i), "expected": truth, "parsed": a, "parse_error": None, "difficulty": "hard",
             "verdict": "correct" if a == truth else "wrong"} for i, a in enumerate(answers)]


def test_the_report_shows_each_variant_for_both_students_and_their_paired_test():
    mine, base = records(["YES"] * 8 + ["NO"] * 2), records(["NO"] * 10)
    found = {"max_tokens": 400, "exported": evaluation_summary(mine, 5), "base": evaluation_summary(base, 5),
             "vs_base": compare(mine, base)}
    stage = {"model": "student.gguf", "base_model": "llamacpp:qwen0.5b", "role": "student", "prompt": "zero-shot",
             "variants": {"large": found}}
    results = {"config": {"domain": "scheduling", "variant": "balanced", "n_train": 1, "n_val": 1, "n_test": 10,
                          "seed": 0}, "template_version": "t", "models": {"teacher": "t", "student": "s"},
               "stages": {"4b": stage}, "comparisons": ood_transfer.comparisons({"4b": stage})}
    ledger = {"total": {"calls": 0, "cache_hits": 0, "input_tokens": 0, "output_tokens": 0, "usd": 0.0,
                        "saved_usd": 0.0}}
    report = render_report(results, ledger)
    assert "| 4b | Exported student, large | student.gguf | zero-shot | **80.0%** (8/10)" in report
    assert "| 4b | Base student, large | llamacpp:qwen0.5b | zero-shot | **0.0%** (0/10)" in report
    assert "| Exported student (A) vs base student (B), out of distribution: large | 10 | 8 | 0 | +80.0 pts" in report
