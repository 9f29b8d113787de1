import sys

import pytest
from click.testing import CliRunner

from cli import main


@pytest.mark.skipif(sys.platform == "darwin", reason="macOS caches live in ~/Library/Caches, not XDG_CACHE_HOME")
def test_models_lists_every_alias_with_its_state(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    result = CliRunner().invoke(main, ["models"])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert [line.split()[0] for line in lines] == ["qwen0.5b", "qwen1.5b", "gemma270m"]
    assert all(("not assembled" in line or "parts missing" in line) and str(tmp_path) in line for line in lines)


@pytest.mark.skipif(sys.platform == "darwin", reason="macOS caches live in ~/Library/Caches, not XDG_CACHE_HOME")
def test_calibrate_without_an_assembled_model_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    result = CliRunner().invoke(main, ["models", "--calibrate"])
    assert result.exit_code == 2 and "k1 models --assemble" in result.output
