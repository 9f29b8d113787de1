"""Items/s and generated tokens/s of batched llama.cpp decoding at N = 1, 2, 4, 8, 16 sequences.

Real student prompts: scheduling/balanced test items in both prompt formats (zero-shot and the
strategy in the prompt), each answer decoded to the length of the domain's worked solution for
that item (the curriculum target: what a trained student writes), past any end-of-generation
token, so every N decodes the same number of tokens. Each N has its own `BatchDecoder` on one
loaded model; the N take turns round by round in rotating order (k1core.interleave), so load from
other processes falls on all of them alike. The load average is recorded around every call.
`--answer-tokens` gives every answer one fixed length instead (a quicker run on a busy machine).
First it times single llama_decode calls carrying k tokens (k sequences' next tokens, or k prompt
tokens of one sequence): the ceiling any batching can reach on this CPU. Where one call of 8 tokens
costs nearly 8 calls of one, the CPU is compute-bound per token and batching cannot gain much.
Run: python -m bench.bench_llama_batch --threads 2 --items 8 --rounds 2
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

from bench.bench_stage4_items import DEFAULT_STRATEGY
import orjson

from bench.results_file import RESULTS

SIZES = (1, 2, 4, 8, 16)


def student_requests(n_items: int, strategy: str) -> tuple[list[list[dict]], list[int]]:
    """(chats, worked solutions): both prompt formats of each item, each with the item's curriculum target."""
    from lrl.domain import get_domain
    from lrl.student_prompt import strategy_steps, student_messages

    domain = get_domain("scheduling")
    chats, targets = [], []
    for problem in domain.generate(n_items, seed=0, split="test", variant="balanced"):
        target = domain.worked_solution(problem, strategy_steps(strategy))
        for text in (None, strategy):
            chats.append(student_messages(domain, problem, text))
            targets.append(target)
    return chats, targets


def measure(model: str, threads: int, n_items: int, rounds: int, sizes=SIZES, answer_tokens: int | None = None,
            after_call=lambda _result: None) -> dict:
    """Per N: seconds, items/s and generated tokens/s of every round, with the load around each call;
    `after_call(result so far)` after every call, so a run stopped early still leaves its numbers."""
    from backends.llamacpp_backend import LlamaCppLLM
    from backends.llamacpp_batch import BatchDecoder, shared_prefix_length
    from backends.llamacpp_speed import decode_cost
    from backends.local_speed import machine_key
    from backends.llm import SamplingParams
    from backends.model_assets import ASSETS, resolve_alias

    llm = LlamaCppLLM(resolve_alias(model) if model in ASSETS else model, n_ctx=2048, n_threads=threads)
    chats, targets = student_requests(n_items, DEFAULT_STRATEGY)
    prompts = [llm.prompt_tokens(chat) for chat in chats]
    lengths = [answer_tokens or len(llm.llama.tokenize(t.encode("utf-8"), add_bos=False, special=False))
               for t in targets]
    params = [SamplingParams(temperature=0.0, max_tokens=n) for n in lengths]
    cost = decode_cost(llm.llama)
    decoders = {n: BatchDecoder(llm.llama, n, 256, 2048) for n in sizes}
    runs = {n: [] for n in sizes}

    def snapshot(rounds_done: int) -> dict:
        return {"model": model, "threads": threads, "requests": len(prompts), "items": n_items,
                "formats": ["zero-shot", "strategy"], "prompt_tokens_median": statistics.median(len(p) for p in prompts),
                "shared_prefix_tokens": shared_prefix_length(prompts),
                "answers": "fixed length" if answer_tokens else "trained length (worked solution)",
                "answer_tokens_median": statistics.median(lengths), "answer_tokens_total": sum(lengths),
                "rounds": rounds, "rounds_done": rounds_done, "summary": summarize(runs), "runs": runs,
                "decode_cost": cost, "cpu_count": os.cpu_count(), "cpu": machine_key()}

    for r in range(rounds):
        order = list(sizes[r % len(sizes):] + sizes[:r % len(sizes)])
        for n in order:
            load_before = os.getloadavg()
            start = time.perf_counter()
            done = decoders[n].decode(prompts, params, ends_at_eog=False)
            seconds = time.perf_counter() - start
            generated = sum(c.output_tokens for c in done)
            runs[n].append({"round": r, "seconds": round(seconds, 2), "items_per_s": len(prompts) / seconds,
                            "generated_tok_per_s": generated / seconds, "generated_tokens": generated,
                            "load_before": load_before, "load_after": os.getloadavg()})
            print(f"round {r} N={n:>2}: {seconds:7.1f} s  {len(prompts) / seconds:6.3f} items/s  "
                  f"{generated / seconds:6.1f} tok/s  load {load_before[0]:.1f}", flush=True)
            after_call(snapshot(r + (n == order[-1])))
    for decoder in decoders.values():
        decoder.close()
    return snapshot(rounds)


