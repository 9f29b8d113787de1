"""`k1 lrl run` end to end in-process: the default flags run the whole flow (models replaced by the
rule-based test double), bad flags are one line and exit 2."""
from __future__ import annotations

import orjson
from click.testing import CliRunner

import lrl.model_pool
from cli import main
from tests.lrl.rules_llm import RulesLLM


def test_default_run_completes_and_prints_the_report(tmp_path, monkeypatch):
    built = []
    monkeypatch.setattr(lrl.model_pool, "build_llm", lambda spec, options: built.append(str(spec)) or RulesLLM())
    result = CliRunner().invoke(main, ["lrl", "run", "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert sorted(built) == ["llamacpp:qwen0.5b", "llamacpp:qwen1.5b"]  # the larger teacher, the smaller student
    assert "| 0 | Student baseline | llamacpp:qwen0.5b |" in result.output
    assert "| 1 | Teacher baseline | llamacpp:qwen1.5b |" in result.output
    config = orjson.loads((tmp_path / "run" / "config.json").read_bytes())
    assert config["domain"] == "scheduling" and config["variant"] == "balanced"
    assert (config["lora_steps"], config["lora_epochs"]) == (None, 1.0)  # stage 4's steps follow from the curriculum
    results = orjson.loads((tmp_path / "run" / "results.json").read_bytes())
    assert set(results["stages"]) == {"0", "1", "2", "3", "3b"}
    again = CliRunner().invoke(main, ["lrl", "run", "--out", str(tmp_path / "run"), "--offline"])
    assert again.exit_code == 0, again.output
    assert len(built) == 2  # everything replayed from the cache: no model loaded


def test_review_without_a_terminal_is_refused(tmp_path):
    result = CliRunner().invoke(main, ["lrl", "run", "--review", "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert result.output.strip() == ("k1: error: --review needs an interactive terminal, and standard input "
                                     "is not one; run without --review")
    assert not (tmp_path / "run").exists()


def test_bad_flags_are_one_line(tmp_path):
    for args, message in [(["--n-test", "0"], "--n-test must be a positive integer"),
                          (["--stages", "1,9"], "--stages must be a comma list"),
                          (["--teacher", "gpt:x"], "bad model spec 'gpt:x'"),
                          (["--domain", "chess"], "unknown domain 'chess'"),
                          (["--budget-usd", "-1"], "--budget-usd must be a non-negative number"),
                          (["--lora-steps", "5", "--lora-epochs", "2"], "give --lora-steps or --lora-epochs, not both"),
                          (["--lora-epochs", "0"], "--lora-epochs must be a positive number"),
                          (["--lora-steps", "0"], "--lora-steps must be a positive integer"),
                          (["--teacher-items", "0"], "--teacher-items must be a positive integer"),
                          (["--strategy", str(tmp_path / "absent.md")], "absent.md: no such strategy file")]:
        result = CliRunner().invoke(main, ["lrl", "run", "--out", str(tmp_path / "r"), *args])
        assert result.exit_code == 2 and message in result.output, (args, result.output)
        assert len(result.output.strip().splitlines()) == 1


def test_the_readme_bar_command_parses_into_its_run_config(tmp_path, monkeypatch):
    import lrl.pipeline

    seen = []
    monkeypatch.setattr(lrl.pipeline, "run", lambda config, **_: seen.append(config))
    (tmp_path / "runs" / "bar-balanced").mkdir(parents=True)
    (tmp_path / "runs" / "bar-balanced" / "report.md").write_text("report")
    args = ("--teacher qwen0.5b --student qwen0.5b --domain scheduling --variant balanced --n-train 100 --n-val 50 "
            "--n-test 1000 --stages all --curriculum-size 400 --teacher-fraction 0.5 --student-prompts both "
            "--lora-steps 150 --lora-rank 8 --lora-seq-len 1024 --export-quant q4_k_m --gate-items 200 "
            f"--solve-max-tokens 320 --threads 1 --out {tmp_path}/runs/bar-balanced").split()
    result = CliRunner().invoke(main, ["lrl", "run", *args])
    assert result.exit_code == 0, result.output
    (config,) = seen
    assert (config.n_test, config.gate_items, config.solve_max_tokens, config.lora_seq_len, config.student_prompts,
            config.stages[-2:], config.n_threads) == (1000, 200, 320, 1024, "both", ("4", "4b"), 1)
    bad = CliRunner().invoke(main, ["lrl", "run", "--out", str(tmp_path / "r"), "--student-prompts", "mixed"])
    assert bad.exit_code == 2 and "--student-prompts" in bad.output


def test_the_stages_help_lists_every_stage_and_the_default_run():
    from lrl.stages import stage_ids

    text = " ".join(CliRunner().invoke(main, ["lrl", "run", "--help"]).output.split())
    assert f"({','.join(stage_ids())};" in text and f"'default' = {','.join(stage_ids(default_only=True))};" in text
