"""Per-call cost of the shipped local models: prompt and generation tokens per second, for the pre-run estimate.

Each model reads real stage prompts (scheduling/balanced, the strategy in the prompt) and then
decodes a worked solution token by token, teacher-forced: decoding a given token costs what
decoding a sampled one does, so this is generation speed without depending on what the model
happens to write. Models take turns item by item (k1core.interleave's idea), so load from other
processes falls on them alike; the load average is recorded before and after.
Run: python -m bench.bench_teacher_cost --models qwen0.5b qwen1.5b --threads 2 --items 6 --answer-tokens 64
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

STRATEGY = ("1. List every meeting's start and end as events.\n2. Sort the events by time, ends before starts at "
            "equal times.\n3. Sweep the events, counting meetings in progress.\n4. Answer YES if the peak fits the "
            "available rooms, else NO.")


def timed_call(llm, messages: list[dict], target: str, answer_tokens: int) -> dict:
    """Seconds and tokens of the prompt pass, then of decoding the first `answer_tokens` of `target` one at a time."""
    prompt = llm.prompt_tokens(messages)
    answer = llm.llama.tokenize(target.encode("utf-8"), add_bos=False, special=False)[:answer_tokens]
    llm.llama.reset()
    start = time.perf_counter()
    llm.llama.eval(prompt)
    middle = time.perf_counter()
    for token in answer:
        llm.llama.eval([token])
    end = time.perf_counter()
    return {"prompt_tokens": len(prompt), "prompt_s": middle - start,
            "output_tokens": len(answer), "output_s": end - middle}


def measure(aliases: list[str], threads: int, n_items: int, answer_tokens: int) -> list[dict]:
    """One row per model: median tokens/s of prompt processing and of generation, with the load."""
    from backends.llamacpp_backend import LlamaCppLLM
    from backends.model_assets import resolve_alias
    from lrl.domain import get_domain
    from lrl.student_prompt import student_messages

    domain = get_domain("scheduling")
    problems = domain.generate(n_items, seed=0, split="dev", variant="balanced")
    loaded, load_s = {}, {}
    for alias in aliases:
        started = time.perf_counter()
        loaded[alias] = LlamaCppLLM(resolve_alias(alias), model=alias, n_ctx=2048, n_threads=threads)
        load_s[alias] = time.perf_counter() - started
    samples: dict[str, list[dict]] = {alias: [] for alias in aliases}
    load_before = os.getloadavg()
    for i, problem in enumerate(problems):
        messages = student_messages(domain, problem, STRATEGY)
        target = domain.worked_solution(problem)
        for alias in aliases[i % len(aliases):] + aliases[:i % len(aliases)]:
            samples[alias].append(timed_call(loaded[alias], messages, target, answer_tokens))
            print(alias, samples[alias][-1], os.getloadavg(), file=sys.stderr, flush=True)
    load_after = os.getloadavg()
    for llm in loaded.values():
        llm.close()
    return [{"model": alias, "threads": threads, "items": len(rows), "load_seconds": round(load_s[alias], 2),
             "prompt_tokens": statistics.median(r["prompt_tokens"] for r in rows),
             "prompt_tok_s": statistics.median(r["prompt_tokens"] / r["prompt_s"] for r in rows),
             "output_tokens": statistics.median(r["output_tokens"] for r in rows),
             "generation_tok_s": statistics.median(r["output_tokens"] / r["output_s"] for r in rows),
             "load_before": load_before, "load_after": load_after}
            for alias, rows in samples.items()]


def render(rows: list[dict]) -> str:
    lines = [f"{'model':<10} {'threads':>7} {'prompt tok/s':>12} {'gen tok/s':>9} {'model load s':>12}  "
             "load 1/5/15 min before -> after"]
    for r in rows:
        before = "/".join(f"{x:.1f}" for x in r["load_before"])
        after = "/".join(f"{x:.1f}" for x in r["load_after"])
        lines.append(f"{r['model']:<10} {r['threads']:>7} {r['prompt_tok_s']:>12.1f} {r['generation_tok_s']:>9.1f} "
                     f"{r['load_seconds']:>12.1f}  {before} -> {after}")
    return "\n".join(lines)


def main() -> None:
    from bench.results_file import write_result

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["qwen0.5b", "qwen1.5b"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--items", type=int, default=6)
    parser.add_argument("--answer-tokens", type=int, default=64, help="decode at most this many answer tokens per item")
    args = parser.parse_args()
    rows = measure(args.models, args.threads, args.items, args.answer_tokens)
    print(render(rows))
    print(write_result("teacher_cost", {"rows": rows, "cpu_count": os.cpu_count()}))


if __name__ == "__main__":
    main()
