import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import orjson
import pytest

from k1core import registry
from k1core.checkpoint import load_checkpoint
from k1core.config import make_config
from k1core.errors import UserError
from k1core.gpt_builder import build_gpt
from k1core.train import train

ROOT = Path(__file__).resolve().parents[2]
TINY = dict(model="gpt", steps=12, d_model=16, n_layers=1, n_heads=2, context=8, batch_size=2, warmup_steps=2,
            eval_interval=5, eval_batches=2, checkpoint_interval=5, sample_length=10)


def test_tiny_run_writes_results_in_nats_and_bits(tmp_path):
    res = train(make_config(TINY, {"out": str(tmp_path)}), log=io.StringIO())
    on_disk = orjson.loads((tmp_path / "results.json").read_bytes())
    gpt = on_disk["models"]["gpt"]
    assert on_disk["config"]["steps"] == 12 and gpt["steps"] == 12
    assert set(gpt["loss_nats"]) == {"train", "val", "test"}
    assert gpt["loss_bits_per_byte"]["val"] == pytest.approx(gpt["loss_nats"]["val"] / np.log(2))
    assert gpt["perplexity"]["val"] == pytest.approx(np.exp(gpt["loss_nats"]["val"]))
    assert gpt["history"]["val_step"] == [4, 9, 11] and len(gpt["history"]["train_loss"]) == 12
    assert gpt["tokens_per_s"] > 0 and gpt["stats"]["params"] > 0 and len(gpt["samples"][0]["text"]) > 0
    assert gpt["events"] == {"counts": {}, "list": []}
    assert res["models"]["gpt"]["loss_nats"] == gpt["loss_nats"]


def test_stop_event_ends_training_and_events_are_logged(tmp_path, monkeypatch):
    def build_stopping(cfg, compute):
        model = build_gpt(cfg, compute)
        model.on_step_end = lambda step, probe: (
            [{"step": step, "type": "probe", "n": int(probe()[0].shape[0])}]
            + ([{"step": step, "type": "stop"}] if step == 6 else []))
        return model

    monkeypatch.setitem(registry._BUILDERS, "gpt", build_stopping)
    res = train(make_config(TINY, {"out": str(tmp_path)}), log=io.StringIO())["models"]["gpt"]
    assert res["steps"] == 7 and res["stopped_early"]
    assert res["events"]["counts"] == {"probe": 7, "stop": 1}
    assert res["events"]["list"][0] == {"step": 0, "type": "probe", "n": 2}


def test_missing_model_fails_before_training(tmp_path, monkeypatch):
    monkeypatch.setitem(registry.KNOWN, "k1", "k1core.not_in_this_build")
    monkeypatch.delitem(registry._BUILDERS, "k1", raising=False)
    with pytest.raises(UserError, match="'k1' is not available"):
        train(make_config(TINY, {"out": str(tmp_path), "model": "both"}))
    assert not (tmp_path / "results.json").exists()


def test_resume_with_a_changed_config_is_refused(tmp_path):
    train(make_config(TINY, {"out": str(tmp_path)}), log=io.StringIO())
    with pytest.raises(UserError, match="lr"):
        train(make_config(TINY, {"out": str(tmp_path), "lr": 0.5}), resume=True)


def test_killed_run_resumes_bit_identically(tmp_path):
    cfg = dict(TINY, steps=400, checkpoint_interval=20, eval_interval=50)
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in cfg.items()]
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    cmd = [sys.executable, str(ROOT / "cli.py"), "train", *flags, f"--out={killed}"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = killed / "gpt" / "checkpoint.npz"
    deadline = time.time() + 120
    while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "results.json").exists(), "the run finished before it could be killed"
    assert load_checkpoint(ckpt)["run"]["step"] < 400
    subprocess.run(cmd + ["--resume"], cwd=ROOT, check=True, capture_output=True)
    train(make_config(cfg, {"out": str(whole)}), log=io.StringIO())

    a = orjson.loads((killed / "results.json").read_bytes())["models"]["gpt"]
    b = orjson.loads((whole / "results.json").read_bytes())["models"]["gpt"]
    timing = "val_train_s"  # seconds of training at each validation: wall-clock, never bit-identical
    assert a["history"].pop(timing) and b["history"].pop(timing)
    assert a["history"] == b["history"] and a["loss_nats"] == b["loss_nats"] and a["samples"] == b["samples"]
    pa, pb = load_checkpoint(killed / "gpt/checkpoint.npz"), load_checkpoint(whole / "gpt/checkpoint.npz")
    for name, value in pb["model"]["params"].items():
        np.testing.assert_array_equal(pa["model"]["params"][name], value)
    for moment in ("m", "v"):
        for name, value in pb["model"]["optim"][moment].items():
            np.testing.assert_array_equal(pa["model"]["optim"][moment][name], value)


