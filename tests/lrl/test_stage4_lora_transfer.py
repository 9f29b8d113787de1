"""Stage 4 end to end on a tiny random GGUF student: curriculum in both prompt formats, JAX LoRA,
export with a gate on a seeded subset, the exported and the base student in both formats, paired report."""
from __future__ import annotations

import io

import pytest

from k1core.errors import UserError
from k1core.progress import ItemProgress
from lrl.pipeline import run
from lrl.run_config import RunConfig
from tests.lrl.rules_llm import RulesLLM
from tests.backends.export.peft_fixtures import tiny_gguf


def config(tmp_path, student: str, **changes) -> RunConfig:
    return RunConfig(**{"teacher": "anthropic:claude-3-5-haiku-latest", "student": student, "out": tmp_path / "run",
                        "n_train": 60, "n_val": 10, "n_test": 10, "stages": ("0", "1", "2", "4"),
                        "curriculum_size": 12, "lora_steps": 2, "lora_rank": 2, "lora_seq_len": 1024,
                        "export_quant": "q8_0", "solve_max_tokens": 4, "gate_items": 4, "gate_report_only": True,
                        **changes})


@pytest.mark.slow
def test_stage4_trains_on_both_formats_exports_gates_and_reports_both(tmp_path):
    base, _, _ = tiny_gguf(tmp_path, "qwen2", wide=True)
    llm = RulesLLM()
    log = io.StringIO()  # not a terminal: progress comes as whole lines
    results = run(config(tmp_path, f"llamacpp:{base}", lora_steps=None, lora_epochs=1.0,
                         stages=("0", "1", "2", "4", "4b"), teacher_items=6, ood_items=5),
                  llms={"teacher": llm, "student": llm}, progress=lambda label, total: ItemProgress(label, total, log))
    assert "stage 4: teacher solutions for the curriculum 6/6 (100%)" in log.getvalue()
    stage = results["stages"]["4"]
    assert stage["curriculum"]["lines"] == 12 - stage["curriculum"]["teacher_rejected"]
    ood = results["stages"]["4b"]  # the deployed artifact and the base student beyond the curriculum
    assert {v: (f["exported"]["n"], f["base"]["n"]) for v, f in ood["variants"].items()} == {
        "large": (5, 5), "minutes": (5, 5)}
    assert ood["variants"]["large"]["max_tokens"] > stage["curriculum"]["generation_limit"]
    assert {"4b_large_vs_base", "4b_minutes_vs_base"} <= set(results["comparisons"])
    assert set(stage["curriculum"]["by_prompt_format"]) == {"zero-shot", "strategy"}
    training = stage["training"]  # one epoch of the curriculum less its tenth for validation, one packed row a step
    assert (training["examples"], training["epochs_asked"], training["rows_per_step"]) == (stage["curriculum"]["lines"] - 1, 1.0, 1)
    assert training["examples"] <= training["examples_trained"] and training["epochs"] >= 1
    assert stage["trained_prompts"] == ["zero-shot", "strategy"]
    gate = stage["export"]
    # A random tiny student writes no answer in 4 tokens: the gate says so, and (report-only) the run goes on.
    assert not gate["gate"]["passed"] and not gate["gate"]["reference_check"]["informative"]
    assert set(gate["gate"]["runs"]) == {"f16", "q8_0", "adapter"} and gate["deployed"] in gate["gate"]["runs"]
    assert (gate["items"], gate["test_items"], gate["subset_seed"], gate["gate"]["n"]) == (4, 10, 0, 4)
    assert stage["export"]["files"]["q8_0"]["path"] == "transfer/student.gguf"
    assert {f: s["n"] for f, s in stage["by_prompt"].items()} == {"zero-shot": 10, "strategy": 10}
    formats = stage["transfer"]["formats"]
    assert all(formats[f]["trained"] for f in ("zero-shot", "strategy"))
    # The base student in the zero-shot format is stage 0's model on stage 0's prompts.
    stage0 = results["stages"]["0"]["summary"]
    assert {k: formats["zero-shot"]["base"][k] for k in ("correct", "outcomes")} == {k: stage0[k] for k in ("correct", "outcomes")}
    assert {"4_zero-shot_vs_base", "4_strategy_vs_base", "4_zero-shot_vs_teacher", "4_strategy_vs_teacher",
            "4_strategy_vs_zero-shot"} <= set(results["comparisons"])
    assert results["comparisons"]["4_zero-shot_vs_teacher"]["n"] == 6  # the teacher's share of the test split
    assert results["comparisons"]["4_zero-shot_vs_base"]["n"] == 10
    report = (tmp_path / "run" / "report.md").read_text()
    assert (f"LoRA: {training['steps']} steps of 1 packed row(s), {training['examples_trained']} chats trained: "
            f"{training['epochs']:.2f} epochs of the {training['examples']} training chats (1 asked)") in report
    assert "## LoRA transfer (stage 4)" in report and "Fidelity gate (4 items" in report and "uninformative" in report
    assert "4 of the 10 test items (a subset drawn with seed 0" in report and "deployed and tested below: the `q8_0`" in report
    assert "no strategy in prompt (`zero-shot`) | strategy in prompt (`strategy`)" in report
    assert "Exported student (A) vs base student (B), both strategy" in report
    assert "Stage 4 taught `transfer/strategy.md`, stage 2, adopted on validation. On the validation split" in report
    assert stage["strategy_validation"]["with_strategy"]["accuracy"] > stage["strategy_validation"]["without_strategy"]["accuracy"]
    limit = stage["curriculum"]["generation_limit"]
    assert limit >= 1.5 * stage["curriculum"]["target_tokens"]["max"] and f"up to {limit} tokens" in report
    assert (tmp_path / "run" / "transfer" / "student.gguf").is_file()
    steps = stage["steps"]  # scheduling checks the steps of a worked solution, in every run of the test split
    assert {who: sorted(by_format) for who, by_format in steps.items()} == {
        "exported": ["strategy", "zero-shot"], "base": ["strategy", "zero-shot"]}
    assert steps["base"]["zero-shot"]["n"] == 10 and "peak stated" in steps["base"]["zero-shot"]["steps"]
    assert "### Worked solutions, step by step" in report and "| base student, `strategy` |" in report


