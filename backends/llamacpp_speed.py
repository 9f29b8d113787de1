"""How fast llama.cpp decodes on this machine: the per-token costs the pre-run estimate needs.

One `llama_decode` call carrying k tokens is timed two ways: k sequences' next tokens with logits
(what batched generation does each step) and k prompt tokens of one sequence (prompt processing).
Where a call of k tokens costs nearly k calls of one, the CPU is compute-bound per token and
batching gains little; where it costs about one call, the weights' memory traffic dominates and
batching pays up to k times. Which of the two a CPU is decides `--parallel`'s value there.
"""
from __future__ import annotations

import statistics
import time
from typing import Callable

from backends.local_speed import TokenSpeed

GENERATION_SIZES = (1, 2, 4, 8, 16, 32)
PROMPT_CHUNK = 128  # prompt tokens per call when timing prompt processing (as n_batch's chunks)


def decode_cost(llama, sizes=GENERATION_SIZES, repeats: int = 5) -> dict[int, dict]:
    """Per k: the fastest of `repeats` llama_decode calls of k sequences' next tokens (at position 0,
    every row's logits) and of k prompt tokens of one sequence (logits for the last), with tokens/s."""
    import llama_cpp as api

    width = max(*sizes, PROMPT_CHUNK)
    params = api.llama_context_params.from_buffer_copy(llama.context_params)  # threads as the Llama's
    params.n_ctx, params.n_batch, params.n_ubatch = 1024, width, width
    params.n_seq_max, params.kv_unified = max(sizes), True
    ctx = api.llama_init_from_model(llama.model, params)
    batch = api.llama_batch_init(width, 0, max(sizes))
    memory = api.llama_get_memory(ctx)
    n_vocab = llama.n_vocab()

    def fastest(k: int, generation: bool) -> float:
        times = []
        for _ in range(repeats + 1):  # the first call warms up
            api.llama_memory_clear(memory, True)
            batch.n_tokens = k
            for i in range(k):
                batch.token[i], batch.pos[i], batch.n_seq_id[i] = (100 + i) % n_vocab, 0 if generation else i, 1
                batch.seq_id[i][0] = i if generation else 0
                batch.logits[i] = generation or i == k - 1
            start = time.perf_counter()
            if api.llama_decode(ctx, batch) != 0:
                raise RuntimeError(f"llama_decode failed on {k} tokens")
            times.append(time.perf_counter() - start)
        return min(times[1:])

    try:
        rows = {}
        for k in sorted(set(sizes) | {PROMPT_CHUNK}):
            row = {}
            if k in sizes:
                row["generation_s"] = fastest(k, True)
                row["generation_tok_per_s"] = k / row["generation_s"]
            row["prompt_s"] = fastest(k, False)
            row["prompt_tok_per_s"] = k / row["prompt_s"]
            rows[k] = row
        return rows
    finally:
        api.llama_batch_free(batch)
        api.llama_free(ctx)


def token_speed(cost: dict[int, dict], load_seconds: float, source: str) -> TokenSpeed:
    """A TokenSpeed from `decode_cost`'s table: prompts at the PROMPT_CHUNK rate, generation at one
    sequence's rate, and the aggregate speed-up of every measured number of sequences."""
    one = cost[1]["generation_tok_per_s"]
    speedup = tuple((k, row["generation_tok_per_s"] / one) for k, row in sorted(cost.items())
                    if "generation_tok_per_s" in row)
    return TokenSpeed(prompt_tok_s=round(cost[PROMPT_CHUNK]["prompt_tok_per_s"], 1), generation_tok_s=round(one, 1),
                      load_seconds=round(load_seconds, 1), batch_speedup=tuple((k, round(x, 3)) for k, x in speedup),
                      source=source)


def measure(alias: str, path, threads: int | None, source: str) -> TokenSpeed:
    """Load `alias` from `path` as a run loads it (timed) and measure its decode costs."""
    from backends.llamacpp_backend import LlamaCppLLM

    start = time.perf_counter()
    llm = LlamaCppLLM(path, model=alias, n_ctx=1024, n_threads=threads)
    load_seconds = time.perf_counter() - start
    try:
        return token_speed(decode_cost(llm.llama), load_seconds, source)
    finally:
        llm.close()


def median_speed(speeds: list[TokenSpeed]) -> TokenSpeed:
    """Every figure's median over rounds: one round can land on a burst of another job's load."""
    first = speeds[0]
    return TokenSpeed(prompt_tok_s=statistics.median(s.prompt_tok_s for s in speeds),
                      generation_tok_s=statistics.median(s.generation_tok_s for s in speeds),
                      load_seconds=statistics.median(s.load_seconds for s in speeds),
                      batch_speedup=tuple((k, statistics.median(s.batch_speedup[i][1] for s in speeds))
                                          for i, (k, _) in enumerate(first.batch_speedup)),
                      source=first.source)


def calibrate(models: list[tuple[str, object]], threads: int | None, rounds: int = 3,
              report: Callable[[str, int, TokenSpeed], None] = lambda _alias, _round, _speed: None
              ) -> dict[str, TokenSpeed]:
    """Measure every (alias, path) `rounds` times, the models taking turns so that a burst of load
    falls on one round of each rather than on all rounds of one, and keep each model's medians as
    this machine's figures for the pre-run estimate."""
    from backends.local_speed import calibration_source, store_speed

    source = calibration_source(threads, rounds)
    measured = {alias: [] for alias, _ in models}
    for round_ in range(1, rounds + 1):
        for alias, path in models:
            measured[alias].append(measure(alias, path, threads, source))
            report(alias, round_, measured[alias][-1])
    speeds = {alias: median_speed(found) for alias, found in measured.items()}
    for alias, speed in speeds.items():
        store_speed(alias, speed)
    return speeds
