"""`k1 export` as a library call: fuse the adapter, write F16 and Q8_0, quantize, run the fidelity gate.

Files written next to `out` (student.gguf):
    student.f16.gguf     the exact fused weights (the gate's reference)
    student.q8_0.gguf    Q8_0 written by the gguf package (identical to llama.cpp's own Q8_0)
    student.gguf         the requested quantization (llama.cpp's quantizer; a copy of Q8_0/F16 if asked)
    student.export.json / .md   what was done and the gate's verdict, written even when the gate fails
    student.lora.gguf    the adapter alone, for `llama-cli -m base.gguf --lora student.lora.gguf`
    Modelfile            for `ollama create student -f Modelfile` (the GGUF carries its own template)
The gate failing raises GateFailure (a UserError: one line, non-zero exit) after the report is written.
"""
from __future__ import annotations

import hashlib
import shutil
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import orjson

from backends.export.fused_gguf import write_fused_gguf
from backends.export.lora_gguf import write_lora_gguf
from backends.export.quantize import check_quant, quantize_gguf
from backends.llm import SamplingParams
from backends.student.peft_delta import read_peft_deltas
from k1core.errors import UserError
from lrl.domain import Problem, TransferDomain
from lrl.eval_run import EvalConfig, evaluate_model
from lrl.fidelity_gate import REFERENCE, GateConfig, judge, render_gate


class GateFailure(UserError):
    """The exported model does not answer like the fused model it was made from."""


@dataclass(frozen=True)
class ExportConfig:
    """What to produce and how to check it."""

    quant: str = "q4_k_m"
    gate: GateConfig = field(default_factory=GateConfig)
    run_gate: bool = True
    strategy: str | None = None  # the prompt format the student was trained with
    max_tokens: int = 512
    seed: int = 0  # sampling seed of the gate's greedy runs (part of their response-cache keys)
    n_threads: int | None = None
    n_ctx: int = 4096
    parallel: int = 1  # gate items decoded at once (llama.cpp batched decoding)

    def __post_init__(self):
        object.__setattr__(self, "quant", check_quant(self.quant))


def sibling(out: Path, tag: str) -> Path:
    """student.gguf -> student.<tag>.gguf"""
    return out.with_name(f"{out.stem}.{tag}.gguf")


def write_modelfile(out: Path) -> Path:
    """An Ollama Modelfile pointing at the export; greedy, like every evaluation here."""
    path = out.with_name("Modelfile")
    path.write_text(f"FROM ./{out.name}\nPARAMETER temperature 0\n", encoding="utf-8")
    return path


def build_files(base: Path, adapter_dir: Path, out: Path, config: ExportConfig) -> dict[str, Path]:
    """Fused F16 and Q8_0 files and the requested quantization; {quant: path}."""
    deltas = read_peft_deltas(adapter_dir)
    files = {REFERENCE: sibling(out, REFERENCE), "q8_0": sibling(out, "q8_0")}
    write_fused_gguf(base, deltas, files[REFERENCE], "f16")
    write_fused_gguf(base, deltas, files["q8_0"], "q8_0")
    if config.quant in files:
        shutil.copyfile(files[config.quant], out)
    else:
        quantize_gguf(files[REFERENCE], out, config.quant, n_threads=config.n_threads or 2)
    files[config.quant] = out
    return files


@contextmanager
def open_llamacpp(quant: str, path: Path, config: ExportConfig):
    """The default model opener of the gate: the file loaded straight into llama.cpp, closed after."""
    from backends.llamacpp_backend import LlamaCppLLM

    llm = LlamaCppLLM(path, model=f"export-{quant}", n_ctx=config.n_ctx, n_threads=config.n_threads,
                      parallel=config.parallel)
    try:
        yield llm
    finally:
        llm.close()


