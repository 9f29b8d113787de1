"""Compute backends found by name: backends/compute/<name>.py defines COMPUTE (a k1core.compute.Compute).

Adding a backend is adding one file here. Each module imports its library (numba, jax) itself,
so a backend's extra is needed only when that backend is chosen.
"""
from __future__ import annotations

import importlib
from pathlib import Path

from k1core.compute import Compute
from k1core.errors import UserError

_HERE = Path(__file__).parent
# the NumPy reference first, then every other module in this folder
BACKENDS = ("numpy", *sorted(p.stem for p in _HERE.glob("*.py") if p.stem not in ("__init__", "numpy")))


def load_compute(name: str) -> Compute:
    """The backend called `name`, or a UserError listing the valid ones."""
    if name not in BACKENDS:
        raise UserError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    return importlib.import_module(f"{__name__}.{name}").COMPUTE
