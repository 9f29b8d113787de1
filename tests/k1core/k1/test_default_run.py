"""K-1 through the `k1 train` harness: what its results report, and the required result on the default run."""
import importlib.util
import io

import pytest

from k1core.config import make_config
from k1core.train import train

EVENT_FIELDS = {"step", "type", "val_before", "val_after", "kept"}


def train_k1(tmp_path, **settings) -> dict:
    cfg = make_config({"model": "k1", "out": str(tmp_path), "checkpoint_interval": 0, **settings})
    return train(cfg, log=io.StringIO())["models"]["k1"]


def test_results_report_what_the_comparison_needs(tmp_path):
    r = train_k1(tmp_path, steps=30, batch_size=4, context=16, d_model=32, n_heads=2,
                 eval_interval=10, eval_batches=2, sample_length=10,
                 k1={"plasticity": True, "reorganize_patience": 1})
    stats = r["stats"]
    assert 0 < stats["params_updated_fraction"] < 1  # top-K credit: only some agents move
    assert 0 < stats["traffic_fraction"] <= 1 and len(stats["usage_per_agent"]) == stats["agents"]
    structural = [e for e in r["events"]["list"] if e["type"] in ("grow", "prune", "merge", "reorganize")]
    assert structural and all(EVENT_FIELDS <= set(e) for e in structural)
    if importlib.util.find_spec("matplotlib"):  # the plot extra
        assert (tmp_path / "k1_structure.png").is_file()


@pytest.mark.slow
def test_default_run_reshapes_itself_on_evidence(tmp_path):
    """`k1 train --model k1 --k1 plasticity=true controller=true`: the tree grows and reorganizes, no diagnostic fires on
    probe noise, no prune is forced by the size cap, and >= 90% of agents get traffic."""
    r = train_k1(tmp_path, k1={"plasticity": True, "controller": True})
    counts = r["events"]["counts"]
    assert counts.get("grow", 0) >= 1 and counts.get("reorganize", 0) >= 1, counts
    diagnostics = [e for e in r["events"]["list"] if e["type"] == "diagnostic"]
    assert sum(e["kind"] == "instability" for e in diagnostics) <= 1
    assert not [e for e in r["events"]["list"] if e["type"] == "prune" and e.get("forced")]
    assert r["stats"]["traffic_fraction"] >= 0.9
