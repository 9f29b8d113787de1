"""One thread count for every compute library, set once at the CLI or benchmark edge.

NumPy's BLAS (OpenBLAS/MKL/Accelerate), OpenMP, Numba's pool, XLA's Eigen pool and PyTorch each
default to "all cores". When two of them run in one process they oversubscribe the cores and a
step stalls on thread hand-offs, so they all get the same count here. BLAS and XLA read their
settings when first loaded: call `configure_threads` before numpy/jax are imported where possible
(libraries already loaded are adjusted through their own API when they have one).
"""
from __future__ import annotations

import os
import sys

_BLAS_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
              "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def default_threads() -> int:
    """Cores this process may run on (the affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def default_parallel() -> int:
    """Requests a local model decodes at once by default: 8 up to 8 cores, 16 beyond.

    On 2 cores llama.cpp's aggregate generation speed (Qwen2.5 0.5B) at 8 sequences is 1.7-3.3x that
    of one, at 16 2.1-4.2x, depending on the CPU (docs/local-inference.md); more cores reach the point
    where weights stop dominating later.
    """
    return 8 if default_threads() <= 8 else 16


def configure_threads(n_threads: int | None = None) -> int:
    """Give BLAS, OpenMP, Numba, XLA and (if loaded) PyTorch the same thread count; returns it."""
    n = default_threads() if n_threads is None else int(n_threads)
    if n < 1:
        raise ValueError(f"thread count must be >= 1, got {n}")
    for var in _BLAS_VARS:
        os.environ[var] = str(n)
    if "numba" not in sys.modules:  # once numba has started its pool, changing the variable is an error
        os.environ["NUMBA_NUM_THREADS"] = str(n)
    # XLA CPU has no thread-count flag: its Eigen pool spans the process's CPU affinity. One thread
    # switches the pool off; otherwise it uses every allowed core (n in the usual n = all cores).
    # XLA aborts on unknown flags, so only this one is ever written.
    xla = [f for f in os.environ.get("XLA_FLAGS", "").split()
           if not f.startswith(("--xla_cpu_multi_thread_eigen", "intra_op_parallelism_threads"))]
    xla.append("--xla_cpu_multi_thread_eigen=" + ("true" if n > 1 else "false"))
    os.environ["XLA_FLAGS"] = " ".join(xla)
    if "numba" in sys.modules:  # pool already sized from the old env: shrink it (cannot grow past it)
        numba = sys.modules["numba"]
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        torch.set_num_threads(n)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:  # only settable before torch's first parallel work
            pass
    return n
