"""Compute backends found by name, and thread configuration."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from backends.compute import BACKENDS, load_compute
from backends.threads import configure_threads
from k1core.errors import UserError
from k1core.gpt import BaselineGPT, GPTConfig
from k1core.optim import AdamWConfig

ROOT = Path(__file__).resolve().parents[2]


def test_every_module_in_the_folder_is_a_backend_and_numpy_comes_first():
    files = {p.stem for p in (ROOT / "backends" / "compute").glob("*.py")} - {"__init__"}
    assert set(BACKENDS) == files and BACKENDS[0] == "numpy" and {"numba", "jax"} <= files


def test_unknown_backend_is_a_user_error_naming_the_choices():
    with pytest.raises(UserError, match="numpy, jax, numba"):
        load_compute("cuda")


def test_numpy_backend_is_the_reference_model():
    model = load_compute("numpy").build_gpt(GPTConfig(d_model=16, n_heads=2, n_layers=1, context=8), AdamWConfig(), 0)
    assert type(model) is BaselineGPT and model.k.name == "numpy"


def test_the_numpy_core_imports_nothing_from_backends():
    code = "import sys, k1core.train, k1core.generate, k1core.ablation; " \
           "print(sorted(m for m in sys.modules if m.split('.')[0] == 'backends'))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


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
