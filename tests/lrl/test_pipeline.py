"""The whole stage flow on the rule-based test double (tests/lrl/rules_llm.py): artifacts, adoption, resume, offline, budget, review."""
from __future__ import annotations

import dataclasses
import hashlib
from types import SimpleNamespace

import orjson
import pytest

from k1core.errors import UserError
from lrl.ledger import BudgetExceeded
from lrl import pipeline
from lrl.pipeline import run
from lrl.prompts import solve_messages
from lrl.run_config import RunConfig
from tests.lrl.rules_llm import RulesLLM

SIZES = dict(n_train=60, n_val=10, n_test=20)  # 6 batches: distillations after batch 5 and batch 6


def config(tmp_path, **changes) -> RunConfig:
    return RunConfig(**{"teacher": "anthropic:claude-3-5-haiku-latest", "student": "qwen0.5b",
                        "out": tmp_path / "run", **SIZES, **changes})


def rules(**kwargs) -> dict:
    llm = RulesLLM(**kwargs)
    return {"teacher": llm, "student": llm}


def test_a_model_that_answers_many_at_once_gives_the_same_results(tmp_path):
    one_at_a_time = run(config(tmp_path / "one"), llms=rules())
    together = rules()
    together["teacher"].parallel = 4
    results = run(config(tmp_path / "many"), llms=together)
    assert results["stages"] == one_at_a_time["stages"] and results["comparisons"] == one_at_a_time["comparisons"]


def test_the_teacher_answers_its_seeded_share_of_the_test_split(tmp_path):
    results = run(config(tmp_path, teacher_items=6), llms=rules())
    assert {stage: results["stages"][stage]["summary"]["n"] for stage in ("0", "1", "3")} == {"0": 20, "1": 6, "3": 6}
    assert results["comparisons"]["3_vs_1"]["n"] == 6 and results["comparisons"]["3b_with_vs_without"]["n"] == 20


def test_full_flow_writes_every_artifact(tmp_path):
    llms = rules()
    results = run(config(tmp_path), llms=llms)
    out = tmp_path / "run"
    for name in ("config.json", "manifest.json", "journal.md", "strategy.md", "thoughts.jsonl", "results.json",
                 "report.md", "ledger.json", "strategies/00.md", "strategies/00.json", "strategies/01.md"):
        assert (out / name).is_file(), name
    assert set(results["stages"]) == {"0", "1", "2", "3", "3b"}
    test = results["stages"]["0"]["summary"]
    assert test["n"] == 20 and test["classes"]["majority_baseline"]["accuracy"] == 0.5
    assert 0 < test["parse_failure_rate"] < 1 and set(test["by_difficulty"]) == {"easy", "medium", "hard"}
    assert test["per_batch"]["batches"] == 2
    boot = results["stages"]["2"]
    assert [c["adopted"] for c in boot["candidates"]] == [False, True]  # useless one kept, but not used
    assert (out / "strategy.md").read_text().strip() == boot["candidates"][1]["text"]
    assert results["stages"]["3"]["summary"]["accuracy"] == 1.0
    assert results["comparisons"]["3b_with_vs_without"]["mcnemar_exact_p"] < 0.01
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    assert manifest["template_version"] == results["template_version"]
    assert manifest["models"]["teacher"] == {"spec": "anthropic:claude-3-5-haiku-latest", "backend": "rules",
                                             "model": "rules-v1", "file_sha256": None}
    assert results["models"] == {"teacher": "rules:rules-v1", "student": "rules:rules-v1"}
    thoughts = [orjson.loads(line) for line in (out / "thoughts.jsonl").read_bytes().splitlines()]
    assert len({t["key"] for t in thoughts}) == len(thoughts)
    assert any("Reflect in at most" in t["messages"][-1]["content"] for t in thoughts)
    report = (out / "report.md").read_text()
    assert "| 3 | Teacher + strategy |" in report and "exact McNemar p" in report and "always YES" in report


