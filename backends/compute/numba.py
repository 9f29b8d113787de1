"""Numba: the core's models on Numba kernels (LayerNorm, GELU, softmax, cross-entropy, embedding
scatter-add, one-pass AdamW); the matrix products stay NumPy + BLAS."""
from backends.numba_kernels import NUMBA_KERNELS
from k1core.compute import kernel_compute

COMPUTE = kernel_compute(NUMBA_KERNELS)
