"""Accuracy, parse failures, size on disk and decode speed of every export artifact, paired with fused F16.

Artifacts: fused F16 (the reference), fused Q8_0, Q6_K, Q5_K_M, Q4_K_M, Q4_K_M with the LoRA
target tensors kept at Q8_0, and the base GGUF as shipped + the adapter GGUF applied at run time
(what Ollama's ADAPTER and llama.cpp's --lora run). Every artifact answers the same test items
greedily in the prompt format the adapter was trained with; base + adapter writes its answers and
the others verify them in one prompt pass (`lrl.export_job.gate_runs`), so each record is still
that artifact's own greedy answer. Responses are cached in --work, so a killed run resumes where
it stopped. Writes bench/results/export_table.json (the gate table first, decode rates added after) and
export_table.md, one row per artifact, smallest first.
Run: python -m bench.bench_export_table --adapter DIR [--items 200 --strategy FILE --work DIR]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import orjson

from bench.bench_export import run as decode_rates
from bench.bench_export_quant import fused
from bench.results_file import RESULTS
from k1core.progress import ItemProgress

QUANTS = ("q8_0", "q6_k", "q5_k_m", "q4_k_m", "q4_k_m_lora_q8")


def artifacts(base: Path, adapter: Path, work: Path) -> dict[str, dict]:
    """{name: report entry} of every artifact, built once into `work` (F16 first: the reference)."""
    from backends.export.lora_gguf import write_lora_gguf
    from lrl.export_job import ADAPTER, file_entry

    entries = {"f16": file_entry(fused(base, adapter, "f16", work))}
    entries.update({q: file_entry(fused(base, adapter, q, work)) for q in QUANTS})
    lora = work / "adapter.lora.gguf"
    if not lora.exists():
        write_lora_gguf(base, adapter, lora)
    base_entry = file_entry(base)
    entries[ADAPTER] = {**file_entry(lora), "base": str(base), "base_sha256": base_entry["sha256"],
                        "adapter_bytes": lora.stat().st_size, "bytes": lora.stat().st_size + base_entry["bytes"]}
    return entries


def item_progress():
    """A gate progress callback (artifact, done, total) printing one ItemProgress per artifact."""
    bars: dict[str, ItemProgress] = {}

    def report(name: str, done: int, total: int) -> None:
        bar = bars.setdefault(name, ItemProgress(name, total, sys.stdout))
        bar.update(done - bar.done)
        if done == total:
            bar.close()

    return report


def cached_opener(cache, threads: int, parallel: int):
    """A gate model opener whose calls go through `cache`, keyed by each artifact's content."""
    from backends.llamacpp_draft import DraftCheckedLLM
    from backends.spec import BackendOptions, build_llm
    from lrl.cache import CachedLLM
    from lrl.export_job import artifact_spec

    @contextmanager
    def open_model(name, entry, _config, drafts):
        llm = build_llm(artifact_spec(entry), BackendOptions(n_threads=threads, n_ctx=2048, parallel=parallel))
        llm.model = f"{name}@{entry['sha256'][:12]}"
        try:
            yield CachedLLM(DraftCheckedLLM(llm, drafts) if drafts else llm, cache, template_version="bench")
        finally:
            llm.close()
    return open_model


def render_table(payload: dict) -> str:
    """Markdown: size, decode speed, accuracy and parse failures of every artifact, and how it compares
    with fused F16 on the same items (agreement, paired accuracy gap); smallest artifact first."""
    gate, decode = payload["gate"], payload.get("decode", {})
    lines = [f"{gate['n']} items, greedy, reference fused F16; 95% CIs (Wilson; paired gap: Newcombe).", "",
             "| artifact | size (MiB) | decode tok/s | accuracy [95% CI] | parse failures | agreement with F16 "
             "| gap vs F16, pts [95% CI] |", "|---|---|---|---|---|---|---|"]
    for name in sorted(gate["runs"], key=lambda n: payload["sizes"][n]):
        row = gate["runs"][name]
        low, high = row["ci95"]
        speed = f"{decode[name]['tokens_per_s']:.1f}" if name in decode else "-"
        compared = ["-", "-"]
        if name != gate["reference"]:
            (a_low, a_high), (g_low, g_high) = row["agreement_ci95"], row["accuracy_gap_ci95"]
            compared = [f"{100 * row['agreement']:.1f}% [{100 * a_low:.1f}, {100 * a_high:.1f}]",
                        f"{100 * row['accuracy_gap']:+.1f} [{100 * g_low:+.1f}, {100 * g_high:+.1f}]"]
        lines.append(f"| {name} | {payload['sizes'][name] / 2**20:.0f} | {speed} | {100 * row['accuracy']:.1f}% "
                     f"[{100 * low:.1f}, {100 * high:.1f}] | {100 * row['parse_failure_rate']:.1f}% | "
                     + " | ".join(compared) + " |")
    return "\n".join(lines)


def main() -> None:
    from backends.export.model_path import resolve_gguf
    from lrl.cache import ResponseCache
    from lrl.domain import get_domain
    from lrl.export_job import ExportConfig, gate_runs
    from lrl.fidelity_gate import GateConfig, judge, render_gate
    from lrl.student_prompt import read_strategy

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="qwen0.5b")
    parser.add_argument("--adapter", required=True, help="PEFT adapter directory")
    parser.add_argument("--strategy", default=None, help="strategy text file, if the adapter was trained with it in the prompt")
    parser.add_argument("--work", default="bench/work-export-quant")
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--max-tokens", type=int, default=400)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--parallel", type=int, default=8, help="sequences decoded at once (answers and draft tails)")
    parser.add_argument("--decode-tokens", type=int, default=48)
    args = parser.parse_args()
    base, work = resolve_gguf(args.base), Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    domain = get_domain("scheduling")
    problems = domain.generate(args.items, seed=0, split="test", variant="balanced")
    entries = artifacts(base, Path(args.adapter), work)
    config = ExportConfig(strategy=read_strategy(args.strategy), max_tokens=args.max_tokens, n_threads=args.threads)
    cache = ResponseCache(work / "responses.sqlite")
    out = RESULTS / "export_table.json"
    payload = {"base": str(base), "adapter": args.adapter, "items": args.items, "max_tokens": args.max_tokens,
               "sizes": {name: e["bytes"] for name, e in entries.items()}, "started": time.time()}
    runs, seconds = gate_runs(entries, domain, problems, config, progress=item_progress(),
                              open_model=cached_opener(cache, args.threads, args.parallel))
    payload.update(gate=judge(runs, GateConfig(enforced=())), seconds_per_item=seconds, loadavg=os.getloadavg())
    out.write_bytes(orjson.dumps(payload, option=orjson.OPT_INDENT_2))
    print(render_gate(payload["gate"]), flush=True)
    models = {name: Path(e["path"]) for name, e in entries.items()}
    loras = {name: Path(e["path"]) for name, e in entries.items() if "base" in e}
    models.update({name: Path(entries[name]["base"]) for name in loras})
    payload.update(decode=decode_rates(models, args.decode_tokens, 3, args.threads, loras), loadavg_end=os.getloadavg())
    out.write_bytes(orjson.dumps(payload, option=orjson.OPT_INDENT_2))
    table = render_table(payload)
    out.with_suffix(".md").write_text(table + "\n", encoding="utf-8")
    print(table, f"\nwrote {out} and {out.with_suffix('.md').name}", sep="\n")


if __name__ == "__main__":
    main()
