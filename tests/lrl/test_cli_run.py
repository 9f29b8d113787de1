"""`k1 lrl run` end to end in-process: the default flags run the whole flow (models replaced by the
scripted test double), bad flags are one line and exit 2."""
from __future__ import annotations

import orjson
from click.testing import CliRunner

import lrl.model_pool
from cli import main
from scripted_llm import ScriptedLLM


def test_default_run_completes_and_prints_the_report(tmp_path, monkeypatch):
    built = []
    monkeypatch.setattr(lrl.model_pool, "build_llm", lambda spec, options: built.append(str(spec)) or ScriptedLLM())
    result = CliRunner().invoke(main, ["lrl", "run", "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert built == ["llamacpp:qwen0.5b"]  # teacher and student share one loaded model
    assert "| 0 | Student baseline | llamacpp:qwen0.5b |" in result.output
    config = orjson.loads((tmp_path / "run" / "config.json").read_bytes())
    assert config["domain"] == "scheduling" and config["variant"] == "balanced"
    results = orjson.loads((tmp_path / "run" / "results.json").read_bytes())
    assert set(results["stages"]) == {"0", "1", "2", "3", "3b"}
    again = CliRunner().invoke(main, ["lrl", "run", "--out", str(tmp_path / "run"), "--offline"])
    assert again.exit_code == 0, again.output
    assert built == ["llamacpp:qwen0.5b"]  # everything replayed from the cache: no model loaded


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
                          (["--budget-usd", "-1"], "--budget-usd must be a non-negative number")]:
        result = CliRunner().invoke(main, ["lrl", "run", "--out", str(tmp_path / "r"), *args])
        assert result.exit_code == 2 and message in result.output, (args, result.output)
        assert len(result.output.strip().splitlines()) == 1
