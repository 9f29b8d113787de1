"""Decode speed of exported GGUFs: a fused LoRA must cost nothing, and what Q4_K_M buys over F16.

Compares, in llama.cpp on the same prompt and the same number of greedy tokens:
    base        the base GGUF as shipped
    base-<q>    the base through our own export pipeline with no adapter (same quantization recipe)
    student-<q> the exported student at that quantization (fused LoRA: same shapes, same cost expected)
    student-f16 the exact fused weights
Rounds are interleaved (A, B, C, A, B, C, ...) so load from other processes hits every model alike;
the table reports the median tokens/s and the ratio to `base-<q>`.
Run: python -m bench.bench_export --base qwen0.5b --student out/student.gguf [--tokens 64 --rounds 3]
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

PROMPT = "Write a Python function that returns the number of rooms needed for a list of meetings."


def decode_rate(llama, prompt_tokens: list[int], n_tokens: int) -> float:
    """Tokens per second of greedy decoding `n_tokens` after the prompt (prompt time excluded)."""
    llama.reset()
    llama.eval(prompt_tokens)
    start = time.perf_counter()
    for _ in range(n_tokens):
        token = llama.sample(temp=0.0)
        llama.eval([token])
    return n_tokens / (time.perf_counter() - start)


def same_pipeline_base(base: Path, quant: str, work: Path) -> Path:
    """The base model exported with no adapter at `quant`, the fair comparison for the student."""
    from backends.export.fused_gguf import write_fused_gguf
    from backends.export.quantize import quantize_gguf

    f16 = work / "base.f16.gguf"
    if not f16.exists():
        write_fused_gguf(base, {}, f16, "f16")
    out = work / f"base.{quant}.gguf"
    if not out.exists():
        quantize_gguf(f16, out, quant)
    return out


def run(models: dict[str, Path], n_tokens: int, rounds: int, threads: int | None,
        loras: dict[str, Path] | None = None) -> dict[str, dict]:
    """Median decode tokens/s per model over interleaved rounds (`loras`: adapter GGUFs applied to some)."""
    import llama_cpp

    loras = loras or {}
    loaded = {name: llama_cpp.Llama(str(path), n_ctx=512, n_threads=threads, verbose=False,
                                    lora_path=str(loras[name]) if name in loras else None)
              for name, path in models.items()}
    rates = {name: [] for name in models}
    for _ in range(rounds):
        for name, llama in loaded.items():
            tokens = llama.tokenize(PROMPT.encode(), add_bos=True)
            rates[name].append(decode_rate(llama, tokens, n_tokens))
    for llama in loaded.values():
        llama.close()
    return {name: {"path": str(models[name]), "bytes": models[name].stat().st_size + (
                       loras[name].stat().st_size if name in loras else 0),
                   "tokens_per_s": statistics.median(r), "rounds": r} for name, r in rates.items()}


def render(results: dict[str, dict], reference: str) -> str:
    ref = results[reference]["tokens_per_s"]
    lines = [f"{'model':<16}{'MiB':>8}{'tok/s':>9}{'vs ' + reference:>16}"]
    for name, r in results.items():
        lines.append(f"{name:<16}{r['bytes'] / 2**20:>8.0f}{r['tokens_per_s']:>9.1f}{r['tokens_per_s'] / ref:>15.2f}x")
    return "\n".join(lines)


def main() -> None:
    import orjson

    from backends.export.model_path import resolve_gguf

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="qwen0.5b")
    parser.add_argument("--student", required=True, help="exported student GGUF (its .f16.gguf sibling is used too)")
    parser.add_argument("--quant", default="q4_k_m")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    student = Path(args.student)
    base = resolve_gguf(args.base)
    reference = f"base-{args.quant}"
    models = {"base": base, reference: same_pipeline_base(base, args.quant, student.parent),
              f"student-{args.quant}": student, "student-f16": student.with_name(f"{student.stem}.f16.gguf")}
    results = run(models, args.tokens, args.rounds, args.threads)
    table = render(results, reference)
    print(table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    payload = {"tokens": args.tokens, "rounds": args.rounds, "threads": args.threads, "results": results,
               "note": "median of interleaved rounds on a shared machine; compare ratios, not absolute rates"}
    (out / "bench_export.json").write_bytes(orjson.dumps(payload, option=orjson.OPT_INDENT_2))
    (out / "bench_export.txt").write_text(table + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
