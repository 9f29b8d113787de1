"""The ablation runner on a tiny config: every row trains per seed, at the GPT's time, and resumes."""
import io

import orjson
import pytest

from k1core.ablation import VARIANTS, run_ablation, run_dir

TINY = dict(steps=20, d_model=16, n_layers=1, n_heads=2, context=8, batch_size=2, warmup_steps=2,
            eval_interval=5, eval_batches=1, checkpoint_interval=0, sample_length=0, clock="cpu")


def test_every_row_runs_per_seed_and_the_table_has_cis(tmp_path):
    rows = ("k1", "k1, frozen tree", "k1, no tree", "gpt")
    summary = run_ablation(TINY, [1, 2], tmp_path, io.StringIO(), rows=rows)
    assert set(summary["rows"]) == set(rows)
    k1 = summary["rows"]["k1"]
    assert k1["final"]["n"] == 2 and k1["final"]["lo"] <= k1["final"]["mean"] <= k1["final"]["hi"]
    assert summary["rows"]["gpt"]["steps_trained"]["mean"] == 20
    gpt_val = summary["rows"]["gpt"]["seeds"]["1"]
    assert gpt_val["train_s"] == pytest.approx(gpt_val["final"]) == gpt_val["steps"]  # its own budget: its end
    assert k1["minus_gpt"]["steps"]["n"] == 2 and "minus_k1" in summary["rows"]["k1, frozen tree"]
    frozen = (run_dir(tmp_path, 1, "k1, frozen tree") / "results.json").read_bytes()
    assert b'"plasticity": false' in frozen.replace(b'"plasticity":false', b'"plasticity": false')
    plan = summary["equal_time"]["1"]  # one calibration per seed, kept beside its runs
    assert plan == orjson.loads((tmp_path / "seed1" / "equal_time.json").read_bytes())
    assert set(plan["models"]) == set(rows)
    for row in rows:
        result = orjson.loads((run_dir(tmp_path, 1, row) / "results.json").read_bytes())["models"]
        trained = next(iter(result.values()))
        assert trained["steps"] == plan["models"][row]["steps"] or trained["stopped_early"]
        assert trained["budget"]["equal_time"] == plan["models"][row]
    table = (tmp_path / "ablation.md").read_text()
    assert "| k1, no tree | 2 |" in table and "[" in table
    assert "| k1 | " in table.split("cost per step / GPT's")[1]  # each row's measured cost ratio
    before = (run_dir(tmp_path, 2, "k1") / "results.json").stat().st_mtime_ns
    run_ablation(TINY, [1, 2], tmp_path, io.StringIO(), rows=rows)  # finished runs are read back
    assert (run_dir(tmp_path, 2, "k1") / "results.json").stat().st_mtime_ns == before
    assert set(VARIANTS) >= set(rows)
