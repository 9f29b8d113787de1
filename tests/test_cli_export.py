"""`k1 export`, `k1 chat` and `k1 lrl eval` in-process on a tiny random GGUF (the real model is in slow tests)."""
from __future__ import annotations

import shutil

import numpy as np
import orjson
import pytest
from click.testing import CliRunner

from backends.student.safetensors_io import bf16_bits, read_safetensors, write_safetensors
from cli import main
from lrl.domain import get_domain, write_problems
from tests.backends.export.peft_fixtures import tiny_gguf, write_peft_adapter


@pytest.fixture()
def tiny(tmp_path):
    base, cfg, _ = tiny_gguf(tmp_path, "qwen2", wide=True)
    write_peft_adapter(tmp_path / "adapter", cfg, std=0.02)
    problems = tmp_path / "problems.jsonl"
    write_problems(problems, get_domain("scheduling").generate(3, seed=0, split="test", variant="balanced"))
    return base, tmp_path / "adapter", problems


def test_export_writes_every_file_and_fails_a_gate_on_a_reference_that_never_answers(tiny, tmp_path):
    base, adapter, problems = tiny
    out = tmp_path / "out" / "student.gguf"
    result = CliRunner().invoke(main, ["export", "--base", str(base), "--adapter", str(adapter), "--quant", "q4_k_m",
                                       "--out", str(out), "--gate-problems", str(problems), "--max-tokens", "4"])
    # A random model never writes an answer: every artifact "agrees", which proves nothing.
    assert result.exit_code == 2 and "gives no answer or one answer everywhere" in result.output, result.output
    report = orjson.loads((tmp_path / "out" / "student.export.json").read_bytes())
    assert set(report["files"]) == {"f16", "q8_0", "q4_k_m", "adapter"} and report["gate"]["n"] == 3
    assert set(report["gate"]["runs"]) == {"f16", "q8_0", "q4_k_m", "adapter"} and not report["gate"]["passed"]
    assert report["files"]["adapter"]["bytes"] == base.stat().st_size + report["files"]["adapter"]["adapter_bytes"]
    for name in ("Modelfile", "student.gate-q8_0.jsonl", "student.lora.gguf"):
        assert (tmp_path / "out" / name).is_file(), name


def test_export_without_a_gate_deploys_base_plus_adapter_and_chat_and_eval_run_the_pair(tiny, tmp_path):
    base, adapter, problems = tiny
    out = tmp_path / "student.gguf"
    result = CliRunner().invoke(main, ["export", "--base", str(base), "--adapter", str(adapter), "--quant", "q8_0",
                                       "--out", str(out), "--no-gate"])
    assert result.exit_code == 0 and "Deployed: **adapter**" in result.output, result.output
    modelfile = (tmp_path / "Modelfile").read_text()
    assert f"FROM {base.resolve()}\nADAPTER ./student.lora.gguf\n" in modelfile
    pair = orjson.loads((tmp_path / "student.export.json").read_bytes())["deployed_spec"]
    assert pair == f"llamacpp:{base}+lora={tmp_path / 'student.lora.gguf'}"
    chat = CliRunner().invoke(main, ["chat", pair, "--max-tokens", "3"], input="hello\n/exit\n")
    assert chat.exit_code == 0, chat.output
    results = tmp_path / "results.jsonl"
    scored = CliRunner().invoke(main, ["lrl", "eval", "--model", pair, "--problems", str(problems), "--out", str(results),
                                       "--max-tokens", "4"])
    assert scored.exit_code == 0 and "parse failures" in scored.output, scored.output


def test_export_reads_a_bf16_adapter_as_the_float32_values_it_rounds_to(tiny, tmp_path):
    """What `k1 lrl publish` writes: the same export as a float32 adapter holding the rounded values."""
    base, adapter, _ = tiny
    tensors = read_safetensors(adapter / "adapter_model.safetensors")
    rounded = {name: (bf16_bits(x).astype(np.uint32) << 16).view(np.float32) for name, x in tensors.items()}
    files = {}
    for name, values, dtype in (("bf16", tensors, "BF16"), ("rounded", rounded, "F32"), ("f32", tensors, "F32")):
        folder = tmp_path / name
        folder.mkdir()
        shutil.copyfile(adapter / "adapter_config.json", folder / "adapter_config.json")
        write_safetensors(folder / "adapter_model.safetensors", values, dtype=dtype)
        out = tmp_path / f"out-{name}" / "student.gguf"
        result = CliRunner().invoke(main, ["export", "--base", str(base), "--adapter", str(folder), "--quant", "q8_0",
                                           "--out", str(out), "--no-gate"])
        assert result.exit_code == 0, result.output
        report = orjson.loads((out.parent / "student.export.json").read_bytes())
        files[name] = {kind: entry["sha256"] for kind, entry in report["files"].items()}
    assert set(files["bf16"]) == {"f16", "q8_0", "adapter"}
    assert files["bf16"] == files["rounded"] and files["bf16"]["adapter"] != files["f32"]["adapter"]


