"""A run killed mid-stage (SIGKILL, in a subprocess) and re-run with the same command ends with the
same results.json as an uninterrupted run, and no backend call is ever made twice."""
from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHILD = """
import sys
from pathlib import Path
sys.path[:0] = [{root!r}, {here!r}]
from lrl.pipeline import run
from lrl.run_config import RunConfig
from scripted_llm import ScriptedLLM

out, counter, die_at = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
llm = ScriptedLLM(counter=counter, die_at_call=int(die_at) if die_at != "none" else None)
run(RunConfig(teacher="llamacpp:unused.gguf", student="qwen0.5b", n_train=60, n_val=10, n_test=20,
              out=out, progress=False), llms={{"teacher": llm, "student": llm}})
"""


def run_child(tmp_path: Path, out: Path, counter: Path, die_at: int | None) -> int:
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(root=str(ROOT), here=str(Path(__file__).parent)))
    done = subprocess.run([sys.executable, str(script), str(out), str(counter), str(die_at or "none")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode in (0, -signal.SIGKILL), done.stderr
    return done.returncode


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("whole")
    assert run_child(tmp_path, tmp_path / "run", tmp_path / "calls.txt", None) == 0
    calls = (tmp_path / "calls.txt").read_text().split()
    return (tmp_path / "run" / "results.json").read_bytes(), calls


# Call numbers in stage 0, in stage 2's zero-shot validation, a training batch, a candidate's
# validation, and stage 3 (the uninterrupted run makes about 140 calls).
@pytest.mark.parametrize("die_at", [7, 24, 45, 108, 131])
def test_killed_run_resumes_to_the_same_results_without_repeating_calls(tmp_path, uninterrupted, die_at):
    expected_results, expected_calls = uninterrupted
    assert len(expected_calls) == len(set(expected_calls)) > die_at
    out, counter = tmp_path / "run", tmp_path / "calls.txt"
    assert run_child(tmp_path, out, counter, die_at) == -signal.SIGKILL
    assert not (out / "results.json").exists()
    assert len(counter.read_text().split()) == die_at - 1
    assert run_child(tmp_path, out, counter, None) == 0
    calls = counter.read_text().split()
    assert len(calls) == len(set(calls)), "a backend call was repeated after the kill"
    assert sorted(calls) == sorted(expected_calls)
    assert (out / "results.json").read_bytes() == expected_results
