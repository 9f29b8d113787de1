"""Measured per-token cost of the shipped local models, so a run can say what it will cost in time.

`k1 models --calibrate` measures this machine (backends/llamacpp_speed.py) and stores the figures in
the user cache under the CPU's name; without them the figures shipped here are used, and the
estimate says so. The shipped figures assume llama.cpp with 2 threads on an otherwise idle 2-core
machine: no other process competes for the cores (under load llama.cpp's spinning threads slow many
times over). Prompt processing runs at one aggregate speed whatever the number of sequences;
generation with N sequences in one batch (`--parallel N`, backends/llamacpp_batch.py) runs at the
one-sequence speed times the speed-up measured at N. That speed-up is a property of the CPU: 4.2x
at 16 sequences on the machine below, 2.0x on a 2-core AMD EPYC (Zen 2, AVX2), where one token's
decode is already compute-bound.
"""
from __future__ import annotations

import bisect
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson

# Aggregate greedy generation of Qwen2.5-Coder-0.5B Q4_K_M with N sequences in one llama.cpp
# context (low-level API, 2 threads, quiet 2-core machine, one 58-token prompt and 64 generated
# tokens per sequence): 26, 72, 87, 108 and 123 tokens/s at N = 1, 4, 8, 16, 32; prompt processing
# about 200 tokens/s at every N. Speed-up = tokens/s at N over tokens/s at 1.
BATCH_SPEEDUP = ((1, 1.0), (4, 72 / 26), (8, 87 / 26), (16, 108 / 26), (32, 123 / 26))


@dataclass(frozen=True)
class TokenSpeed:
    """Tokens per second of prompt processing and of one sequence's generation, the seconds a load
    takes, and generation's aggregate speed-up with N sequences decoded together."""

    prompt_tok_s: float
    generation_tok_s: float  # one sequence
    load_seconds: float  # reading the file into memory, once per process
    batch_speedup: tuple[tuple[int, float], ...] = BATCH_SPEEDUP  # (N, speed-up), N ascending from 1
    source: str = "the figures shipped with k1 (a 2-core server; `k1 models --calibrate` measures this machine)"

    def speedup(self, sequences: int) -> float:
        """Generation speed-up at `sequences` at once: the largest measured N not above it (N between
        two measured sizes is counted at the smaller, so the estimate stays an upper bound)."""
        sizes = [n for n, _ in self.batch_speedup]
        return self.batch_speedup[bisect.bisect_right(sizes, sequences) - 1][1]

    def batch_seconds(self, calls: int, input_tokens: int, output_tokens: int, parallel: int) -> float:
        """Seconds for `calls` calls of equal size decoded `parallel` at a time with continuous batching.

        Equal answers finish together, so the calls go in waves of `parallel` sequences and a last,
        smaller wave; each wave generates at its own size's aggregate speed.
        """
        prompts = calls * input_tokens / self.prompt_tok_s
        full, rest = divmod(calls, parallel)
        return prompts + full * self._wave_seconds(parallel, output_tokens) + self._wave_seconds(rest, output_tokens)

    def _wave_seconds(self, sequences: int, output_tokens: int) -> float:
        """Seconds for `sequences` sequences generating `output_tokens` each, together."""
        return sequences * output_tokens / (self.generation_tok_s * self.speedup(sequences)) if sequences else 0.0


# qwen0.5b: the one-sequence figures of the measurement above. qwen1.5b: those scaled by the ratio
# bench_teacher_cost measured with the two models taking turns on the same prompts
# (teacher_cost-20261202-175556.json, load 21-25): 1.47x the 0.5B model's time per prompt token,
# 1.79x per generated token, 8.5 s vs 4.1 s to load. The absolute figures of that loaded run
# (0.5B: 7.7 / 0.38 tok/s; 1.5B: 5.3 / 0.21 tok/s) say how much a 10x oversubscribed machine slows
# llama.cpp's spinning threads, not what a run costs. The 1.5B model's batch speed-up has not been
# measured; it is taken to be the 0.5B model's (decoding either reads all its weights once per step).
MEASURED = {
    "qwen0.5b": TokenSpeed(prompt_tok_s=200.0, generation_tok_s=26.0, load_seconds=4.1),
    "qwen1.5b": TokenSpeed(prompt_tok_s=136.0, generation_tok_s=14.5, load_seconds=8.5),
}


def speed_file() -> Path:
    """Where `k1 models --calibrate` keeps its figures: `<user cache>/k1/speed.json`."""
    from backends.model_assets import user_cache_dir

    return user_cache_dir().parent / "speed.json"


def machine_key() -> str:
    """The CPU's name and core count: figures measured on one machine apply to another only if these match."""
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            name = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), name)
    except OSError:  # not Linux
        pass
    return f"{name}, {os.cpu_count()} cores"


def _stored() -> dict:
    try:
        return orjson.loads(speed_file().read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}  # nothing calibrated (or a damaged file, which the next calibration rewrites)


def store_speed(model: str, speed: TokenSpeed) -> Path:
    """Keep `speed` as this machine's figures for `model`."""
    stored = _stored()
    stored.setdefault(machine_key(), {})[model] = asdict(speed)
    path = speed_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps(stored, option=orjson.OPT_INDENT_2))
    tmp.replace(path)
    return path


def calibration_source(threads: int | None, rounds: int = 1) -> str:
    """How calibrated figures describe themselves in the estimate."""
    how = f"{threads} thread{'s' * (threads != 1)}" if threads else "llama.cpp's default threads"
    median = f", median of {rounds} rounds" if rounds > 1 else ""
    return f"measured on this machine by `k1 models --calibrate` ({how}{median}, {time.strftime('%Y-%m-%d')})"


def local_speed(model: str) -> TokenSpeed | None:
    """This machine's calibrated speed of a shipped model alias, else the shipped figures; None for
    anything else (an API model, a user's GGUF)."""
    row = _stored().get(machine_key(), {}).get(model)
    try:
        return TokenSpeed(**row | {"batch_speedup": tuple(tuple(pair) for pair in row["batch_speedup"])})
    except (TypeError, KeyError):  # not calibrated here, or written by another version of k1
        return MEASURED.get(model)
