from pathlib import Path

import orjson
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from cli import main

TINY = ["--model=gpt", "--steps=6", "--d-model=16", "--n-layers=1", "--n-heads=2", "--context=8", "--batch-size=2",
        "--warmup-steps=1", "--eval-interval=3", "--eval-batches=1", "--sample-length=5"]


def test_help_lists_commands_and_flags():
    runner = CliRunner()
    top = runner.invoke(main, ["--help"])
    assert top.exit_code == 0 and "train" in top.output and "generate" in top.output
    sub = runner.invoke(main, ["train", "--help"])
    assert sub.exit_code == 0 and "--d-model" in sub.output and "--resume" in sub.output
    assert runner.invoke(main, ["--version"]).output.startswith("k1, version")


def test_bad_config_key_is_one_line_and_exit_2(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("stepz = 3\n")
    res = CliRunner().invoke(main, ["train", "--config", str(cfg)])
    assert res.exit_code == 2
    assert res.output.strip() == "k1: error: unknown config key: stepz"


def test_out_of_range_flag_and_missing_model_are_one_line_errors(tmp_path):
    res = CliRunner().invoke(main, ["train", "--steps=0", f"--out={tmp_path}"])
    assert res.exit_code == 2 and res.output.strip() == "k1: error: steps must be >= 1, got 0"
    res = CliRunner().invoke(main, ["train", "--model=k2", f"--out={tmp_path}"])
    assert res.exit_code == 2 and "model must be one of" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(main, ["train", "--backend=cuda", f"--out={tmp_path}"])
    assert res.exit_code == 2 and "backend" in res.output and "Traceback" not in res.output


def test_tiny_run_writes_results_then_generates(tmp_path):
    runner = CliRunner()
    res = runner.invoke(main, ["train", *TINY, f"--out={tmp_path}"])
    assert res.exit_code == 0, res.output
    results = orjson.loads((tmp_path / "results.json").read_bytes())
    assert results["models"]["gpt"]["steps"] == 6 and "val bpb" in res.output
    gen = [ "generate", f"--checkpoint={tmp_path}", "--prompt=ROMEO:", "--max-new-tokens=12", "--seed=3"]
    a, b = runner.invoke(main, gen), runner.invoke(main, gen)
    assert a.exit_code == 0 and a.output == b.output and a.output.startswith("ROMEO:")
    missing = runner.invoke(main, ["generate", f"--checkpoint={tmp_path / 'nope'}"])
    assert missing.exit_code == 2 and "no checkpoint" in missing.output


def test_resume_reuses_the_saved_config(tmp_path):
    runner = CliRunner()
    assert runner.invoke(main, ["train", *TINY, f"--out={tmp_path}"]).exit_code == 0
    res = runner.invoke(main, ["train", "--resume", f"--out={tmp_path}"])
    assert res.exit_code == 0 and "already finished" in res.output


def _one_line_error(res, *fragments):
    """A fixable mistake: exit 2, one line starting 'k1: error:', no traceback."""
    lines = res.output.strip().splitlines()
    assert res.exit_code == 2 and len(lines) == 1 and lines[0].startswith("k1: error:"), res.output
    assert all(f in lines[0] for f in fragments), lines[0]


def test_out_that_is_a_file_is_one_line(tmp_path):
    target = tmp_path / "results.txt"
    target.write_text("keep me")
    _one_line_error(CliRunner().invoke(main, ["train", *TINY, f"--out={target}"]), "is a file")
    assert target.read_text() == "keep me"


def test_resume_with_nothing_to_resume_says_so(tmp_path):
    runner = CliRunner()
    _one_line_error(runner.invoke(main, ["train", "--resume", f"--out={tmp_path / 'missing'}"]), "nothing to resume")
    _one_line_error(runner.invoke(main, ["train", "--resume", f"--out={tmp_path}"]), "nothing to resume")
    assert not (tmp_path / "missing").exists() and not list(tmp_path.iterdir())


def test_resume_with_a_corrupt_or_foreign_config_is_one_line(tmp_path):
    for text in ("{not json", "[1, 2]", '{"stepz": 3}', ""):
        (tmp_path / "config.json").write_text(text)
        res = CliRunner().invoke(main, ["train", "--resume", f"--out={tmp_path}"])
        _one_line_error(res, "config")
        assert (tmp_path / "config.json").read_text() == text  # left as it was for the user to inspect


def test_a_moved_run_folder_resumes(tmp_path):
    runner = CliRunner()
    first = tmp_path / "first"
    assert runner.invoke(main, ["train", *TINY, f"--out={first}"]).exit_code == 0
    moved = first.rename(tmp_path / "moved")
    res = runner.invoke(main, ["train", "--resume", f"--out={moved}"])
    assert res.exit_code == 0 and "already finished" in res.output, res.output
    assert not first.exists()
    assert orjson.loads((moved / "config.json").read_bytes())["out"] == str(moved)


def _not_a_config_object(data: bytes) -> bool:
    try:
        return not isinstance(orjson.loads(data), dict)
    except orjson.JSONDecodeError:
        return True


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=200).filter(_not_a_config_object)
       | st.dictionaries(st.text(min_size=1, max_size=8).map(lambda k: "x_" + k), st.integers(-9, 9), min_size=1)
       .map(orjson.dumps))
