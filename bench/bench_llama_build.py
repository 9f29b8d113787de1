"""Compare llama-cpp-python builds (one venv each) on batched decode: crash or not, and speed.

Why: llama.cpp's CPU kernels are chosen at compile time by instruction-set flags, and a
build was once seen to segfault on batched decode (scripts/setup.sh). Each build is run
in its own subprocess, so a segfault is recorded as a result instead of killing the bench,
and the builds are alternated round by round, so on a shared machine they see the same load.
Speeds are given per wall-clock second and per CPU second of the process (with one thread,
the default, the CPU-second rate is what the kernels cost). Other work on the machine only
ever adds time, so each run keeps its fastest prompt pass and its median generated token.

    python -m bench.bench_llama_build --model qwen.gguf \
        --build safe=/tmp/venv_safe/bin/python --build vnni=/tmp/venv_vnni/bin/python

One run: load the model (n_batch >= prompt length), evaluate the prompt in one batch (the
path that crashed) `repeats` times from an empty cache, then generate greedily one token at
a time. The greedy tokens are compared with the first build's: a kernel that computes wrong
numbers shows up there.
"""

import argparse
import json
import signal
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

# Code-like text of about 240 Qwen2.5 tokens: long enough that prompt evaluation runs the
# batched matrix-matrix kernels, short enough that one run takes seconds.
PROMPT = (
    "# A small library of list utilities written in plain Python.\n"
    + "".join(f"def helper_{i}(xs):\n    return [x * {i} + {i} for x in xs if x % {i + 2}]\n" for i in range(8))
    + "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n"
)


@dataclass(frozen=True)
class BenchConfig:
    """What to run: the model, the builds (label -> python of the venv holding that build)."""

    model: Path
    builds: tuple[tuple[str, Path], ...]
    rounds: int = 3
    repeats: int = 3
    n_threads: int = 1
    n_gen: int = 32
    n_batch: int = 512
    n_ctx: int = 1024
    timeout_s: float = 600.0

    def __post_init__(self):
        if not self.model.is_file():
            raise ValueError(f"--model: no such file: {self.model}")
        if not self.builds:
            raise ValueError("--build: give at least one LABEL=PYTHON")
        labels = [label for label, _ in self.builds]
        if len(set(labels)) != len(labels):
            raise ValueError(f"--build: labels must be distinct, got {labels}")
        for label, python in self.builds:
            if not python.is_file():
                raise ValueError(f"--build {label}: no such python: {python}")
        for key in ("rounds", "repeats", "n_threads", "n_gen", "n_batch", "n_ctx"):
            if getattr(self, key) < 1:
                raise ValueError(f"--{key.replace('_', '-')}: must be >= 1")
        if self.n_batch > self.n_ctx:
            raise ValueError("--n-batch: must be <= --n-ctx")


def child_main(model: str, repeats: int, n_threads: int, n_gen: int, n_batch: int, n_ctx: int) -> None:
    """Inside the build's venv: one timed run, printed as one JSON line on stdout."""
    import time

    def timed(fn):  # -> (wall seconds, CPU seconds of this process)
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        return time.perf_counter() - wall, time.process_time() - cpu

    from llama_cpp import Llama  # the venv under test; imported here so the parent needs none

    llm = Llama(model_path=model, n_ctx=n_ctx, n_batch=n_batch, n_threads=n_threads, verbose=False, seed=0)
    tokens = llm.tokenize(PROMPT.encode())[:n_batch]  # one batch: the batched path is the point
    if len(tokens) + n_gen > n_ctx:
        raise SystemExit(f"prompt ({len(tokens)}) + n_gen ({n_gen}) exceeds n_ctx ({n_ctx})")
    prompt_times = []
    for _ in range(repeats):
        llm.reset()  # next eval starts at position 0 and drops the cached keys/values
        prompt_times.append(timed(lambda: llm.eval(tokens)))
    generated, token_times = [], []
    for _ in range(n_gen):
        token = llm.sample(temp=0.0)
        generated.append(int(token))
        token_times.append(timed(lambda: llm.eval([token])))
    best_wall, best_cpu = (min(t[i] for t in prompt_times) for i in (0, 1))
    median_wall, median_cpu = (statistics.median(t[i] for t in token_times) for i in (0, 1))
    # stdlib json: the venv under test holds llama-cpp-python and numpy, not orjson
    print(json.dumps({"n_prompt": len(tokens), "tokens": generated,
                      "prompt_tps": len(tokens) / best_wall, "prompt_cpu_tps": len(tokens) / best_cpu,
                      "gen_tps": 1 / median_wall, "gen_cpu_tps": 1 / median_cpu}))


