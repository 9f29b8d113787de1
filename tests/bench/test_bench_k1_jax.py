"""The K-1 step benchmark runs end to end: same batches per backend, compile steps left out."""
import pytest

from bench import bench_k1_jax


def test_short_run_reports_every_backend_and_the_host_update_split():
    pytest.importorskip("jax")
    backends = ["numpy", "jax" + bench_k1_jax.HOST_UPDATE]
    result = bench_k1_jax.run(backends, rounds=2, steps=1)
    assert set(result["steps"]) == set(backends)
    for s in result["steps"].values():
        assert 1 <= s["n"] <= 2 and s["min_ms"] <= s["median_ms"] and s["tokens_per_s"] > 0
    assert result["steps"]["numpy"]["speedup_vs_numpy"] == 1.0
    split = result["jax" + bench_k1_jax.HOST_UPDATE]
    assert split["device_ms_median"] > 0 and split["host_ms_median"] > 0
