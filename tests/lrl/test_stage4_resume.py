"""Stage 4 killed (SIGKILL, in a subprocess) in its curriculum, its fidelity gate, its evaluations of
the exported GGUF and of the base student, then re-run with the same command, ends with the same
results.json as an uninterrupted run, and no model (the scripted teacher/student or llama.cpp on
the exported files) is ever asked the same thing twice."""
from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.backends.export.peft_fixtures import tiny_gguf

pytestmark = pytest.mark.slow  # each process trains or loads JAX: about a minute per kill point

ROOT = Path(__file__).resolve().parents[2]
CHILD = """
import hashlib, os, signal, sys
from pathlib import Path
sys.path[:0] = [{root!r}]
import backends.llamacpp_backend as llamacpp
import backends.llamacpp_draft as draft
from lrl.pipeline import run
from lrl.run_config import RunConfig
from tests.lrl.rules_llm import RulesLLM

out, counter, base, die_rules, die_llama = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
real_complete, real_draft, llama_calls = llamacpp.LlamaCppLLM.complete, draft.greedy_from_draft, [0]

def count(llm, messages):
    llama_calls[0] += 1
    if die_llama != "none" and llama_calls[0] == int(die_llama):
        os.kill(os.getpid(), signal.SIGKILL)
    with open(counter, "a") as f:
        f.write(f"llama:{{llm.path.name}}+{{llm.lora_path and llm.lora_path.name}}:{{hashlib.sha256(repr(messages).encode()).hexdigest()[:16]}}\\n")

def counted(self, messages, params):
    count(self, messages)
    return real_complete(self, messages, params)

def counted_draft(llm, messages, text, params):
    count(llm, messages)
    return real_draft(llm, messages, text, params)

llamacpp.LlamaCppLLM.complete, draft.greedy_from_draft = counted, counted_draft
llm = RulesLLM(counter=counter, die_at_call=int(die_rules) if die_rules != "none" else None)
run(RunConfig(teacher="anthropic:claude-3-5-haiku-latest", student=f"llamacpp:{{base}}", out=out, n_train=60,
              n_val=10, n_test=10, stages=("0", "1", "2", "4"), curriculum_size=12, lora_steps=2, lora_rank=2,
              lora_seq_len=1024, export_quant="q8_0", solve_max_tokens=4, gate_items=4, gate_report_only=True,
              n_threads=1, parallel=1),
    llms={{"teacher": llm, "student": llm}})
"""
# Scripted calls in stage 4: the strategy's validation repeats stage 2's prompts (all cached), then 6
# curriculum teacher calls, then 10 base-student calls in each prompt format (the curriculum's answer
# limit differs from stage 0's --solve-max-tokens, so none is cached). llama.cpp calls: the gate (base
# + adapter answers 4 items, F16 and Q8_0 check those answers), the deployed student zero-shot (6 new:
# the gate's 4 answers are cached) and with the strategy (10).
STAGE4_RULES_CALLS, LLAMA_CALLS = 26, 12 + 6 + 10


def run_child(tmp_path: Path, out: Path, counter: Path, base: Path, die_rules=None, die_llama=None) -> int:
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(root=str(ROOT)))
    done = subprocess.run([sys.executable, str(script), str(out), str(counter), str(base), str(die_rules or "none"),
                           str(die_llama or "none")], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode in (0, -signal.SIGKILL), done.stderr[-3000:]
    return done.returncode


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    return tiny_gguf(tmp_path_factory.mktemp("model"), "qwen2", wide=True)[0]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, student):
    tmp_path = tmp_path_factory.mktemp("whole")
    assert run_child(tmp_path, tmp_path / "run", tmp_path / "calls.txt", student) == 0
    calls = (tmp_path / "calls.txt").read_text().split()
    return (tmp_path / "run" / "results.json").read_bytes(), calls


def rules_calls(calls):
    return [c for c in calls if not c.startswith("llama:")]


@pytest.mark.parametrize("where", ["curriculum", "gate", "exported zero-shot", "exported strategy", "base strategy"])
def test_stage4_killed_resumes_to_the_same_results_without_repeating_calls(tmp_path, student, uninterrupted, where):
    expected_results, expected_calls = uninterrupted
    n_rules = len(rules_calls(expected_calls))
    assert len(expected_calls) == len(set(expected_calls)) and len(expected_calls) - n_rules == LLAMA_CALLS
    die = {"curriculum": {"die_rules": n_rules - STAGE4_RULES_CALLS + 3}, "gate": {"die_llama": 6},
           "exported zero-shot": {"die_llama": 15}, "exported strategy": {"die_llama": 24},
           "base strategy": {"die_rules": n_rules - 4}}[where]
    out, counter = tmp_path / "run", tmp_path / "calls.txt"
    assert run_child(tmp_path, out, counter, student, **die) == -signal.SIGKILL
    assert not (out / "results.json").exists()
    assert run_child(tmp_path, out, counter, student) == 0
    calls = counter.read_text().split()
    assert len(calls) == len(set(calls)), "a model call was repeated after the kill"
    assert sorted(calls) == sorted(expected_calls)
    assert (out / "results.json").read_bytes() == expected_results
