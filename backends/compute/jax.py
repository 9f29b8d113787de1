"""JAX/XLA: each model's training step compiled as one program (backends/jax_gpt.py, jax_k1.py)."""
from backends.jax_gpt import JaxGPT
from backends.jax_k1 import JaxK1
from k1core.compute import Compute

COMPUTE = Compute("jax", JaxGPT, JaxK1)
