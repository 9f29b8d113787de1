"""`k1 export` as a library call: fuse the adapter, write F16 and Q8_0, quantize, gate, choose what to deploy.

Files written next to `out` (student.gguf):
    student.f16.gguf     the exact fused weights (the gate's reference)
    student.q8_0.gguf    Q8_0 written by the gguf package (identical to llama.cpp's own Q8_0)
    student.gguf         the requested fused quantization (llama.cpp's quantizer; a copy of Q8_0/F16 if asked)
    student.lora.gguf    the adapter alone: the base as given + this file is the `adapter` artifact
                         (`llama-cli -m base.gguf --lora student.lora.gguf`, spec `base.gguf+lora=student.lora.gguf`)
    Modelfile            `ollama create student -f Modelfile` for the deployed artifact (FROM + ADAPTER for `adapter`)
    student.export.json / .md   what was done, the gate's verdict and the deployed artifact, written even when the gate fails
The deployed artifact is the smallest one that passes the gate; without a gate it is `adapter`,
which keeps the delta in full precision: re-quantizing fused weights of an already quantized base
to 4 bits snaps most of a LoRA delta back onto the base's grid (bench/bench_export_quant.py).
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
from backends.llamacpp_draft import DraftCheckedLLM, messages_key
from backends.llm import SamplingParams
from backends.spec import BackendOptions, ModelSpec
from backends.student.peft_delta import read_peft_deltas
from k1core.errors import UserError
from lrl.domain import Problem, TransferDomain
from lrl.eval_run import EvalConfig, evaluate_model
from lrl.fidelity_gate import REFERENCE, GateConfig, judge, needs_base_run, render_gate
from lrl.sandbox import code_sandbox
from lrl.student_prompt import student_messages

ADAPTER = "adapter"  # the base GGUF as given, with the adapter GGUF applied by llama.cpp at load time
DEPLOY_CHOICES = ("auto", ADAPTER, "fused")


class GateFailure(UserError):
    """The exported model does not answer like the fused model it was made from."""


@dataclass(frozen=True)
class ExportConfig:
    """What to produce and how to check it."""

    quant: str = "q4_k_m"
    deploy: str = "auto"  # auto: the smallest artifact passing the gate; adapter; fused (the --quant file)
    gate: GateConfig = field(default_factory=GateConfig)
    run_gate: bool = True
    enforce_gate: bool = True  # False: a failing gate is reported, and nothing is raised
    strategy: str | None = None  # the prompt format the student was trained with
    max_tokens: int = 512
    seed: int = 0  # sampling seed of the gate's greedy runs (part of their response-cache keys)
    n_threads: int | None = None
    n_ctx: int = 4096
    parallel: int = 1  # gate items decoded at once (llama.cpp batched decoding)

    def __post_init__(self):
        object.__setattr__(self, "quant", check_quant(self.quant))
        if self.deploy not in DEPLOY_CHOICES:
            raise UserError(f"deploy must be one of {', '.join(DEPLOY_CHOICES)}, got {self.deploy!r}")


def sibling(out: Path, tag: str) -> Path:
    """student.gguf -> student.<tag>.gguf"""
    return out.with_name(f"{out.stem}.{tag}.gguf")


def write_modelfile(out: Path, entry: dict) -> Path:
    """An Ollama Modelfile for the deployed artifact (the base plus ADAPTER, or the fused file); greedy,
    like every evaluation here."""
    path = out.with_name("Modelfile")
    if "base" in entry:
        body = f"FROM {Path(entry['base']).resolve()}\nADAPTER ./{Path(entry['path']).name}\n"
    else:
        body = f"FROM ./{Path(entry['path']).name}\n"
    path.write_text(body + "PARAMETER temperature 0\n", encoding="utf-8")
    return path


def artifact_spec(entry: dict) -> ModelSpec:
    """The llamacpp model spec that runs one artifact of the report (`base+lora=adapter` for the adapter)."""
    if "base" in entry:
        return ModelSpec("llamacpp", entry["base"], adapter=entry["path"])
    return ModelSpec("llamacpp", entry["path"])


def build_files(base: Path, adapter_dir: Path, out: Path, config: ExportConfig) -> dict[str, Path]:
    """Fused F16 and Q8_0 files, the requested quantization and the adapter GGUF; {name: path}."""
    deltas = read_peft_deltas(adapter_dir)
    files = {REFERENCE: sibling(out, REFERENCE), "q8_0": sibling(out, "q8_0")}
    write_fused_gguf(base, deltas, files[REFERENCE], "f16")
    write_fused_gguf(base, deltas, files["q8_0"], "q8_0")
    if config.quant in files:
        shutil.copyfile(files[config.quant], out)
    else:
        quantize_gguf(files[REFERENCE], out, config.quant, n_threads=config.n_threads or 2)
    files[config.quant] = out
    files[ADAPTER] = write_lora_gguf(base, adapter_dir, out.with_name(f"{out.stem}.lora.gguf"))
    return files


@contextmanager
def open_llamacpp(name: str, entry: dict, config: ExportConfig, drafts: dict[str, str] | None):
    """The default model opener of the gate: the artifact loaded straight into llama.cpp (checking
    `drafts` when given), closed after."""
    from backends.spec import build_llm

    llm = build_llm(artifact_spec(entry), BackendOptions(n_threads=config.n_threads, n_ctx=config.n_ctx,
                                                         parallel=config.parallel))
    try:
        yield DraftCheckedLLM(llm, drafts) if drafts else llm
    finally:
        llm.close()


def gate_order(files: dict[str, dict], config: ExportConfig) -> list[str]:
    """The artifact that answers first (the likely deployed one; the others check its answers), then the rest."""
    first = config.quant if config.deploy == "fused" else ADAPTER
    return sorted(files, key=lambda name: name != first)


def gate_runs(files: dict[str, dict], domain: TransferDomain, problems: Sequence[Problem],
              config: ExportConfig, progress=None, open_model=open_llamacpp) -> tuple[dict[str, list[dict]], dict[str, float]]:
    """Greedy result records of every artifact on the gate problems, and seconds per item for each.

    The first artifact of `gate_order` writes its answers; every other one verifies them in one
    prompt pass and generates only where it parts from them (`llamacpp_draft`), which yields its
    own greedy answers at a fraction of the cost. `open_model(name, entry, config, drafts)` is a
    context manager giving the LLM for one artifact, a DraftCheckedLLM when `drafts` are given; a
    run puts its response cache around that, so a killed gate resumes without asking again.
    """
    eval_config = EvalConfig(config.strategy, SamplingParams(temperature=0.0, max_tokens=config.max_tokens,
                                                             seed=config.seed))
    runs, seconds, drafts = {}, {}, None
    for name in gate_order(files, config):
        with open_model(name, files[name], config, drafts) as llm:
            start = time.perf_counter()
            runs[name] = evaluate_model(llm, domain, list(problems), eval_config, stage=f"export-{name}",
                                        chunk_size=max(1, len(problems)),  # one bulk call: batched where the model can
                                        progress=(lambda d, n, q=name: progress(q, d, n)) if progress else None)
            seconds[name] = (time.perf_counter() - start) / max(1, len(problems))
        if drafts is None:
            drafts = {messages_key(student_messages(domain, p, config.strategy)): r["response"]
                      for p, r in zip(problems, runs[name])}
    return runs, seconds


def file_digest(path: Path) -> str:
    """sha256 hex of a file, read in chunks (an F16 0.5B export is over a gigabyte)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_entry(path: Path) -> dict:
    """A file of the report: path, size and sha256."""
    return {"path": str(path), "bytes": path.stat().st_size, "sha256": file_digest(path)}