def run_once(cfg: BenchConfig, python: Path) -> dict:
    """One run of one build in a subprocess; a crash or timeout becomes {'crash': why}."""
    argv = [str(python), str(Path(__file__).resolve()), "--child", str(cfg.model),
            *map(str, (cfg.repeats, cfg.n_threads, cfg.n_gen, cfg.n_batch, cfg.n_ctx))]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=cfg.timeout_s)
    except subprocess.TimeoutExpired:
        return {"crash": f"timeout after {cfg.timeout_s:.0f}s"}
    if proc.returncode < 0:
        return {"crash": signal.Signals(-proc.returncode).name}
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no stderr)"])[-1]
        return {"crash": f"exit {proc.returncode}: {last}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_rounds(cfg: BenchConfig) -> dict[str, list[dict]]:
    """All runs, builds alternated within each round and the starting build rotated per round."""
    runs: dict[str, list[dict]] = {label: [] for label, _ in cfg.builds}
    for r in range(cfg.rounds):
        order = cfg.builds[r % len(cfg.builds):] + cfg.builds[:r % len(cfg.builds)]
        for label, python in order:
            result = run_once(cfg, python)
            runs[label].append(result)
            print(f"round {r + 1} {label}: " + (result["crash"] if "crash" in result else
                  f"prompt {result['prompt_cpu_tps']:.1f}, gen {result['gen_cpu_tps']:.1f} tok/cpu-s"), file=sys.stderr)
    return runs


SPEEDS = ("prompt_tps", "prompt_cpu_tps", "gen_tps", "gen_cpu_tps")


def summarize(runs: dict[str, list[dict]]) -> list[dict]:
    """Per build: crashes, median of each speed, its ratio to the first working build, greedy agreement."""
    reference = next((r["tokens"] for results in runs.values() for r in results if "crash" not in r), None)
    base = {}
    rows = []
    for label, results in runs.items():
        ok = [r for r in results if "crash" not in r]
        row = {"build": label, "runs": len(results), "crashes": sorted({r["crash"] for r in results if "crash" in r})}
        if ok:
            for speed in SPEEDS:
                row[speed] = statistics.median(r[speed] for r in ok)
                row[speed + "_ratio"] = row[speed] / base.setdefault(speed, row[speed])
            row["same_tokens"] = all(r["tokens"] == reference for r in ok)
        rows.append(row)
    return rows


def format_table(rows: list[dict]) -> str:
    """Plain-text table, one line per build: median tok/s and (x) the ratio to the first build."""
    width = max(len("build"), *(len(row["build"]) for row in rows))
    heads = ("prompt/wall-s", "prompt/cpu-s", "gen/wall-s", "gen/cpu-s")
    lines = [f"{'build':<{width}} runs " + " ".join(f"{h:>13}   x  " for h in heads) + "tokens crashes"]
    for row in rows:
        if "same_tokens" in row:
            cells = " ".join(f"{row[s]:>13.1f} {row[s + '_ratio']:>5.2f}" for s in SPEEDS)
            cells += f"  {'same' if row['same_tokens'] else 'DIFFER'}"
        else:
            cells = " ".join(f"{'-':>13} {'-':>5}" for _ in SPEEDS) + "  -     "
        lines.append(f"{row['build']:<{width}} {row['runs']:>4} {cells} {', '.join(row['crashes']) or 'none'}")
    return "\n".join(lines)


def parse_build(text: str) -> tuple[str, Path]:
    """'LABEL=PYTHON' -> (label, path)."""
    label, sep, python = text.partition("=")
    if not sep or not label or not python:
        raise argparse.ArgumentTypeError(f"expected LABEL=PYTHON, got {text!r}")
    return label, Path(python)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the rounds, print the table (and JSON with --json)."""
    parser = argparse.ArgumentParser(prog="bench_llama_build", description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="GGUF model file")
    parser.add_argument("--build", type=parse_build, action="append", default=[], metavar="LABEL=PYTHON",
                        help="a venv's python holding one llama-cpp-python build; first is the baseline")
    parser.add_argument("--rounds", type=int, default=3, help="subprocess runs per build")
    parser.add_argument("--repeats", type=int, default=3, help="prompt passes per run (the fastest counts)")
    parser.add_argument("--n-threads", type=int, default=1, help="1 keeps timings stable on a shared machine")
    parser.add_argument("--n-gen", type=int, default=32)
    parser.add_argument("--n-batch", type=int, default=512)
    parser.add_argument("--n-ctx", type=int, default=1024)
    parser.add_argument("--json", action="store_true", help="also print the summary as JSON")
    args = parser.parse_args(argv)
    try:
        cfg = BenchConfig(model=args.model, builds=tuple(args.build), rounds=args.rounds, repeats=args.repeats,
                          n_threads=args.n_threads, n_gen=args.n_gen, n_batch=args.n_batch, n_ctx=args.n_ctx)
    except ValueError as err:
        print(f"bench_llama_build: error: {err}", file=sys.stderr)
        return 2
    rows = summarize(run_rounds(cfg))
    print(format_table(rows))
    if args.json:
        print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 8 and sys.argv[1] == "--child":
        child_main(sys.argv[2], *map(int, sys.argv[3:]))
    else:
        sys.exit(main())