def test_each_stage_keeps_its_wall_time_load_averages_and_the_command(tmp_path, monkeypatch):
    loads = iter([(1.0, 2.0, 3.0), (4.0, 5.0, 6.0)] * 10)
    monkeypatch.setattr(pipeline.os, "getloadavg", lambda: next(loads))
    run(config(tmp_path, stages=("0", "1")), llms=rules(), command=["k1", "lrl", "run", "--stages", "0,1"])
    out = tmp_path / "run"
    timing = orjson.loads((out / "stages" / "1_teacher_baseline.json").read_bytes())["timing"]
    assert timing["seconds"] >= 0 and (timing["load_start"], timing["load_end"]) == ([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    journal = (out / "journal.md").read_text()
    assert "Stage 1 (teacher_baseline) started; load average 1.00 / 2.00 / 3.00." in journal
    assert "load average 4.00 / 5.00 / 6.00. Accuracy" in journal
    session = orjson.loads((out / "manifest.json").read_bytes())["sessions"][-1]
    assert session["command"] == ["k1", "lrl", "run", "--stages", "0,1"]


def test_results_and_report_cover_stages_finished_by_an_earlier_command(tmp_path):
    both = run(config(tmp_path / "both", stages=("0", "1")), llms=rules())
    run(config(tmp_path, stages=("1",)), llms=rules())
    results = run(config(tmp_path, stages=("0",)), llms=rules())
    assert list(results["stages"]) == ["0", "1"]
    assert results["stages"] == both["stages"] and results["comparisons"] == both["comparisons"]
    report = (tmp_path / "run" / "report.md").read_text()
    assert "| 1 | Teacher" in report and "| 0 | " in report


def test_rerun_repeats_no_call_and_gives_same_results(tmp_path):
    first = rules()
    results = run(config(tmp_path), llms=first)
    again = rules()
    assert run(config(tmp_path), llms=again) == results
    assert first["teacher"].calls > 0 and again["teacher"].calls == 0


def test_offline_replays_and_fails_clearly_on_a_miss(tmp_path):
    results = run(config(tmp_path), llms=rules())
    (tmp_path / "run" / "results.json").unlink()
    for stage in ("0_student_baseline", "3b_transfer_check"):
        (tmp_path / "run" / "stages" / f"{stage}.json").unlink()
    assert run(config(tmp_path, offline=True), llms=rules()) == results
    with pytest.raises(UserError, match="offline: .* not in the cache"):
        run(config(tmp_path, offline=True, out=tmp_path / "fresh"), llms=rules())


def test_budget_stops_before_overspending_and_resume_finishes(tmp_path):
    with pytest.raises(BudgetExceeded, match="budget"):
        run(config(tmp_path, budget_usd=0.002), llms=rules())
    ledger = orjson.loads((tmp_path / "run" / "ledger.json").read_bytes())
    assert 0 < ledger["total"]["usd"] <= 0.002
    results = run(config(tmp_path, budget_usd=1.0), llms=rules())
    assert results == run(config(tmp_path / "clean"), llms=rules())


def test_changed_configuration_is_refused(tmp_path):
    run(config(tmp_path, stages=("0",)), llms=rules())
    with pytest.raises(UserError, match="different configuration .*n_test"):
        run(config(tmp_path, stages=("0",), n_test=7), llms=rules())


def test_given_lora_steps_leave_epochs_out_of_the_identity(tmp_path):
    run(config(tmp_path, stages=("0",), lora_steps=100), llms=rules())
    recorded = orjson.loads((tmp_path / "run" / "config.json").read_bytes())
    assert recorded["lora_steps"] == 100 and "lora_epochs" not in recorded
    run(config(tmp_path, stages=("0",), lora_steps=100), llms=rules())  # resumes
    with pytest.raises(UserError, match=r"different configuration \(lora_epochs, lora_steps\)"):
        run(config(tmp_path, stages=("0",)), llms=rules())  # the default: one epoch, steps from the curriculum


def test_stage_three_needs_the_bootstrap(tmp_path):
    with pytest.raises(UserError, match="need the strategy from stage 2"):
        run(config(tmp_path, stages=("3",)), llms=rules())


@pytest.mark.parametrize("decision,text,accuracy", [("reject", None, None),
                                                     ("edit", "1. Make events, sort, sweep; compare peak.", 1.0),
                                                     ("edit", "1. Guess.", "as without")])
def test_review_decides_what_teaches(tmp_path, decision, text, accuracy):
    asked = []

    def reviewer(strategy, adopted):
        asked.append((strategy, adopted))
        return {"decision": decision, "text": text}

    results = run(config(tmp_path, review=True), llms=rules(), reviewer=reviewer)
    assert len(asked) == 1 and asked[0][1] is True
    if accuracy is None:
        assert results["stages"]["3"] == {"skipped": "reject"} and not (tmp_path / "run" / "strategy.md").exists()
    else:
        assert (tmp_path / "run" / "strategy.md").read_text().strip() == text
        if accuracy == "as without":
            accuracy = results["stages"]["1"]["summary"]["accuracy"]
        assert results["stages"]["3"]["summary"]["accuracy"] == accuracy
    run(config(tmp_path, review=True), llms=rules(), reviewer=reviewer)
    assert len(asked) == 1  # the saved decision is not asked again


def test_published_baseline_prompt_gives_the_algorithm(tmp_path):
    results = run(config(tmp_path, stages=("1",), baseline_prompt="published"), llms=rules())
    assert results["stages"]["1"]["prompt"] == "published"
    thoughts = (tmp_path / "run" / "thoughts.jsonl").read_text()
    assert "Hint: turn each meeting into a start event" in thoughts
    other_domain = SimpleNamespace(name="coding", render_prompt=lambda problem, strategy=None: "problem")
    with pytest.raises(UserError, match="published baseline prompt exists only for: scheduling"):
        solve_messages(other_domain, None, None, "published")


def test_default_variant_makes_always_yes_worthless_on_scheduling_only():
    assert RunConfig().variant == "balanced"
    assert RunConfig(domain="scheduling", variant="seed").variant == "seed"
    assert RunConfig(domain="arithmetic").variant is None


class Taught(Exception):
    """Raised by a stand-in stage 4 once it has seen what it was asked to teach."""


class ObedientRulesLLM(RulesLLM):
    """Follows the useless candidate ("Always answer YES") to the letter."""

    def answer(self, prompt: str) -> str:
        if "STRATEGY:" in prompt and "Always answer YES" in prompt.split("SCHEDULING PROBLEM:")[0]:
            return "As the strategy says.\nANSWER: YES"
        return super().answer(prompt)


def test_a_strategy_no_better_than_the_majority_class_is_not_adopted(tmp_path):
    """Answering YES to everything beats this teacher's weak zero-shot prompt on validation, but not
    always answering the majority class, so it teaches nothing and is not adopted."""
    llm = ObedientRulesLLM()
    results = run(config(tmp_path, n_train=50, stages=("2",)), llms={"teacher": llm, "student": llm})
    boot = results["stages"]["2"]
    (useless,) = boot["candidates"]
    validation = useless["validation"]
    assert validation["accuracy"] > boot["validation_zero_shot"]["accuracy"]
    assert validation["accuracy"] <= validation["classes"]["majority_baseline"]["accuracy"]
    assert boot["adopted"] is None and not useless["adopted"]
    assert "and the majority class" in (tmp_path / "run" / "journal.md").read_text()


def test_stage4_teaches_only_an_adopted_strategy_or_the_users(tmp_path, monkeypatch):
    taught = []

    def stage4(ctx):
        taught.append(ctx.strategy)
        raise Taught

    real = pipeline.get_stage
    monkeypatch.setattr(pipeline, "get_stage", lambda i: dataclasses.replace(real(i), run=stage4) if i == "4" else real(i))
    echoed = []
    unadopted = config(tmp_path, n_train=50, stages=("2", "4"))  # 5 batches: one useless candidate, not adopted
    results = run(unadopted, llms=rules(), echo=echoed.append)
    assert results["stages"]["4"] == {"skipped": "no adopted strategy"} and taught == []
    assert [line for line in echoed if "--strategy FILE" in line] == [f"stage 4: {pipeline.NOTHING_TO_TEACH}"]
    assert "| 4 | Exported student (LoRA, GGUF) | | skipped (no adopted strategy)" in (tmp_path / "run" / "report.md").read_text()
    mine = tmp_path / "mine.md"
    mine.write_text("1. Sweep the sorted events.\n")
    with pytest.raises(Taught):
        run(config(tmp_path, n_train=50, stages=("2", "4"), strategy_file=mine), llms=rules())
    assert taught == ["1. Sweep the sorted events."]
    session = orjson.loads((tmp_path / "run" / "manifest.json").read_bytes())["sessions"][-1]
    assert session["user_strategy"] == {"file": str(mine), "sha256": hashlib.sha256(b"1. Sweep the sorted events.").hexdigest()}
    with pytest.raises(Taught):
        run(config(tmp_path / "adopted", stages=("2", "4")), llms=rules())
    adopted = orjson.loads((tmp_path / "adopted" / "run" / "stages" / "2_bootstrap.json").read_bytes())
    assert taught[-1] == adopted["candidates"][1]["text"] and adopted["candidates"][1]["adopted"]
