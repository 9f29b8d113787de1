"""Per-kernel timing, Numba against the NumPy reference, at the GPT benchmark shapes.

Decides which implementation `backends.numba_kernels.NUMBA_KERNELS` uses for each kernel:
rounds are interleaved (numpy, numba, numpy, ...) so load from other processes hits both alike.
Run: python -m bench.bench_kernels [--threads 2]
"""
from __future__ import annotations

import argparse
import time


def _cases(np, ref, nk, cfg_rows=768, c=128, heads=4, t=64, vocab=256):
    """(name, numpy thunk, numba thunk) at the shapes of one GPT layer / step."""
    from k1core.layers import causal_mask
    from k1core.optim import AdamWConfig
    rng = np.random.default_rng(0)
    f32 = np.float32
    x = rng.normal(size=(cfg_rows, c)).astype(f32)
    gain, bias = np.ones(c, f32), np.zeros(c, f32)
    _, ln_cache = ref.layernorm_forward(x, gain, bias)
    u = rng.normal(size=(cfg_rows, 4 * c)).astype(f32)
    _, gelu_cache = ref.gelu_forward(u)
    scores = rng.normal(size=(cfg_rows // t, heads, t, t)).astype(f32)
    mask = causal_mask(t, f32)
    att = ref.causal_softmax_forward(scores.copy(), mask)
    logits = rng.normal(size=(cfg_rows, vocab)).astype(f32)
    targets = rng.integers(0, vocab, cfg_rows)
    table = np.zeros((vocab, c), f32)
    n_params = 850_000  # about the GPT benchmark model
    p, g = rng.normal(size=n_params).astype(f32), rng.normal(size=n_params).astype(f32)
    m, v, dm = np.zeros_like(p), np.zeros_like(p), np.ones_like(p)
    from k1core.optim import adamw_update
    cfg = AdamWConfig()
    return [
        ("layernorm_forward", lambda: ref.layernorm_forward(x, gain, bias), lambda: nk.layernorm_forward(x, gain, bias)),
        ("layernorm_backward", lambda: ref.layernorm_backward(x, ln_cache, gain), lambda: nk.layernorm_backward(x, ln_cache, gain)),
        ("gelu_forward", lambda: ref.gelu_forward(u), lambda: nk.gelu_forward(u)),
        ("gelu_backward", lambda: ref.gelu_backward(u, gelu_cache), lambda: nk.gelu_backward(u, gelu_cache)),
        ("causal_softmax_forward", lambda: ref.causal_softmax_forward(scores.copy(), mask),
         lambda: nk.causal_softmax_forward(scores.copy(), mask)),
        ("softmax_backward", lambda: ref.softmax_backward(scores.copy(), att), lambda: nk.softmax_backward(scores.copy(), att)),
        ("softmax_xent_forward_backward", lambda: ref.softmax_xent_forward_backward(logits.copy(), targets),
         lambda: nk.softmax_xent_forward_backward(logits.copy(), targets)),
        ("embedding_backward", lambda: ref.embedding_backward(table, targets, x), lambda: nk.embedding_backward(table, targets, x)),
        ("adamw_update", lambda: adamw_update(p, g, m, v, dm, 1e-3, 0.5, 0.5, cfg),
         lambda: nk.adamw_update(p, g, m, v, dm, 1e-3, 0.5, 0.5, cfg)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    from backends.threads import configure_threads
    configure_threads(args.threads)
    import numpy as np
    from k1core import kernels as ref
    from backends import numba_kernels as nk
    print(f"{'kernel':32s} {'numpy us':>9s} {'numba us':>9s} {'speedup':>8s}")
    for name, numpy_fn, numba_fn in _cases(np, ref, nk):
        numba_fn(), numpy_fn()  # warm (compile from cache)
        best = {"numpy": [], "numba": []}
        for _ in range(args.rounds):
            for label, fn in (("numpy", numpy_fn), ("numba", numba_fn)):
                start = time.perf_counter()
                for _ in range(10):
                    fn()
                best[label].append((time.perf_counter() - start) / 10 * 1e6)
        a, b = np.median(best["numpy"]), np.median(best["numba"])
        print(f"{name:32s} {a:9.1f} {b:9.1f} {a / b:7.2f}x")


if __name__ == "__main__":
    main()
