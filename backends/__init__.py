"""Optional backends: compute kernels (numba, jax) and LLM runtimes (anthropic, llama.cpp, openai, mlx)."""
