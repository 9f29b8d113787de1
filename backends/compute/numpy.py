"""The NumPy reference backend (k1core's own models and kernels)."""
from k1core.compute import NUMPY as COMPUTE

__all__ = ["COMPUTE"]
