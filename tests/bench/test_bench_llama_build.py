"""bench_llama_build: crash classification, summary arithmetic and argument errors (no real model)."""

import argparse
import sys
import stat
from pathlib import Path

import pytest

from bench.bench_llama_build import BenchConfig, format_table, main, parse_build, run_once, summarize


def fake_python(tmp_path: Path, body: str) -> Path:
    """An executable standing in for a venv's python: it ignores its arguments and runs body."""
    path = tmp_path / "python"
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "m.gguf"
    path.write_bytes(b"GGUF")
    return path


def test_segfaulting_build_is_recorded_as_sigsegv(tmp_path, model):
    python = fake_python(tmp_path, "kill -SEGV $$")
    assert run_once(BenchConfig(model=model, builds=(("x", python),)), python) == {"crash": "SIGSEGV"}


def test_failing_build_reports_exit_code_and_last_stderr_line(tmp_path, model):
    python = fake_python(tmp_path, "echo first >&2; echo 'no llama_cpp' >&2; exit 3")
    assert run_once(BenchConfig(model=model, builds=(("x", python),)), python) == {"crash": "exit 3: no llama_cpp"}


def test_working_build_result_is_the_last_stdout_line(tmp_path, model):
    python = fake_python(tmp_path, 'echo noise; echo \'{"prompt_tps": 2.0, "tokens": [1]}\'')
    assert run_once(BenchConfig(model=model, builds=(("x", python),)), python)["prompt_tps"] == 2.0


def test_summary_uses_medians_ratios_to_first_build_and_flags_token_mismatch():
    def run(prompt, gen, tokens):
        return {"prompt_tps": prompt, "prompt_cpu_tps": 2 * prompt, "gen_tps": gen, "gen_cpu_tps": 2 * gen,
                "tokens": tokens}

    rows = summarize({
        "base": [run(10, 4, [1, 2]), run(30, 8, [1, 2]), run(20, 6, [1, 2])],
        "fast": [run(40, 9, [1, 2]), run(50, 9, [1, 3]), {"crash": "SIGSEGV"}],
        "dead": [{"crash": "SIGSEGV"}],
    })
    base, fast, dead = rows
    assert (base["prompt_tps"], base["gen_cpu_tps"], base["prompt_tps_ratio"]) == (20, 12, 1.0)
    assert fast["prompt_tps"] == 45 and fast["prompt_cpu_tps_ratio"] == pytest.approx(2.25)
    assert fast["gen_tps_ratio"] == pytest.approx(1.5)
    assert base["same_tokens"] and not fast["same_tokens"]
    assert fast["crashes"] == ["SIGSEGV"] and "prompt_tps" not in dead
    table = format_table(rows)
    assert "DIFFER" in table and "SIGSEGV" in table


def test_ratios_are_against_the_first_build_that_ran():
    ok = {"prompt_tps": 5.0, "prompt_cpu_tps": 5.0, "gen_tps": 1.0, "gen_cpu_tps": 1.0, "tokens": [7]}
    dead, alive = summarize({"dead": [{"crash": "SIGSEGV"}], "alive": [ok]})
    assert alive["prompt_tps_ratio"] == 1.0 and alive["same_tokens"]


@pytest.mark.parametrize("text", ["nolabel", "=python", "label="])
def test_bad_build_argument_is_rejected(text):
    with pytest.raises(argparse.ArgumentTypeError):
        parse_build(text)


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, model):
    assert main(["--model", str(tmp_path / "missing.gguf"), "--build", f"a={sys.executable}"]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0
    assert main(["--model", str(model), "--build", f"a={sys.executable}", "--rounds", "0"]) == 2
    assert main(["--model", str(model), "--build", "a=/no/python"]) == 2
    assert main(["--model", str(model), "--build", f"a={sys.executable}", "--build", f"a={sys.executable}"]) == 2