@pytest.mark.slow
def test_single_format_student_is_still_measured_in_both(tmp_path):
    """Also: stage 2 adopts nothing here (5 batches: one useless candidate), so the person's strategy is taught."""
    base, _, _ = tiny_gguf(tmp_path, "qwen2", wide=True)
    llm = RulesLLM()
    mine = tmp_path / "mine.md"
    mine.write_text("1. Make start and end events.\n2. Sort them and sweep, counting overlaps.\n")
    results = run(config(tmp_path, f"llamacpp:{base}", student_prompts="strategy", stages=("2", "4"), gate_items=None,
                         n_train=50, strategy_file=mine), llms={"teacher": llm, "student": llm})
    assert results["stages"]["2"]["adopted"] is None and results["stages"]["4"]["strategy"]["source"] == "user-supplied"
    stage = results["stages"]["4"]
    assert stage["curriculum"]["by_prompt_format"] == {"strategy": stage["curriculum"]["lines"]}
    assert stage["prompt"] == "strategy" and stage["export"]["subset_seed"] is None and stage["export"]["items"] == 10
    assert not stage["transfer"]["formats"]["zero-shot"]["trained"] and stage["transfer"]["formats"]["strategy"]["trained"]
    report = (tmp_path / "run" / "report.md").read_text()
    assert "zero-shot, not trained on it" in report and "**no** (generalization only)" in report
    assert "teacher (stage 1" not in report  # stage 1 did not run
    assert f"Stage 4 taught `transfer/strategy.md`, user-supplied (`{mine}`, sha256" in report