def gate_runs(files: dict[str, Path], domain: TransferDomain, problems: Sequence[Problem],
              config: ExportConfig, progress=None, open_model=open_llamacpp) -> tuple[dict[str, list[dict]], dict[str, float]]:
    """Greedy result records of every file on the gate problems, and seconds per item for each.

    `open_model(quant, path, config)` is a context manager giving the LLM for one file; a run
    routes it through its response cache so a killed gate resumes without asking again.
    """
    eval_config = EvalConfig(config.strategy, SamplingParams(temperature=0.0, max_tokens=config.max_tokens,
                                                             seed=config.seed))
    runs, seconds = {}, {}
    for quant, path in files.items():
        with open_model(quant, path, config) as llm:
            start = time.perf_counter()
            runs[quant] = evaluate_model(llm, domain, list(problems), eval_config, stage=f"export-{quant}",
                                         progress=(lambda d, n, q=quant: progress(q, d, n)) if progress else None)
            seconds[quant] = (time.perf_counter() - start) / max(1, len(problems))
    return runs, seconds


def file_digest(path: Path) -> str:
    """sha256 hex of a file, read in chunks (an F16 0.5B export is over a gigabyte)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def build_export(base: str | Path, adapter_dir: str | Path, out: str | Path, config: ExportConfig = ExportConfig()) -> dict:
    """Write every file of the export; the report's first half (files with sizes and sha256, extras)."""
    base, adapter_dir, out = Path(base), Path(adapter_dir), Path(out)
    if out.suffix != ".gguf":
        raise UserError(f"--out must end in .gguf, got {out}")
    out.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    files = build_files(base, adapter_dir, out, config)
    return {"base": str(base), "adapter": str(adapter_dir), "quant": config.quant,
            "files": {q: {"path": str(p), "bytes": p.stat().st_size, "sha256": file_digest(p)} for q, p in files.items()},
            "build_seconds": round(time.perf_counter() - started, 1), "config": asdict(config),
            "modelfile": str(write_modelfile(out)),
            "lora_gguf": str(write_lora_gguf(base, adapter_dir, out.with_name(f"{out.stem}.lora.gguf")))}


def gate_export(report: dict, config: ExportConfig, domain: TransferDomain | None = None,
                gate_problems: Sequence[Problem] = (), progress=None, open_model=open_llamacpp) -> dict:
    """Run the fidelity gate on a built export (unless switched off), write the report files next to
    the output, and raise GateFailure when an enforced quantization fails; returns the report."""
    out = Path(report["files"][config.quant]["path"])
    if config.run_gate:
        files = {q: Path(f["path"]) for q, f in report["files"].items()}
        runs, seconds = gate_runs(files, domain, gate_problems, config, progress, open_model)
        report = {**report, "gate": judge(runs, config.gate), "gate_seconds_per_item": seconds}
        for quant, records in runs.items():
            (out.parent / f"{out.stem}.gate-{quant}.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    json_path = out.with_name(f"{out.stem}.export.json")
    json_path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    out.with_name(f"{out.stem}.export.md").write_text(render_export(report), encoding="utf-8")
    if config.run_gate and not report["gate"]["passed"]:
        failing = [f"{q}: agreement {100 * r['agreement']:.1f}%, gap {100 * r['accuracy_gap']:+.1f} pts"
                   for q, r in report["gate"]["runs"].items() if r.get("enforced") and not r["passes"]]
        raise GateFailure(f"fidelity gate failed ({'; '.join(failing)}); report: {json_path}")
    return report


def export_student(base: str | Path, adapter_dir: str | Path, out: str | Path, config: ExportConfig = ExportConfig(),
                   domain: TransferDomain | None = None, gate_problems: Sequence[Problem] = (),
                   progress=None) -> dict:
    """Run the whole export (`k1 export`); returns the report (also written as JSON and markdown next to `out`)."""
    if config.run_gate and (domain is None or not gate_problems):
        raise UserError("the fidelity gate needs problems (give --gate-problems, or skip it with --no-gate)")
    return gate_export(build_export(base, adapter_dir, out, config), config, domain, gate_problems, progress)


def render_export(report: dict) -> str:
    """The export report as markdown: files and sizes, then the gate table."""
    lines = [f"## Export of {report['adapter']} onto {report['base']}", "",
             "| file | size |", "|---|---|"]
    lines += [f"| {f['path']} ({q}) | {f['bytes'] / 2**20:.1f} MiB |" for q, f in report["files"].items()]
    if "gate" in report:
        lines += ["", render_gate(report["gate"])]
    else:
        lines += ["", "Fidelity gate: skipped (--no-gate)."]
    return "\n".join(lines) + "\n"
