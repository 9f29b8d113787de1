"""The backend benchmark runs the GPT and K-1 slots end to end on tiny sizes."""
import numpy as np
import pytest

from bench import bench_backends as bb
from k1core.gpt import BaselineGPT, GPTConfig

TINY_GPT = dict(d_model=16, n_layers=1, n_heads=2, context=8)
TINY_K1 = dict(d_model=16, n_heads=2, d_hidden=12, tree_levels=2, branching=2, capacity=8)


def test_tiny_run_times_gpt_and_k1_and_reports_the_ratio():
    result = bb.bench(["gpt", "k1"], ["numpy"], rounds=1, steps=1, gen_tokens=2, gpt=TINY_GPT, batch=2,
                      k1_overrides=TINY_K1)
    rows = result["rows"]
    assert set(rows) == {"gpt/numpy", "k1/numpy"} and not result["unavailable"]
    for r in rows.values():
        assert r["train_ms_min"] <= r["train_ms_median"] and r["train_tokens_per_s"] > 0 and r["gen_tokens_per_s"] > 0
    assert rows["k1/numpy"]["params"] == bb.build_k1_for_bench("numpy", 8, 2, TINY_K1).param_count()
    assert rows["gpt/numpy"]["params"] == BaselineGPT(GPTConfig(**TINY_GPT)).params.size
    ratio = result["ratios"]["k1_over_gpt"]
    assert ratio["numpy"] == pytest.approx(rows["k1/numpy"]["train_tokens_per_s"] / rows["gpt/numpy"]["train_tokens_per_s"])
    assert ratio["fastest"]["k1"] == "k1/numpy"
    bb._print(result)


def test_a_backend_whose_build_raises_is_reported_unavailable(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no K-1 on this backend yet")
    monkeypatch.setattr(bb, "build_k1_for_bench", broken)
    result = bb.bench(["gpt", "k1"], ["numpy"], rounds=1, steps=1, gen_tokens=2, gpt=TINY_GPT, batch=2,
                      k1_overrides=TINY_K1)
    assert set(result["rows"]) == {"gpt/numpy"}
    assert result["unavailable"] == {"k1/numpy": "RuntimeError: no K-1 on this backend yet"}
    assert result["ratios"]["k1_over_gpt"] == {}


def test_ratios_pick_the_fastest_of_each_model():
    row = lambda ms: {"train_ms_median": ms, "train_ms_min": ms, "train_tokens_per_s": 1000 / ms, "gen_tokens_per_s": 1.0}
    rows = {"gpt/numpy": row(50), "gpt/torch": row(40), "k1/numpy": row(20), "k1/numba": row(10)}
    out = bb.ratios(rows)
    assert out["k1_over_gpt"]["numpy"] == pytest.approx(2.5)
    assert out["k1_over_gpt"]["fastest"] == {"k1": "k1/numba", "gpt": "gpt/torch", "ratio": pytest.approx(4.0)}
    assert out["vs_torch_gpt"]["gpt/numpy"]["train"] == pytest.approx(0.8)
    assert np.isclose(out["vs_torch_gpt"]["k1/numba"]["train"], 4.0)


def test_ratios_compare_with_the_faster_torch_gpt():
    row = lambda ms: {"train_ms_median": ms, "train_ms_min": ms, "train_tokens_per_s": 1000 / ms, "gen_tokens_per_s": 1.0}
    out = bb.ratios({"gpt/torch": row(40), "gpt/torch-compile": row(30), "gpt/numba": row(30)})
    assert out["vs_torch_gpt"]["gpt/numba"]["train"] == pytest.approx(1.0)
