"""Calibrated speeds: kept per machine, read back for the pre-run estimate, shipped figures otherwise."""
import pytest

from backends import local_speed
from backends.llamacpp_speed import PROMPT_CHUNK, median_speed, token_speed
from backends.local_speed import MEASURED, TokenSpeed, local_speed as speed_of, store_speed
from lrl.run_estimate import local_time_lines

COST = {1: {"generation_tok_per_s": 40.0, "prompt_tok_per_s": 40.0},
        8: {"generation_tok_per_s": 68.0, "prompt_tok_per_s": 80.0},
        PROMPT_CHUNK: {"prompt_tok_per_s": 118.0}}


@pytest.fixture
def speed_path(tmp_path, monkeypatch):
    path = tmp_path / "k1" / "speed.json"
    monkeypatch.setattr(local_speed, "speed_file", lambda: path)
    return path


def test_token_speed_reads_prompt_generation_and_batch_speedup_from_decode_costs():
    speed = token_speed(COST, 3.21, "here")
    assert (speed.prompt_tok_s, speed.generation_tok_s, speed.load_seconds) == (118.0, 40.0, 3.2)
    assert speed.batch_speedup == ((1, 1.0), (8, 1.7)) and speed.speedup(16) == 1.7
    assert speed.source == "here"


def test_without_calibration_the_shipped_figures_are_used(speed_path):
    assert speed_of("qwen0.5b") == MEASURED["qwen0.5b"]
    assert speed_of("claude-x") is None


def test_a_calibrated_speed_is_read_back_on_this_machine_only(speed_path, monkeypatch):
    mine = token_speed(COST, 4.0, "measured here")
    store_speed("qwen0.5b", mine)
    assert speed_path.exists() and speed_of("qwen0.5b") == mine
    assert speed_of("qwen1.5b") == MEASURED["qwen1.5b"]  # calibrated models only
    monkeypatch.setattr(local_speed, "machine_key", lambda: "another CPU, 64 cores")
    assert speed_of("qwen0.5b") == MEASURED["qwen0.5b"]


@pytest.mark.parametrize("content", [b"{not json", b'{"%s": {"qwen0.5b": {"prompt_tok_s": 1}}}'])
def test_a_damaged_or_foreign_speed_file_falls_back_to_the_shipped_figures(speed_path, content):
    speed_path.parent.mkdir(parents=True)
    speed_path.write_bytes(content.replace(b"%s", local_speed.machine_key().encode()) if b"%s" in content else content)
    assert speed_of("qwen0.5b") == MEASURED["qwen0.5b"]


def test_the_estimate_names_where_its_speeds_come_from(speed_path):
    store_speed("qwen0.5b", token_speed(COST, 4.0, "measured on this machine"))
    plan = [{"stage": "0", "model": m, "calls": 1, "local_seconds": 1.0} for m in ("qwen0.5b", "qwen1.5b")]
    _, assumptions = local_time_lines(plan, parallel=8)
    assert "generation 1.7x / 3.3x that with 8 sequences" in assumptions
    assert "qwen0.5b: measured on this machine" in assumptions and TokenSpeed.source in assumptions


def test_calibration_keeps_each_figures_median_over_rounds():
    rounds = [TokenSpeed(100.0, 30.0, 4.0, ((1, 1.0), (8, 1.8))), TokenSpeed(40.0, 10.0, 9.0, ((1, 1.0), (8, 1.2))),
              TokenSpeed(110.0, 33.0, 5.0, ((1, 1.0), (8, 1.7)))]
    assert median_speed(rounds) == TokenSpeed(100.0, 30.0, 5.0, ((1, 1.0), (8, 1.7)))
