"""`k1 lrl run` on the deterministic test doubles writes results.json and report.md byte for byte as
recorded in tests/lrl/golden/: a refactor of the pipeline, its stages or its reports must not move a digit.

To re-record after an intended change of results: `K1_RECORD_GOLDEN=1 pytest tests/lrl/test_golden_run.py`.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from lrl.pipeline import run
from lrl.run_config import RunConfig
from tests.lrl.echo_llm import ScriptedLLM
from tests.lrl.rules_llm import RulesLLM

GOLDEN = Path(__file__).parent / "golden"
RUNS = {
    "rules_scheduling": (RulesLLM, dict(domain="scheduling", n_train=60, n_val=10, n_test=20)),
    "scripted_arithmetic": (ScriptedLLM, dict(domain="arithmetic", n_train=20, n_val=6, n_test=10)),
}


@pytest.mark.parametrize("name", sorted(RUNS))
def test_run_matches_the_recorded_results_byte_for_byte(tmp_path, name):
    make_llm, sizes = RUNS[name]
    llm = make_llm()
    config = RunConfig(teacher="anthropic:claude-3-5-haiku-latest", student="qwen0.5b", out=tmp_path / "run", **sizes)
    run(config, llms={"teacher": llm, "student": llm})
    for artifact in ("results.json", "report.md"):
        written = (tmp_path / "run" / artifact).read_bytes()
        golden = GOLDEN / f"{name}.{artifact}"
        if os.environ.get("K1_RECORD_GOLDEN"):
            golden.write_bytes(written)
        assert written == golden.read_bytes(), f"{artifact} of {name} differs from {golden}"