def test_both_trains_every_model_on_the_same_batches(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(registry._BUILDERS, "k1", build_gpt)  # a second model with the GPT's code
    res = train(make_config(TINY, {"out": str(tmp_path), "model": "both", "budget": "steps"}), log=io.StringIO())
    gpt, k1 = res["models"]["gpt"], res["models"]["k1"]
    assert gpt["history"]["train_loss"] == k1["history"]["train_loss"]  # same seed, same data
    table = capsys.readouterr().out
    assert "\n  gpt " in table and "\n   k1 " in table
    assert (tmp_path / "gpt" / "checkpoint.npz").exists() and (tmp_path / "k1" / "checkpoint.npz").exists()


def test_all_models_train_and_compare_at_equal_steps_time_and_flops(tmp_path, capsys):
    res = train(make_config(TINY, {"out": str(tmp_path), "model": "all", "budget": "steps"}), log=io.StringIO())
    assert list(res["models"]) == ["gpt", "k1", "k1-notree"]
    comparison, gpt = res["comparison"], res["models"]["gpt"]
    assert comparison["reference"] == "gpt" and comparison["steps"]["at"] == 12
    assert comparison["train_s"]["at"] == gpt["train_s"] and comparison["train_flops"]["at"] == gpt["train_flops"]
    for axis in ("steps", "train_s", "train_flops"):
        assert comparison[axis]["val_loss"]["gpt"] == pytest.approx(gpt["history"]["val_loss"][-1])
    k1 = res["models"]["k1"]
    assert comparison["steps"]["val_loss"]["k1"] == pytest.approx(k1["history"]["val_loss"][-1])
    assert 0 < k1["train_flops"] < gpt["train_flops"] * 10 and k1["stats"]["params_updated_fraction"] < 1.0
    assert "val loss at the gpt's" in capsys.readouterr().out


def test_budget_gpt_gives_every_model_its_equal_time_allotment(tmp_path):
    cfg = {"out": str(tmp_path), "model": "all", "steps": 30, "clock": "cpu"}
    (tmp_path / "equal_time.json").write_bytes(b'{"models": {}}')  # a stale plan: a new run measures afresh
    res = train(make_config(TINY, cfg), log=io.StringIO())
    plan = res["equal_time"]
    assert plan == orjson.loads((tmp_path / "equal_time.json").read_bytes())
    assert plan["models"]["gpt"]["steps"] == 30 and plan["models"]["gpt"]["ratio"] == 1.0
    for name in ("gpt", "k1", "k1-notree"):
        r, allotted = res["models"][name], plan["models"][name]
        assert r["budget"]["equal_time"] == allotted and r["budget"]["seconds"] is None
        assert r["steps"] == allotted["steps"] or r["stopped_early"]
        assert allotted["steps"] == max(1, int(30 / allotted["ratio"] + 1e-9))
    for name in ("k1", "k1-notree"):  # equal time is read where each model's allotment ends
        assert res["comparison"]["train_s"]["val_loss"][name] == pytest.approx(
            res["models"][name]["history"]["val_loss"][-1])
    (tmp_path / "k1" / "result.json").unlink()  # as if killed after its last checkpoint
    again = train(make_config(TINY, cfg), resume=True, log=io.StringIO())
    assert again["equal_time"] == plan  # the saved plan, not a new calibration
    assert again["models"]["gpt"] == res["models"]["gpt"]


def test_budget_seconds_stops_a_model_when_its_time_is_spent(tmp_path, monkeypatch):
    import k1core.train as harness

    ticks = iter(range(10**6))
    monkeypatch.setattr(harness, "clock", lambda kind: lambda: float(next(ticks)))  # 1 s per reading
    monkeypatch.setattr(harness, "plan_steps", lambda *a, **k: {"budget_s": 7.0, "pilot_step_ms": 1.0,
                                                                "steps": 1000})
    res = train(make_config(TINY, {"out": str(tmp_path), "budget_seconds": 7.0}), log=io.StringIO())["models"]["gpt"]
    assert res["steps"] == 7 and res["budget"]["out_of_time"] and res["train_s"] == 7.0
    assert res["history"]["val_step"][-1] == 6  # validated where the budget ended