def build_export(base: str | Path, adapter_dir: str | Path, out: str | Path, config: ExportConfig = ExportConfig()) -> dict:
    """Write every file of the export; the report's first half (artifacts with sizes and sha256).

    The adapter artifact's size counts the base it needs, so sizes compare what a device must hold."""
    base, adapter_dir, out = Path(base), Path(adapter_dir), Path(out)
    if out.suffix != ".gguf":
        raise UserError(f"--out must end in .gguf, got {out}")
    out.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    files = {name: file_entry(path) for name, path in build_files(base, adapter_dir, out, config).items()}
    base_entry = file_entry(base)
    files[ADAPTER].update(base=base_entry["path"], base_sha256=base_entry["sha256"],
                          adapter_bytes=files[ADAPTER]["bytes"], bytes=files[ADAPTER]["bytes"] + base_entry["bytes"])
    return {"base": str(base), "adapter": str(adapter_dir), "quant": config.quant, "files": files,
            "build_seconds": round(time.perf_counter() - started, 1), "config": asdict(config)}


def choose_deployed(report: dict, config: ExportConfig) -> str:
    """The artifact to deploy: as configured, or (auto) the smallest that passes the gate (adapter without one)."""
    if config.deploy != "auto":
        return config.quant if config.deploy == "fused" else ADAPTER
    gate = report.get("gate")
    if gate is None:
        return ADAPTER
    passing = [name for name, row in gate["runs"].items() if name != REFERENCE and row["passes"]]
    return min(passing or [ADAPTER], key=lambda name: report["files"][name]["bytes"])


