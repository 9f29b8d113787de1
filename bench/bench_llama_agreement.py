"""`k1 lrl eval` at --parallel N against --parallel 1: items/s, and how often the greedy answers agree.

A batch changes the shapes of llama.cpp's matrix products and so the last bits of the logits;
where two tokens are nearly tied, greedy decoding can take the other one. This measures it on
scheduling/balanced test items with the zero-shot student prompt (`lrl.eval_run.evaluate_model`,
the engine of `k1 lrl eval`): agreement of the parsed answers (Wilson CI), each side's accuracy
with its CI, majority baseline and parse failures, and the paired accuracy difference (Newcombe
CI, exact McNemar). Both sides answer every chunk of items in alternating order, so load from
other processes falls on both alike, and every chunk's records are appended to a JSONL file:
a killed run resumes where it stopped, and the JSON summary is rewritten after every chunk.
Run: nice -n 10 python -m bench.bench_llama_agreement --items 200 --parallel 8 --threads 2
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import orjson

from bench.results_file import RESULTS
from k1core.errors import UserError


def run_chunks(model: str, n_items: int, parallel: int, threads: int, chunk: int, max_tokens: int,
               log: Path, after_chunk) -> list[dict]:
    """Evaluate the items chunk by chunk at both settings, appending one line per chunk to `log` and
    calling `after_chunk(chunks so far)`."""
    from backends.llm import SamplingParams
    from backends.spec import BackendOptions, build_llm
    from lrl.domain import get_domain
    from lrl.eval_run import EvalConfig, evaluate_model

    done = [orjson.loads(line) for line in log.read_bytes().splitlines()] if log.exists() else []
    domain = get_domain("scheduling")
    problems = domain.generate(n_items, seed=0, split="test", variant="balanced")
    llms = {n: build_llm(model, BackendOptions(n_threads=threads, n_ctx=2048, parallel=n)) for n in (1, parallel)}
    config = EvalConfig(params=SamplingParams(temperature=0.0, max_tokens=max_tokens))
    for c, start in enumerate(range(0, len(problems), chunk)):
        if c < len(done):
            continue
        items = problems[start:start + chunk]
        order = [1, parallel] if c % 2 == 0 else [parallel, 1]
        line = {"chunk": c, "items": len(items), "load_before": os.getloadavg(), "seconds": {}, "records": {}}
        for n in order:
            began = time.perf_counter()
            line["records"][str(n)] = evaluate_model(llms[n], domain, items, config, stage=f"parallel-{n}",
                                                     chunk_size=len(items))  # one bulk call: N=8 batches it
            line["seconds"][str(n)] = time.perf_counter() - began
        line["load_after"] = os.getloadavg()
        with open(log, "ab") as f:
            f.write(orjson.dumps(line) + b"\n")
        done.append(line)
        after_chunk(done)
        print(f"chunk {c}: {len(items)} items, N=1 {line['seconds']['1']:.0f} s, N={parallel} "
              f"{line['seconds'][str(parallel)]:.0f} s, load {line['load_before'][0]:.1f}", flush=True)
    return done


def summarize_chunks(chunks: list[dict], parallel: int) -> dict:
    """Agreement, accuracies, the paired difference and items/s over the chunks done so far."""
    from lrl.evaluation import compare, summarize
    from lrl.fidelity_gate import answer_key
    from lrl.stats import wilson_interval

    one = [r for c in chunks for r in c["records"]["1"]]
    many = [r for c in chunks for r in c["records"][str(parallel)]]
    agree = sum(answer_key(a) == answer_key(b) for a, b in zip(one, many))
    same_text = sum(a["response"] == b["response"] for a, b in zip(one, many))
    seconds = {n: sum(c["seconds"][n] for c in chunks) for n in ("1", str(parallel))}
    return {"items": len(one), "parallel": parallel,
            "agreement": agree / len(one), "agreement_ci95": list(wilson_interval(agree, len(one))),
            "identical_responses": same_text,
            "parallel_1": summarize(one), f"parallel_{parallel}": summarize(many),
            f"difference_parallel_{parallel}_minus_1": compare(many, one),
            "items_per_s": {n: len(one) / s for n, s in seconds.items()},
            "speedup": seconds["1"] / seconds[str(parallel)],
            "load_1min": [c["load_before"][0] for c in chunks]}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="qwen0.5b", help="llama.cpp model spec, e.g. qwen0.5b+lora=student.lora.gguf")
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--chunk", type=int, default=24, help="items per chunk (both settings answer each chunk)")
    parser.add_argument("--max-tokens", type=int, default=512, help="as `k1 lrl eval`'s default")
    parser.add_argument("--name", default="llama_agreement", help="bench/results/<name>.jsonl and .json")
    args = parser.parse_args(argv)
    RESULTS.mkdir(exist_ok=True)
    log = RESULTS / f"{args.name}.jsonl"

    def write_summary(chunks: list[dict]) -> dict:
        summary = {"model": args.model, "threads": args.threads, "max_tokens": args.max_tokens,
                   "items_requested": args.items, "complete": sum(c["items"] for c in chunks) >= args.items,
                   **summarize_chunks(chunks, args.parallel)}
        (RESULTS / f"{args.name}.json").write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
        return summary

    try:
        chunks = run_chunks(args.model, args.items, args.parallel, args.threads, args.chunk, args.max_tokens, log,
                            write_summary)
    except UserError as err:
        print(f"bench_llama_agreement: error: {err}", file=sys.stderr)
        sys.exit(2)
    summary = write_summary(chunks)
    print(orjson.dumps({k: summary[k] for k in ("items", "agreement", "agreement_ci95", "speedup", "items_per_s")}).decode())


if __name__ == "__main__":
    main()
