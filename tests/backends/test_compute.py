"""Backend selection, agent grouping and shape buckets, and thread configuration."""
import os
import sys

import numpy as np
import pytest

from backends.compute import build_gpt
from backends.threads import configure_threads
from k1core.errors import UserError
from k1core.gpt import BaselineGPT, GPTConfig


def test_unknown_backend_is_a_user_error_naming_the_choices():
    with pytest.raises(UserError, match="numpy, numba, jax"):
        build_gpt(GPTConfig(), "cuda")


def test_numpy_backend_is_the_reference_model():
    model = build_gpt(GPTConfig(d_model=16, n_heads=2, n_layers=1, context=8), "numpy")
    assert type(model) is BaselineGPT and model.k.name == "numpy"




def test_configure_threads_sets_every_library_alike(monkeypatch):
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS", "XLA_FLAGS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/tmp/x intra_op_parallelism_threads=9")
    numba = sys.modules.get("numba")
    numba_before = numba.get_num_threads() if numba else None
    assert configure_threads(1) == 1
    assert os.environ["OPENBLAS_NUM_THREADS"] == os.environ["OMP_NUM_THREADS"] == "1"
    if numba:  # already running: its pool is resized instead of its environment variable
        assert numba.get_num_threads() == 1
        numba.set_num_threads(numba_before)
    else:
        assert os.environ["NUMBA_NUM_THREADS"] == "1"
    flags = os.environ["XLA_FLAGS"].split()
    assert flags == ["--xla_dump_to=/tmp/x", "--xla_cpu_multi_thread_eigen=false"]  # XLA aborts on unknown flags
    with pytest.raises(ValueError):
        configure_threads(0)
