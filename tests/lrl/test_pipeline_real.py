"""The full stage flow on the real local models (the default qwen1.5b teaching qwen0.5b, llama.cpp), tiny sizes.

It checks that every stage runs against a real model and writes honest artifacts; with two
problems a split the accuracies say nothing about the method.
"""
from __future__ import annotations

import orjson
import pytest

import lrl.model_pool
from lrl.pipeline import run
from lrl.run_config import RunConfig

pytestmark = pytest.mark.slow


def test_every_stage_runs_on_the_real_model_and_replays_offline(tmp_path, monkeypatch):
    config = RunConfig(n_train=2, n_val=2, n_test=2, solve_max_tokens=48, reflect_max_tokens=64,
                       distill_max_tokens=64, n_threads=1, out=tmp_path / "run")
    results = run(config)
    assert results["models"] == {"teacher": "llamacpp:qwen1.5b", "student": "llamacpp:qwen0.5b"}
    assert set(results["stages"]) == {"0", "1", "2", "3", "3b"}
    for stage in ("0", "1", "3", "3b"):
        summary = results["stages"][stage]["summary"]
        assert summary["n"] == 2 and 0.0 <= summary["accuracy"] <= 1.0
    boot = results["stages"]["2"]
    assert len(boot["candidates"]) == 1 and boot["candidates"][0]["text"]
    assert (tmp_path / "run" / "strategies" / "00.md").read_text().strip() == boot["candidates"][0]["text"]
    thoughts = [orjson.loads(line) for line in (tmp_path / "run" / "thoughts.jsonl").read_bytes().splitlines()]
    assert thoughts and all(t["response"] for t in thoughts)
    assert {t["model"] for t in thoughts if t["stage"] == "1_teacher_baseline"} == {"qwen1.5b"}
    assert {t["model"] for t in thoughts if t["stage"] == "0_student_baseline"} == {"qwen0.5b"}
    ledger = orjson.loads((tmp_path / "run" / "ledger.json").read_bytes())
    assert ledger["total"]["usd"] == 0.0 and ledger["total"]["output_tokens"] > 0

    def no_model(*_args):
        raise AssertionError("an offline replay must not load the model")

    monkeypatch.setattr(lrl.model_pool, "build_llm", no_model)
    (tmp_path / "run" / "results.json").unlink()
    for state in (tmp_path / "run" / "stages").glob("*.json"):
        state.unlink()  # forget finished work: every answer must come back from the response cache
    assert run(RunConfig(**{**config.__dict__, "offline": True})) == results
