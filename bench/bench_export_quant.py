"""How much of a LoRA delta survives re-quantizing the fused weights, per tensor, and what that does to greedy output.

The base GGUF is itself quantized, so its dequantized weights W sit on a quantizer grid. Fusing
adds a rank-r delta dW and the export quantizes W + dW again. For every quantization q and every
adapted matrix we compare Q(W + dW) with Q(W), both made by llama.cpp's own quantizer from F16
files written by our export pipeline:
    kept   = <Q(W+dW) - Q(W), dW> / ||dW||^2   the share of the delta that survives, along dW
    norm   = ||Q(W+dW) - Q(W)|| / ||dW||        how large the surviving change is (noise included)
    resid  = ||Q(W+dW) - Q(W) - dW|| / ||dW||   what quantization did to the delta (0 = kept exactly)
A `kept` near 0 means the grid snapped the delta back; near 1 means it survived. The run-time
adapter (llama.cpp `--lora`, Ollama ADAPTER) adds dW in full precision, so its `kept` is 1 by
construction. Then each model writes greedy tokens on test prompts in the trained prompt format:
how often does it write the trained solution's opening, and how often the fused F16 model's text.
Run: python -m bench.bench_export_quant --base qwen0.5b --adapter run/lora/best [--items 20 --tokens 40]
Files are kept in --work, so a killed run resumes.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from bench.bench_export import same_pipeline_base
from bench.results_file import write_result

QUANTS = ("q8_0", "q6_k", "q5_k_m", "q4_k_m", "q4_k_m_lora_q8")
TRAINED_OPENING = "Following the strategy:\n1."


def fused(base: Path, adapter: Path, quant: str, work: Path) -> Path:
    """The adapter fused into the base at `quant` (F16 first, then llama.cpp's quantizer), made once."""
    from backends.export.fused_gguf import write_fused_gguf
    from backends.export.quantize import quantize_gguf
    from backends.student.peft_delta import read_peft_deltas

    f16 = work / "fused.f16.gguf"
    if not f16.exists():
        write_fused_gguf(base, read_peft_deltas(adapter), f16, "f16")
    out = work / f"fused.{quant}.gguf"
    if quant != "f16" and not out.exists():
        quantize_gguf(f16, out, quant)
    return out if quant != "f16" else f16


def survival(base: Path, adapter: Path, quant: str, work: Path) -> list[dict]:
    """Per adapted matrix: kept, norm and resid of the delta after quantizing the fused weights to `quant`."""
    from backends.export.fused_gguf import gguf_delta
    from backends.student.gguf_loader import canonical_name, dequantized, open_gguf, read_config
    from backends.student.peft_delta import read_peft_deltas

    deltas = read_peft_deltas(adapter)
    cfg = read_config(open_gguf(base), base)
    with_delta, without = open_gguf(fused(base, adapter, quant, work)), open_gguf(same_pipeline_base(base, quant, work))
    plain = {t.name: t for t in without.tensors}
    rows = []
    for tensor in with_delta.tensors:
        name = canonical_name(tensor.name)
        if name not in deltas:
            continue
        delta = gguf_delta(deltas[name], name, cfg)
        change = dequantized(tensor, work) - dequantized(plain[tensor.name], work)  # Q(W+dW) - Q(W)
        sq = float(np.sum(delta * delta))
        rows.append({"tensor": tensor.name, "type": tensor.tensor_type.name, "delta_rms": float(np.sqrt(sq / delta.size)),
                     "kept": float(np.sum(change * delta)) / sq, "norm": float(np.linalg.norm(change) / np.sqrt(sq)),
                     "resid": float(np.linalg.norm(change - delta) / np.sqrt(sq)), "delta_sq": sq})
    return rows


def summarize(rows: list[dict]) -> dict:
    """Delta-energy-weighted kept share overall and per GGML type, with the per-tensor median."""
    def pooled(subset):
        weight = sum(r["delta_sq"] for r in subset)
        return {"tensors": len(subset), "kept": sum(r["kept"] * r["delta_sq"] for r in subset) / weight,
                "resid": float(np.sqrt(sum(r["resid"] ** 2 * r["delta_sq"] for r in subset) / weight)),
                "kept_median": float(np.median([r["kept"] for r in subset]))}
    types = sorted({r["type"] for r in rows})
    return {"all": pooled(rows), "by_type": {t: pooled([r for r in rows if r["type"] == t]) for t in types}}


def greedy_texts(spec: str, n_items: int, n_tokens: int, threads: int) -> list[str]:
    """`n_tokens` greedy tokens of `spec` on the first `n_items` balanced scheduling test prompts (zero-shot)."""
    from backends.llm import SamplingParams
    from backends.spec import BackendOptions, build_llm
    from lrl.domain import get_domain
    from lrl.student_prompt import student_messages

    domain = get_domain("scheduling")
    problems = domain.generate(n_items, seed=0, split="test", variant="balanced")
    llm = build_llm(spec, BackendOptions(n_threads=threads, n_ctx=1024))
    try:
        params = SamplingParams(temperature=0.0, max_tokens=n_tokens)
        return [llm.complete(student_messages(domain, p), params).text for p in problems]
    finally:
        llm.close()


def output_change(texts: dict[str, list[str]]) -> dict:
    """Per model: share writing the trained opening, share identical to fused F16, mean shared prefix."""
    ref = texts["fused-f16"]

    def shared(a, b):
        return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    return {name: {"trained_opening": sum(t.startswith(TRAINED_OPENING) for t in ts) / len(ts),
                   "same_as_f16": sum(t == r for t, r in zip(ts, ref)) / len(ts),
                   "shared_prefix_chars": float(np.mean([shared(t, r) for t, r in zip(ts, ref)]))}
            for name, ts in texts.items()}


def main() -> None:
    from backends.export.lora_gguf import write_lora_gguf
    from backends.export.model_path import resolve_gguf

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="qwen0.5b")
    parser.add_argument("--adapter", required=True, help="PEFT adapter directory (k1 lrl train-student's best/)")
    parser.add_argument("--work", default="bench/work-export-quant", help="where the GGUFs are written and kept")
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--tokens", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--greedy", default=None, help="comma list of the models to generate with (default: all; "
                        "fused-f16 always): fused-<quant>, base+adapter, base")
    args = parser.parse_args()
    base, adapter, work = resolve_gguf(args.base), Path(args.adapter), Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    started = time.time()
    tensors = {q: survival(base, adapter, q, work) for q in QUANTS}
    summary = {q: summarize(rows) for q, rows in tensors.items()}
    for q, s in summary.items():
        print(f"{q:<16} kept {s['all']['kept']:.3f}  resid {s['all']['resid']:.3f}  by type "
              + ", ".join(f"{t} {v['kept']:.3f}" for t, v in s["by_type"].items()), flush=True)
    write_result("export_quant_survival", {"base": str(base), "adapter": str(adapter), "summary": summary,
                                           "tensors": tensors, "loadavg": os.getloadavg()})  # kept if greedy is killed
    lora = work / "adapter.lora.gguf"
    if not lora.exists():
        write_lora_gguf(base, adapter, lora)
    specs = {"fused-f16": f"llamacpp:{fused(base, adapter, 'f16', work)}",
             **{f"fused-{q}": f"llamacpp:{fused(base, adapter, q, work)}" for q in QUANTS},
             "base+adapter": f"llamacpp:{base}+lora={lora}", "base": f"llamacpp:{base}"}
    chosen = {"fused-f16", *(args.greedy.split(",") if args.greedy else specs)}
    texts = {name: greedy_texts(spec, args.items, args.tokens, args.threads) for name, spec in specs.items()
             if name in chosen}
    change = output_change(texts)
    for name, c in change.items():
        print(f"{name:<22} trained opening {c['trained_opening']:.0%}  same as F16 {c['same_as_f16']:.0%}", flush=True)
    path = write_result("export_quant", {
        "base": str(base), "adapter": str(adapter), "items": args.items, "tokens": args.tokens,
        "summary": summary, "tensors": tensors, "output_change": change, "texts": texts,
        "loadavg": os.getloadavg(), "seconds": round(time.time() - started, 1)})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