def summarize(runs: dict[int, list[dict]]) -> dict:
    """Median items/s and tokens/s per N over its rounds, and items/s relative to N=1."""
    measured = {n: rows for n, rows in runs.items() if rows}
    base = statistics.median(x["items_per_s"] for x in measured[1]) if 1 in measured else None
    return {n: {"items_per_s": statistics.median(x["items_per_s"] for x in rows),
                "generated_tok_per_s": statistics.median(x["generated_tok_per_s"] for x in rows),
                "speedup_vs_1": statistics.median(x["items_per_s"] for x in rows) / base if base else None}
            for n, rows in measured.items()}


def render(result: dict) -> str:
    lines = ["one llama_decode of k tokens: k sequences' next tokens / k prompt tokens of one sequence",
             f"{'k':>3} {'gen ms':>8} {'tok/s':>7} {'x k=1':>6} {'prompt ms':>10} {'tok/s':>7}"]
    cost = result["decode_cost"]
    one = cost[min(cost)]["generation_tok_per_s"]
    for k, row in cost.items():
        gen = (f"{row['generation_s'] * 1e3:8.1f} {row['generation_tok_per_s']:7.1f} {row['generation_tok_per_s'] / one:6.2f}"
               if "generation_s" in row else f"{'-':>8} {'-':>7} {'-':>6}")
        lines.append(f"{k:>3} {gen} {row['prompt_s'] * 1e3:10.1f} {row['prompt_tok_per_s']:7.1f}")
    lines += ["",
              f"{result['model']}, {result['threads']} threads, {result['requests']} requests "
             f"(prompt median {result['prompt_tokens_median']} tokens, answers median {result['answer_tokens_median']}):",
             f"{'N':>3} {'items/s':>8} {'tok/s':>7} {'x N=1':>6}  load 1-min per round"]
    for n, s in result["summary"].items():
        loads = " ".join(f"{x['load_before'][0]:.1f}" for x in result["runs"][n])
        speedup = f"{s['speedup_vs_1']:6.2f}" if s["speedup_vs_1"] else "     -"
        lines.append(f"{n:>3} {s['items_per_s']:8.3f} {s['generated_tok_per_s']:7.1f} {speedup}  {loads}")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="qwen0.5b")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--items", type=int, default=8, help="problems; each is asked in both prompt formats")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sizes", type=lambda s: tuple(int(x) for x in s.split(",")), default=SIZES)
    parser.add_argument("--answer-tokens", type=int, default=None, help="every answer this long (default: trained length)")
    args = parser.parse_args(argv)
    path = RESULTS / f"llama_batch-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}.json"

    def save(result: dict) -> None:
        RESULTS.mkdir(exist_ok=True)
        path.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))

    result = measure(args.model, args.threads, args.items, args.rounds, args.sizes, args.answer_tokens, save)
    save(result)
    print(render(result))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
