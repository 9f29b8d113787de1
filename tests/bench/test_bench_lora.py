"""bench_lora's bfloat16 variant stores only the frozen matrices compactly."""
import numpy as np
import pytest

from bench.bench_lora import FROZEN_MATRICES, frozen_as


def test_frozen_as_converts_matrices_and_keeps_norms_and_biases_float32():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    rng = np.random.default_rng(0)
    layers = {k: rng.standard_normal((2, 4, 6), dtype=np.float32) for k in FROZEN_MATRICES}
    layers.update(attn_norm=np.ones((2, 4), np.float32), bqkv=rng.standard_normal((2, 6), dtype=np.float32))
    head = {"embed": rng.standard_normal((5, 4), dtype=np.float32), "norm": np.ones(4, np.float32)}
    head["out"] = head["embed"]
    got_layers, got_head = frozen_as(layers, head, ml_dtypes.bfloat16)
    assert {k for k, v in got_layers.items() if v.dtype == ml_dtypes.bfloat16} == set(FROZEN_MATRICES)
    assert got_layers["attn_norm"].dtype == got_layers["bqkv"].dtype == np.float32
    assert got_head["embed"].dtype == np.float32 and got_head["out"].dtype == ml_dtypes.bfloat16
    np.testing.assert_allclose(got_head["out"].astype(np.float32), head["embed"], rtol=2 ** -8)