def gate_export(report: dict, config: ExportConfig, domain: TransferDomain | None = None,
                gate_problems: Sequence[Problem] = (), progress=None, open_model=open_llamacpp) -> dict:
    """Run the fidelity gate on a built export (unless switched off), choose the deployed artifact, write
    the Modelfile and the report files next to the output, and raise GateFailure when an enforced
    artifact fails or the reference is uninformative; returns the report."""
    out = Path(report["files"][config.quant]["path"])
    if config.run_gate:
        runs, seconds = gate_runs(report["files"], domain, gate_problems, config, progress, open_model)
        base_run = None
        if needs_base_run(runs[REFERENCE]):  # one answer everywhere: did training change anything at all?
            base_entry = {"path": report["base"], "sha256": report["files"][ADAPTER]["base_sha256"]}
            base_run = gate_runs({"base": base_entry}, domain, gate_problems, config, progress, open_model)[0]["base"]
        report = {**report, "gate": judge(runs, config.gate, base=base_run), "gate_seconds_per_item": seconds}
        sandbox = code_sandbox([domain])
        if sandbox:
            report["sandbox"] = sandbox
        deployed = choose_deployed(report, config)
        report["gate"] = judge(runs, config.gate, deployed=deployed, base=base_run)
        for name, records in {**runs, **({"base": base_run} if base_run else {})}.items():
            (out.parent / f"{out.stem}.gate-{name}.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    deployed = choose_deployed(report, config)
    entry = report["files"][deployed]
    report = {**report, "deployed": deployed, "deployed_spec": str(artifact_spec(entry)),
              "modelfile": str(write_modelfile(out, entry))}
    json_path = out.with_name(f"{out.stem}.export.json")
    json_path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    out.with_name(f"{out.stem}.export.md").write_text(render_export(report), encoding="utf-8")
    if config.run_gate and config.enforce_gate and not report["gate"]["passed"]:
        failing = [f"{q}: agreement {100 * r['agreement']:.1f}% (95% upper bound {100 * r['agreement_ci95'][1]:.1f}%), "
                   f"gap {100 * r['accuracy_gap']:+.1f} pts [{100 * r['accuracy_gap_ci95'][0]:+.1f}, "
                   f"{100 * r['accuracy_gap_ci95'][1]:+.1f}]"
                   for q, r in report["gate"]["runs"].items() if r.get("enforced") and not r["passes"]]
        if not report["gate"]["reference_check"]["informative"]:
            failing.insert(0, "the fused F16 reference gives no answer or one answer everywhere, as the base student does")
        raise GateFailure(f"fidelity gate failed ({'; '.join(failing)}); report: {json_path}")
    return report


def export_student(base: str | Path, adapter_dir: str | Path, out: str | Path, config: ExportConfig = ExportConfig(),
                   domain: TransferDomain | None = None, gate_problems: Sequence[Problem] = (),
                   progress=None) -> dict:
    """Run the whole export (`k1 export`); returns the report (also written as JSON and markdown next to `out`)."""
    if config.run_gate and (domain is None or not gate_problems):
        raise UserError("the fidelity gate needs problems (give --gate-problems, or skip it with --no-gate)")
    if config.run_gate:
        code_sandbox([domain])  # a gate that would run model code unisolated is refused before the fusing
    return gate_export(build_export(base, adapter_dir, out, config), config, domain, gate_problems, progress)


def render_export(report: dict) -> str:
    """The export report as markdown: the deployed artifact, every artifact with its size, then the gate table."""
    how = ("the smallest artifact that passed the gate" if "gate" in report and report["config"]["deploy"] == "auto"
           else f"--deploy {report['config']['deploy']}" if report["config"]["deploy"] != "auto"
           else "the base + adapter, which keeps the delta in full precision (no gate ran)")
    lines = [f"## Export of {report['adapter']} onto {report['base']}", "",
             f"Deployed: **{report['deployed']}** ({how}); run it with `k1 chat {report['deployed_spec']}` "
             f"or `ollama create student -f {report['modelfile']}`.", "",
             "| artifact | file | size on device |", "|---|---|---|"]
    for name, f in report["files"].items():
        size = (f"{f['bytes'] / 2**20:.1f} MiB (base {(f['bytes'] - f['adapter_bytes']) / 2**20:.1f} + adapter "
                f"{f['adapter_bytes'] / 2**20:.1f})" if "base" in f else f"{f['bytes'] / 2**20:.1f} MiB")
        lines.append(f"| {name}{' (deployed)' if name == report['deployed'] else ''} | {f['path']} | {size} |")
    if "gate" in report:
        lines += ["", render_gate(report["gate"])]
    else:
        lines += ["", "Fidelity gate: skipped (--no-gate)."]
    warning = report.get("sandbox", {}).get("warning")
    if warning:
        lines[1:1] = ["", f"> **{warning}**"]
    return "\n".join(lines) + "\n"
