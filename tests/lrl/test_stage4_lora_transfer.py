"""Stage 4 end to end on a tiny random GGUF student: curriculum, JAX LoRA, export with gate, paired report."""
from __future__ import annotations

import pytest

from k1core.errors import UserError
from lrl.pipeline import run
from lrl.run_config import RunConfig
from tests.lrl.rules_llm import RulesLLM
from tests.backends.export.peft_fixtures import tiny_gguf


def config(tmp_path, student: str, **changes) -> RunConfig:
    return RunConfig(**{"teacher": "anthropic:claude-3-5-haiku-latest", "student": student, "out": tmp_path / "run",
                        "n_train": 50, "n_val": 10, "n_test": 10, "stages": ("0", "1", "2", "4"),
                        "curriculum_size": 12, "lora_steps": 2, "lora_rank": 2, "lora_seq_len": 1024,
                        "export_quant": "q8_0", "solve_max_tokens": 4, **changes})


@pytest.mark.slow
def test_stage4_trains_exports_gates_and_reports(tmp_path):
    base, _, _ = tiny_gguf(tmp_path, "qwen2", wide=True)
    llm = RulesLLM()
    results = run(config(tmp_path, f"llamacpp:{base}"), llms={"teacher": llm, "student": llm})
    stage = results["stages"]["4"]
    assert stage["curriculum"]["lines"] == 12 - stage["curriculum"]["teacher_rejected"]
    assert stage["training"]["steps"] == 2
    assert stage["export"]["gate"]["passed"] and set(stage["export"]["gate"]["runs"]) == {"f16", "q8_0"}
    assert stage["summary"]["n"] == 10 and "4_vs_base" in results["comparisons"] and "4_vs_teacher" in results["comparisons"]
    report = (tmp_path / "run" / "report.md").read_text()
    assert "## LoRA transfer (stage 4)" in report and "Fidelity gate" in report
    assert "Exported student (A) vs base student (B)" in report
    assert (tmp_path / "run" / "transfer" / "student.gguf").is_file()


def test_stage4_needs_a_local_gguf_student(tmp_path):
    llm = RulesLLM()
    with pytest.raises(UserError, match="must be a local GGUF"):
        run(config(tmp_path, "anthropic:claude-3-5-haiku-latest"), llms={"teacher": llm, "student": llm})
