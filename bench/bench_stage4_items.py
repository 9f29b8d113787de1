"""Seconds per test item in stage 4's evaluations, to size a stage 4 run before starting it.

Per llama.cpp thread count and per prompt format (zero-shot, strategy in the prompt), on
scheduling/balanced test items, for each model file given:
    greedy      a real greedy completion (the base student answering as it does in stages 0/3b)
    trained     what a curriculum-trained student costs: its prompt, then the domain's worked
                solution (the curriculum target) decoded one token at a time, teacher-forced.
                Decoding a given token costs the same whichever token it is, so this is the time
                the trained student takes to write the answer it was trained to write, measured
                without having to train one first.
The load average is recorded before and after each block: on a shared machine the absolute
seconds mean little without it. Models and thread counts take turns item by item, so load hits them alike.
Run: python -m bench.bench_stage4_items --strategy strategy.md --models base=qwen0.5b f16=x.f16.gguf
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

DEFAULT_STRATEGY = ("1. List every meeting's start and end as events.\n2. Sort the events by time, ends before "
                    "starts at equal times.\n3. Sweep the events, counting meetings in progress.\n4. The peak "
                    "count is the rooms needed.\n5. Answer YES if the peak fits the available rooms, else NO.")


def timed_trained(llm, messages: list[dict], target: str) -> tuple[float, int, int]:
    """(seconds, prompt tokens, target tokens) of prompt processing plus token-by-token decode of `target`."""
    prompt = llm.prompt_tokens(messages)
    answer = llm.llama.tokenize(target.encode("utf-8"), add_bos=False, special=False)
    start = time.perf_counter()
    llm.llama.reset()
    llm.llama.eval(prompt)
    for token in answer:
        llm.llama.eval([token])
    return time.perf_counter() - start, len(prompt), len(answer)


def measure(models: dict[str, Path], threads: list[int], n_items: int, strategy: str, max_tokens: int) -> list[dict]:
    """One row per (model, threads, format, kind) with the median seconds per item and token counts.

    Every thread count gets its own loaded copy and the copies take turns item by item, so the
    comparison between thread counts sees the same load from other processes.
    """
    from backends.llamacpp_backend import LlamaCppLLM
    from backends.llm import SamplingParams
    from lrl.domain import get_domain
    from lrl.student_prompt import strategy_steps, student_messages

    domain = get_domain("scheduling")
    problems = domain.generate(n_items, seed=0, split="test", variant="balanced")
    loaded = {(name, n): LlamaCppLLM(path, n_ctx=2048, n_threads=n) for name, path in models.items() for n in threads}
    samples: dict[tuple, list] = {}
    load_before = os.getloadavg()
    for problem in problems:
        target = domain.worked_solution(problem, strategy_steps(strategy))
        for (name, n), llm in loaded.items():
            for fmt, text in (("zero-shot", None), ("strategy", strategy)):
                messages = student_messages(domain, problem, text)
                if name == "base":
                    done = llm.complete(messages, SamplingParams(temperature=0.0, max_tokens=max_tokens))
                    samples.setdefault((name, n, fmt, "greedy"), []).append(
                        (done.latency_s, done.input_tokens, done.output_tokens))
                samples.setdefault((name, n, fmt, "trained"), []).append(timed_trained(llm, messages, target))
    load_after = os.getloadavg()
    for llm in loaded.values():
        llm.close()
    return [{"model": name, "format": fmt, "kind": kind, "threads": n, "items": len(rows),
             "seconds_per_item": statistics.median(r[0] for r in rows),
             "prompt_tokens": statistics.median(r[1] for r in rows),
             "output_tokens": statistics.median(r[2] for r in rows),
             "load_before": load_before, "load_after": load_after}
            for (name, n, fmt, kind), rows in samples.items()]


def render(rows: list[dict]) -> str:
    lines = [f"{'threads':>7} {'model':<6} {'format':<10} {'kind':<8} {'s/item':>7} {'prompt':>7} {'output':>7}  "
             "load 1/5/15 min before -> after"]
    for r in sorted(rows, key=lambda r: (r["threads"], r["model"])):
        load = "/".join(f"{x:.1f}" for x in r["load_before"]) + " -> " + "/".join(f"{x:.1f}" for x in r["load_after"])
        lines.append(f"{r['threads']:>7} {r['model']:<6} {r['format']:<10} {r['kind']:<8} {r['seconds_per_item']:>7.2f} "
                     f"{r['prompt_tokens']:>7.0f} {r['output_tokens']:>7.0f}  {load}")
    return "\n".join(lines)


def main() -> None:
    import orjson

    from backends.export.model_path import resolve_gguf

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["base=qwen0.5b"], help="name=spec; 'base' also runs greedy")
    parser.add_argument("--strategy", default=None, help="strategy file (default: a five-step sweep strategy)")
    parser.add_argument("--items", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--max-tokens", type=int, default=384)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    strategy = Path(args.strategy).read_text(encoding="utf-8").strip() if args.strategy else DEFAULT_STRATEGY
    models = {name: resolve_gguf(spec) for name, spec in (m.split("=", 1) for m in args.models)}
    rows = measure(models, args.threads, args.items, strategy, args.max_tokens)
    print(render(rows), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    payload = {"items": args.items, "max_tokens": args.max_tokens, "strategy": strategy, "rows": rows,
               "models": {k: str(v) for k, v in models.items()}, "cpus": os.cpu_count(),
               "note": "median seconds per item on a shared 2-core machine; load averages before each block"}
    (out / "bench_stage4_items.json").write_bytes(orjson.dumps(payload, option=orjson.OPT_INDENT_2))
    (out / "bench_stage4_items.txt").write_text(render(rows) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
