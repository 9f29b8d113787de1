"""Real-model export and evaluation with Qwen2.5-Coder-0.5B (slow: minutes on a laptop CPU)."""
from __future__ import annotations

import orjson
import pytest
from click.testing import CliRunner

from backends.student.gguf_loader import field_value, open_gguf, read_config
from cli import main
from lrl.domain import get_domain, write_problems
from tests.backends.export.peft_fixtures import write_peft_adapter

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def qwen(qwen_gguf):
    return qwen_gguf


@pytest.fixture()
def problems(tmp_path):
    path = tmp_path / "problems.jsonl"
    write_problems(path, get_domain("scheduling").generate(3, seed=0, split="test", variant="balanced"))
    return path


def test_fused_random_adapter_exports_loads_and_the_gate_passes_only_an_informative_reference(qwen, problems, tmp_path):
    reader = open_gguf(qwen)
    write_peft_adapter(tmp_path / "adapter", read_config(reader, qwen), rank=4, std=0.01, targets=("q_proj", "v_proj"))
    out = tmp_path / "student.gguf"
    result = CliRunner().invoke(main, ["export", "--base", "qwen0.5b", "--adapter", str(tmp_path / "adapter"),
                                       "--quant", "q8_0", "--out", str(out), "--gate-problems", str(problems),
                                       "--max-tokens", "16", "--threads", "2"])
    report = orjson.loads(out.with_name("student.export.json").read_bytes())
    # A 0.01-scale adapter changes no answer; whether 16 tokens reach an answer line decides the verdict:
    # a reference with no answer (or one, like the base's) proves nothing, and the gate says so.
    assert {name: row.get("agreement", 1.0) for name, row in report["gate"]["runs"].items()} == {
        "f16": 1.0, "q8_0": 1.0, "adapter": 1.0}
    informative = report["gate"]["reference_check"]["informative"]
    assert result.exit_code == (0 if informative else 2), result.output
    exported = open_gguf(out)
    for key in ("tokenizer.chat_template", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.add_bos_token"):
        assert field_value(exported, key) == field_value(reader, key)
    assert field_value(exported, "general.file_type") == 7


def test_lrl_eval_on_the_real_model(qwen, problems, tmp_path):
    out = tmp_path / "results.jsonl"
    result = CliRunner().invoke(main, ["lrl", "eval", "--model", "qwen0.5b", "--problems", str(problems),
                                       "--out", str(out), "--max-tokens", "256", "--threads", "2"])
    assert result.exit_code == 0, result.output
    records = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert len(records) == 3 and all(r["latency_s"] > 0 for r in records)
    assert "accuracy" in result.output and "always" in result.output