def test_chat_with_an_adapter_that_is_not_one_is_a_clear_error(tiny):
    base, _, _ = tiny
    result = CliRunner().invoke(main, ["chat", f"{base}+lora={base}"], input="/exit\n")
    assert result.exit_code == 2 and "not a LoRA adapter GGUF" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("args, message", [
    (["--adapter", "{tmp}/missing"], "no such adapter directory"),
    (["--base", "{tmp}/none.gguf"], "no such model file"),
    (["--quant", "q3_x"], "unknown quantization"),
    (["--out", "{tmp}/student.bin"], "must end in .gguf"),
])
def test_export_bad_input_is_one_line_and_exit_2(tiny, tmp_path, args, message):
    base, adapter, _ = tiny
    argv = {"--base": str(base), "--adapter": str(adapter), "--out": str(tmp_path / "s.gguf"), "--quant": "q8_0"}
    for key, value in zip(args[::2], args[1::2]):
        argv[key] = value.format(tmp=tmp_path)
    flat = ["export", "--no-gate"] + [x for kv in argv.items() for x in kv]
    result = CliRunner().invoke(main, flat)
    assert result.exit_code == 2 and message in result.output, result.output
    assert "Traceback" not in result.output


def test_chat_streams_replies_until_exit(tiny):
    base, _, _ = tiny
    result = CliRunner().invoke(main, ["chat", str(base), "--max-tokens", "5"], input="hello there\n\n/reset\nthe cat\n/exit\n")
    assert result.exit_code == 0, result.output
    assert "> > (conversation reset)" in result.output  # a blank line just prompts again


def test_chat_loop_keeps_history_and_streams_pieces(tiny):
    from backends.chat_session import chat_loop
    from backends.llamacpp_backend import LlamaCppLLM
    from backends.llm import SamplingParams

    llm = LlamaCppLLM(tiny[0], n_ctx=512)
    lines, written, seen = iter(["hello\n", "again\n", "/exit\n"]), [], []
    original = llm.prompt_tokens
    llm.prompt_tokens = lambda messages: seen.append(list(messages)) or original(messages)
    replies = chat_loop(llm, lambda: next(lines), written.append, SamplingParams(max_tokens=3), system="be brief")
    assert replies == 2
    assert [m["role"] for m in seen[1]] == ["system", "user", "assistant", "user"]
    assert "".join(written[1:written.index("> ", 1)]) == seen[1][2]["content"] + "\n"  # streamed pieces, joined


def test_chat_on_a_corrupt_file_is_one_clear_error(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF\x03\x00\x00\x00")
    result = CliRunner().invoke(main, ["chat", str(bad)], input="/exit\n")
    assert result.exit_code == 2 and "k1: error:" in result.output and "Traceback" not in result.output


def test_lrl_eval_scores_any_problems_file(tiny, tmp_path):
    base, _, problems = tiny
    out = tmp_path / "results.jsonl"
    result = CliRunner().invoke(main, ["lrl", "eval", "--model", f"llamacpp:{base}", "--problems", str(problems),
                                       "--out", str(out), "--max-tokens", "4"])
    assert result.exit_code == 0, result.output
    lines = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    assert len(lines) == 3 and all(r["verdict"] == "parse_failure" for r in lines)  # 4 random tokens never answer
    assert "parse failures" in result.output and "100.0%" in result.output and "always" in result.output


def test_lrl_eval_answers_alike_at_any_parallel_and_logs_progress_lines(tiny, tmp_path):
    base, _, problems = tiny
    responses = {}
    for parallel in ("1", "3"):
        out = tmp_path / f"results-{parallel}.jsonl"
        result = CliRunner().invoke(main, ["lrl", "eval", "--model", f"llamacpp:{base}", "--problems", str(problems),
                                           "--out", str(out), "--max-tokens", "6", "--parallel", parallel])
        assert result.exit_code == 0, result.output
        assert "eval 3/3 (100%)" in result.output and "\r" not in result.output  # not a terminal: plain lines
        responses[parallel] = [orjson.loads(x)["response"] for x in out.read_bytes().splitlines()]
    assert responses["1"] == responses["3"] and len(responses["1"]) == 3
    bad = CliRunner().invoke(main, ["lrl", "eval", "--model", f"llamacpp:{base}", "--problems", str(problems),
                                    "--out", str(tmp_path / "r.jsonl"), "--parallel", "0"])
    assert bad.exit_code == 2 and "--parallel" in bad.output


def test_failing_gate_exits_2_with_the_report_written(tiny, tmp_path, monkeypatch):
    import lrl.export_job as job

    real_runs = job.gate_runs

    def broken_q8(*args, **kwargs):  # a quantization that changes every answer
        runs, seconds = real_runs(*args, **kwargs)
        if "q8_0" in runs:  # not the base student's run
            runs["q8_0"] = [{**r, "parsed": "NO", "parse_error": None, "verdict": "wrong"} for r in runs["q8_0"]]
        return runs, seconds

    monkeypatch.setattr(job, "gate_runs", broken_q8)
    base, adapter, problems = tiny
    out = tmp_path / "student.gguf"
    result = CliRunner().invoke(main, ["export", "--base", str(base), "--adapter", str(adapter), "--quant", "q8_0",
                                       "--out", str(out), "--gate-problems", str(problems), "--max-tokens", "2"])
    assert result.exit_code == 2 and "q8_0: agreement 0.0%" in result.output, result.output
    report = orjson.loads((tmp_path / "student.export.json").read_bytes())
    assert report["gate"]["passed"] is False and "FAILED" in (tmp_path / "student.export.md").read_text()
