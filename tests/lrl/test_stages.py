"""The stage registry: every module of lrl/stages with a STAGE is found, in id order, with its facts in one object."""
from __future__ import annotations

import orjson
import pytest

from k1core.errors import UserError
from lrl.run_config import RunConfig, parse_stages
from lrl.stage import stage_order
from lrl.stages import all_stages, get_stage, stage_ids


def test_every_stage_module_is_found_in_id_order():
    assert stage_ids() == ("0", "1", "2", "3", "3b", "4", "4b")
    assert [s.key for s in all_stages()] == ["0_student_baseline", "1_teacher_baseline", "2_bootstrap",
                                             "3_teacher_strategy", "3b_transfer_check", "4_lora_transfer",
                                             "4b_ood_transfer"]


def test_stage_ids_sort_by_number_then_letter():
    assert sorted(["10", "4", "3b", "3", "0"], key=stage_order) == ["0", "3", "3b", "4", "10"]


def test_the_default_run_leaves_out_the_training_stage():
    assert stage_ids(default_only=True) == ("0", "1", "2", "3", "3b")
    assert RunConfig().stages == ("0", "1", "2", "3", "3b")
    assert parse_stages("default") is None and parse_stages("all") == stage_ids()
    assert [s.id for s in all_stages() if s.needs_strategy] == ["3", "3b", "4"]


def test_asked_stages_run_in_stage_order_whatever_order_they_are_given():
    assert RunConfig(stages=parse_stages("3b, 0,2")).stages == ("0", "2", "3b")


@pytest.mark.parametrize("text", ["5", "0,x", ""])
def test_unknown_or_no_stages_are_one_clear_error(text):
    with pytest.raises(UserError, match=r"--stages must be a comma list of 0, 1, 2, 3, 3b, 4"):
        RunConfig(stages=parse_stages(text))
    with pytest.raises(UserError, match="unknown stage"):
        get_stage("5")


EXTRA_STAGE = '''
from lrl.stage import Stage
from lrl.stages.context import evaluate_on_test_split


def run(ctx):
    return evaluate_on_test_split(ctx, STAGE.key, "student", ctx.strategy, "stage 5: student again")


def planned_calls(ctx, sizes):
    return [("student", len(ctx.splits["test"]), sizes.with_strategy_in, sizes.solve_out)]


STAGE = Stage("5", "student_again", "Student again", run, needs_strategy=True, default=False,
              planned_calls=planned_calls, comparisons=lambda results: {})
'''


@pytest.fixture
def extra_stage(tmp_path, monkeypatch):
    """One more stage module, dropped next to the others (on the package's search path)."""
    import lrl.stages

    folder = tmp_path / "more_stages"
    folder.mkdir()
    (folder / "student_again.py").write_text(EXTRA_STAGE)
    monkeypatch.setattr(lrl.stages, "__path__", [*lrl.stages.__path__, str(folder)])
    all_stages.cache_clear()
    yield
    all_stages.cache_clear()


def test_adding_a_stage_is_adding_one_module(extra_stage, tmp_path):
    from lrl.pipeline import run
    from tests.lrl.rules_llm import RulesLLM

    assert stage_ids() == ("0", "1", "2", "3", "3b", "4", "4b", "5") and "5" not in stage_ids(default_only=True)
    llm = RulesLLM()
    config = RunConfig(teacher="anthropic:claude-3-5-haiku-latest", out=tmp_path / "run", n_train=20, n_val=6,
                       n_test=10, stages=parse_stages("2,5"))
    results = run(config, llms={"teacher": llm, "student": llm})
    assert results["stages"]["5"]["summary"]["n"] == 10 and results["stages"]["5"]["with_strategy"]
    assert (tmp_path / "run" / "stages" / "5_student_again.json").is_file()
    assert "| 5 | Student again |" in (tmp_path / "run" / "report.md").read_text()
    assert get_stage("5").bars(results["stages"]["5"]) == [("5 student, strategy", results["stages"]["5"]["summary"])]
    ledger = orjson.loads((tmp_path / "run" / "ledger.json").read_bytes())
    assert ledger["stages"]["5_student_again"]["calls"] == 10
