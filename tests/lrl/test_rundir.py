from __future__ import annotations

import orjson
import pytest

from k1core.errors import UserError
from lrl.rundir import RunDir, read_json, write_json_atomic


def test_thoughts_survive_a_torn_line_and_are_not_logged_twice(tmp_path):
    run = RunDir(tmp_path)
    run.log_thoughts([{"key": "a", "response": "1"}])
    with open(run.thoughts_path, "ab") as f:
        f.write(b'{"key": "b", "resp')  # a kill in the middle of a write
    run = RunDir(tmp_path)
    run.log_thoughts([{"key": "a", "response": "again"}, {"key": "b", "response": "2"}])
    lines = run.thoughts_path.read_bytes().splitlines()
    assert [orjson.loads(line) for line in lines if line.endswith(b"}")] == [
        {"key": "a", "response": "1"}, {"key": "b", "response": "2"}]


def test_json_is_replaced_whole_and_bad_json_is_one_clear_error(tmp_path):
    write_json_atomic(tmp_path / "x" / "s.json", {"b": 1, "a": [1, 2]})
    assert read_json(tmp_path / "x" / "s.json") == {"a": [1, 2], "b": 1}
    assert [p.name for p in (tmp_path / "x").iterdir()] == ["s.json"]
    assert read_json(tmp_path / "missing.json", default={}) == {}
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(UserError, match="bad.json is not valid JSON"):
        read_json(tmp_path / "bad.json")


def test_a_run_directory_belongs_to_one_configuration(tmp_path):
    RunDir(tmp_path / "r").bind_config({"seed": 0, "n_test": 3})
    RunDir(tmp_path / "r").bind_config({"seed": 0, "n_test": 3})
    with pytest.raises(UserError, match=r"different configuration \(seed\)"):
        RunDir(tmp_path / "r").bind_config({"seed": 1, "n_test": 3})
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match="not a directory"):
        RunDir(tmp_path / "file")