@pytest.mark.slow
def test_a_failing_gate_stops_stage4_with_its_report_written(tmp_path):
    base, _, _ = tiny_gguf(tmp_path, "qwen2", wide=True)
    llm = RulesLLM()
    with pytest.raises(UserError, match="fidelity gate failed"):
        run(config(tmp_path, f"llamacpp:{base}", gate_report_only=False), llms={"teacher": llm, "student": llm})
    assert (tmp_path / "run" / "transfer" / "student.export.md").is_file()


def test_the_report_gives_the_lora_length_in_steps_and_epochs():
    from lrl.run_report import _lora_length

    given = {"steps": 100, "rows_per_step": 1, "examples": 180, "examples_trained": 130, "epochs_asked": None,
             "epochs": 0.7222}
    assert _lora_length(given) == ("100 steps of 1 packed row(s), 130 chats trained: 0.72 epochs of the 180 "
                                   "training chats (steps given)")
    assert _lora_length({**given, "epochs_asked": 1.0}).endswith("(1 asked)")
    assert _lora_length({"steps": 100, "best_val_loss": 0.5}) == "100 steps"  # a saved stage 4 without the epochs


def test_stage4_needs_a_local_gguf_student(tmp_path):
    llm = RulesLLM()
    with pytest.raises(UserError, match="must be a local GGUF"):
        run(config(tmp_path, "anthropic:claude-3-5-haiku-latest"), llms={"teacher": llm, "student": llm})


@pytest.mark.parametrize("changes, message", [({"student_prompts": "few-shot"}, "--student-prompts"),
                                              ({"gate_items": 0}, "--gate-items"),
                                              ({"lora_layers": 0}, "--lora-layers")])
def test_bad_stage4_options_are_one_clear_error(tmp_path, changes, message):
    with pytest.raises(UserError, match=message):
        config(tmp_path, "qwen0.5b", **changes)


def test_lora_layers_is_part_of_a_runs_identity_only_when_given(tmp_path):
    """A run made without the option resumes under a config that does not name it."""
    assert "lora_layers" not in config(tmp_path, "qwen0.5b").identity()
    assert config(tmp_path, "qwen0.5b", lora_layers=12).identity()["lora_layers"] == 12


def test_teacher_gate_and_ood_items_are_part_of_a_runs_identity_only_when_they_change_the_items(tmp_path):
    """A run made before the options (the teacher on the whole split, --n-test out-of-distribution problems)
    resumes under a config.json that does not name them."""
    assert "teacher_items" not in config(tmp_path, "qwen0.5b", n_test=10, teacher_items=20).identity()
    assert "teacher_items" not in config(tmp_path, "qwen0.5b", teacher_items=None).identity()
    assert config(tmp_path, "qwen0.5b", n_test=10, teacher_items=4).identity()["teacher_items"] == 4
    assert config(tmp_path, "qwen0.5b", n_test=10, gate_items=40).identity()["gate_items"] is None  # all 10
    assert config(tmp_path, "qwen0.5b", n_test=100, gate_items=40).identity()["gate_items"] == 40
    assert "ood_items" not in config(tmp_path, "qwen0.5b", n_test=10, ood_items=10).identity()
    assert config(tmp_path, "qwen0.5b", n_test=10, ood_items=20).identity()["ood_items"] == 20


def test_a_half_built_stage4_refuses_another_strategy(tmp_path):
    from types import SimpleNamespace

    from lrl.rundir import RunDir
    from lrl.stages import lora_transfer

    def ctx(strategy):
        return SimpleNamespace(config=config(tmp_path, "llamacpp:/absent/student.gguf"), run=RunDir(tmp_path / "run"),
                               strategy=strategy)

    with pytest.raises(UserError, match="no such model file"):  # the strategy is recorded first
        lora_transfer.run(ctx("1. Sweep."))
    with pytest.raises(UserError, match="started with another strategy"):
        lora_transfer.run(ctx("1. Guess."))