def test_fuzz_a_damaged_config_json_is_one_line_on_resume(data):
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "config.json").write_bytes(data)
        _one_line_error(CliRunner().invoke(main, ["train", "--resume", f"--out={tmp}"]))


@settings(max_examples=20, deadline=None)
@given(st.lists(st.sampled_from(["file.txt", "sub", "x"]), max_size=3).map(lambda rest: ["file.txt", *rest]))
def test_fuzz_an_out_path_through_a_file_is_one_line(parts):
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "file.txt").write_text("keep me")
        _one_line_error(CliRunner().invoke(main, ["train", *TINY, f"--out={Path(tmp).joinpath(*parts)}"]), "is a file")
        assert (Path(tmp) / "file.txt").read_text() == "keep me"


def test_k1_settings_flag_reaches_the_saved_config_and_errors_name_the_key(tmp_path):
    tiny_k1 = [a for a in TINY if not a.startswith(("--model", "--n-layers"))] + ["--model=k1", "--budget=steps"]
    res = CliRunner().invoke(main, ["train", *tiny_k1, "--k1", "top_k_agents=3", "--k1", "d_hidden=8",
                                    f"--out={tmp_path}"])
    assert res.exit_code == 0, res.output
    saved = orjson.loads((tmp_path / "config.json").read_bytes())
    assert saved["k1"] == {"top_k_agents": 3, "d_hidden": 8}
    bad = CliRunner().invoke(main, ["train", *tiny_k1, "--k1", "top_k_agents=0", f"--out={tmp_path / 'b'}"])
    assert bad.exit_code == 2 and "top_k_agents" in bad.output and "Traceback" not in bad.output


def test_common_k1_flags_join_the_k1_table_over_the_config_file(tmp_path):
    tiny_k1 = [a for a in TINY if not a.startswith(("--model", "--n-layers"))] + ["--model=k1", "--budget=steps"]
    (tmp_path / "run.toml").write_text("[k1]\ncontroller = true\nd_hidden = 8\n")
    res = CliRunner().invoke(main, ["train", *tiny_k1, f"--config={tmp_path / 'run.toml'}", "--no-controller",
                                    "--plasticity", "--top-k-agents", "3", f"--out={tmp_path / 'out'}"])
    assert res.exit_code == 0, res.output
    saved = orjson.loads((tmp_path / "out" / "config.json").read_bytes())
    assert saved["k1"] == {"controller": False, "d_hidden": 8, "plasticity": True, "top_k_agents": 3}
