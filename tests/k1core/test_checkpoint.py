import numpy as np
import pytest

from k1core.checkpoint import load_checkpoint, save_checkpoint
from k1core.errors import UserError


def test_round_trip_keeps_arrays_numbers_and_rng_state(tmp_path):
    rng = np.random.default_rng(5)
    rng.random(3)
    tree = {"model": {"params": {"h0.w": np.arange(6.0, dtype=np.float32).reshape(2, 3)}, "step": 4},
            "rng": rng.bit_generator.state, "run": {"loss": [1.5, 0.1 + 0.2], "done": False, "x": None}}
    path = tmp_path / "ck.npz"
    save_checkpoint(path, tree)
    back = load_checkpoint(path)
    assert back["model"]["params"]["h0.w"].dtype == np.float32
    np.testing.assert_array_equal(back["model"]["params"]["h0.w"], tree["model"]["params"]["h0.w"])
    assert back["run"] == tree["run"] and back["model"]["step"] == 4
    other = np.random.default_rng(0)
    other.bit_generator.state = back["rng"]
    assert other.random() == rng.random()
    assert [p.name for p in tmp_path.iterdir()] == ["ck.npz"]  # no temporary left behind


def test_missing_and_corrupt_checkpoints_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_checkpoint(tmp_path / "none.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(UserError, match="not a readable k1 checkpoint"):
        load_checkpoint(bad)
    bad.write_bytes(b"x\n")  # not even a zip: np.load would fall back to pickle, which is refused
    with pytest.raises(UserError, match="not a readable k1 checkpoint"):
        load_checkpoint(bad)
