"""Measured per-token cost of the shipped local models, so a run can say what it will cost in time.

From `python -m bench.bench_teacher_cost` (llama.cpp, 2 threads, one sequence at a time, real
scheduling prompts with the strategy in them; JSON under bench/results/teacher_cost-*.json), for
a quiet 2-core machine. Batched decoding (--parallel) answers many calls at once and runs faster.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TokenSpeed:
    """Tokens per second of prompt processing and of generation, and the seconds a load takes."""

    prompt_tok_s: float
    generation_tok_s: float
    load_seconds: float  # reading the file into memory, once per process

    def call_seconds(self, input_tokens: int, output_tokens: int) -> float:
        """Seconds for one call that reads `input_tokens` and writes `output_tokens`."""
        return input_tokens / self.prompt_tok_s + output_tokens / self.generation_tok_s


# qwen0.5b on a quiet 2-core machine (llama.cpp, 2 threads, one sequence): about 200 prompt and 26
# generated tokens per second. qwen1.5b is that scaled by the ratio bench_teacher_cost measured with
# the two models taking turns on the same prompts (teacher_cost-20261202-175556.json, load 21-25):
# 1.47x the 0.5B model's time per prompt token, 1.79x per generated token, 8.5 s vs 4.1 s to load.
# The absolute figures of that loaded run (0.5B: 7.7 / 0.38 tok/s; 1.5B: 5.3 / 0.21 tok/s) say how
# much a 10x oversubscribed machine slows llama.cpp's spinning threads, not what a run costs.
MEASURED = {
    "qwen0.5b": TokenSpeed(prompt_tok_s=200.0, generation_tok_s=26.0, load_seconds=4.1),
    "qwen1.5b": TokenSpeed(prompt_tok_s=136.0, generation_tok_s=14.5, load_seconds=8.5),
}


def local_speed(model: str) -> TokenSpeed | None:
    """The measured speed of a shipped model alias, None for anything else (an API model, a user's GGUF)."""
    return MEASURED.get(model)
