"""`k1 lrl publish`: a run's shareable record, copied into a folder meant to be committed.

What travels: the run's reports and JSON (report.md, results.json, config.json, manifest.json,
journal.md, ledger.json), the taught strategy, every stage-2 candidate with its validation score
(candidates.md), stage 4's curriculum statistics, each stage's wall time and load averages
(stages.json), the test records of stage 4, of its out-of-distribution test (4b) and of the teacher
baseline as compact JSONL (so the paired tests can be recomputed), a PNG of every accuracy with its
CI, the PEFT adapter that `k1 export` turns back into the GGUF (its weights in bf16, half the
trainer's float32; the published manifest.json records the dtype), and a README that indexes it all. What never travels: GGUF
files, training checkpoints, the response cache, the prompt log, or any file over MAX_BYTES: a
results folder is for git, and the weights are rebuilt from the adapter.

The folder is assembled beside the destination and renamed into place, so a refusal halfway
leaves no half-written folder.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import orjson

from backends.student.safetensors_io import read_header, read_safetensors, write_safetensors
from k1core.errors import UserError
from lrl.accuracy_plot import plot_accuracies
from lrl.evaluation import compare, summarize
from lrl.publish_readme import render_candidates, render_readme
from lrl.rundir import read_json, write_json_atomic, write_text_atomic
from lrl.stage import stage_order
from lrl.stages import get_stage
from lrl.student_prompt import PROMPT_FORMATS, TRAINING_PROMPTS

MAX_BYTES = 20 * 1024 * 1024  # a results folder goes into git; the LoRA adapter is a few MB
ADAPTER_WEIGHTS = "adapter_model.safetensors"  # PEFT's name for the adapter's tensors
COPIED = ("report.md", "results.json", "config.json", "manifest.json", "journal.md", "ledger.json")
TRANSFER_STATE, TEACHER_STATE, BOOTSTRAP_STATE = "4_lora_transfer", "1_teacher_baseline", "2_bootstrap"
OOD_STATE = "4b_ood_transfer"
TRANSFER_STEPS = ("validation", "curriculum", "training", "files", "export")
RECORD_FIELDS = ("id", "expected", "parsed", "verdict", "response")


def publish(run_dir, dest, force: bool = False) -> str:
    """Copy the shareable record of the `k1 lrl run` directory `run_dir` into `dest`; returns a summary."""
    run, dest = Path(run_dir), Path(dest)
    transfer = _transfer_state(run)
    if dest.exists() and not (force and dest.is_dir()):
        raise UserError(f"{dest} already exists; choose another folder or pass --force to replace it"
                        if dest.is_dir() else f"{dest} exists and is not a folder")
    building = dest.with_name(f".{dest.name}.publishing")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    try:
        notes = _assemble(run, transfer, dest, building)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    if dest.exists():
        shutil.rmtree(dest)
    building.rename(dest)
    return "\n".join([f"published {run} to {dest}"] + notes)


def _transfer_state(run: Path) -> dict:
    """Stage 4's saved state; UserError when the run directory or its stage 4 is missing."""
    if not (run / "config.json").is_file():
        raise UserError(f"{run} is not a `k1 lrl run` directory (no config.json)")
    state = read_json(run / "stages" / f"{TRANSFER_STATE}.json")
    if not state:
        raise UserError(f"{run} has no stage 4 (stages/{TRANSFER_STATE}.json); publishing is for the LoRA "
                        "transfer: run it with --stages all")
    return state


def _assemble(run: Path, transfer: dict, dest: Path, out: Path) -> list[str]:
    """Write every part into `out`; returns one note per part that is absent, and the plot's note."""
    config, results = read_json(run / "config.json"), read_json(run / "results.json", {})
    absent = []
    for name in COPIED:
        _copy_or_note(run / name, out / name, absent, f"{name}: not written yet (the run writes it as it ends)")
    taught = next((p for p in (run / "transfer" / "strategy.md", run / "strategy.md") if p.is_file()), None)
    _copy_or_note(taught, out / "strategy.md", absent, "strategy.md: the run has no strategy")
    if "round2" in results:
        _copy_or_note(run / "round2" / "strategy.md", out / "round2" / "strategy.md", absent,
                      "round2/strategy.md: round 2 distilled no strategy v2")
    boot = read_json(run / "stages" / f"{BOOTSTRAP_STATE}.json", {})
    if boot.get("candidates"):
        write_text_atomic(out / "candidates.md", render_candidates(boot))
    else:
        absent.append("candidates.md: " + ("stage 2 distilled no candidate" if boot else "stage 2 did not run here"))
    if "curriculum" in transfer:
        write_json_atomic(out / "curriculum.json", transfer["curriculum"])
    timings = stage_timings(run)
    write_json_atomic(out / "stages.json", timings)
    adapter = _copy_adapter(run / "transfer" / "lora" / "best", out / "adapter", absent)
    if adapter and (out / "manifest.json").is_file():  # the run's manifest, plus what publishing changed
        manifest = read_json(out / "manifest.json")
        write_json_atomic(out / "manifest.json", {**manifest, "published": {"adapter": adapter}})
    teacher = read_json(run / "stages" / f"{TEACHER_STATE}.json", {}).get("records")
    trained = TRAINING_PROMPTS[config["student_prompts"]]
    headline = transfer_headline(transfer, teacher, trained)
    ood = read_json(run / "stages" / f"{OOD_STATE}.json", {})
    beyond = ood_headline(ood)
    records = _write_records(transfer, teacher, ood, out / "records", absent)
    if not headline:
        absent.append("the headline: stage 4 has not evaluated the exported student yet")
    if not beyond:
        absent.append("the out-of-distribution test: stage 4b has not evaluated the exported student yet")
    bars = stage_bars(results, headline, beyond)
    majority = next((h["exported"]["classes"]["majority_baseline"]["accuracy"] for h in headline.values()
                     if h["exported"]["classes"]), None)
    plotted = plot_accuracies(bars, majority, out / "accuracy.png") if bars else "no accuracy plot: nothing evaluated"
    if not (out / "accuracy.png").exists():
        absent.append(plotted)
    finished = [step for step in TRANSFER_STEPS if step in transfer]
    write_text_atomic(out / "README.md", render_readme(
        name=dest.name, dest=dest, config=config, manifest=read_json(run / "manifest.json", {}),
        training=transfer.get("training"), headline=headline, ood=beyond, bars=bars, timings=timings,
        curriculum=transfer.get("curriculum"), boot=boot, adapter=adapter, records=records,
        second_round=results.get("round2"),
        stage4_complete=bool(transfer.get("complete")), stage4_steps=finished,
        files=sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) + ["README.md"], absent=absent))
    return [f"absent: {note}" for note in absent] + ([plotted] if (out / "accuracy.png").exists() else [])


def _refuse_weights(path: Path, size: int) -> None:
    """UserError for a file that must not go into a results folder: weights, checkpoints, anything whose
    `size` (the bytes it takes there) is large."""
    kind = ("a GGUF model" if path.suffix == ".gguf" else
            "a training checkpoint" if "checkpoint" in path.name or "optimizer" in path.name else
            f"over {MAX_BYTES / 2 ** 20:.3g} MB" if size > MAX_BYTES else None)
    if kind:
        raise UserError(f"refusing to publish {path}: it is {kind}; a results folder holds records, not weights")


def _copy_or_note(source: Path | None, target: Path, absent: list[str], note: str) -> None:
    if source is None or not source.is_file():
        absent.append(note)
        return
    _refuse_weights(source, source.stat().st_size)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)


def _copy_adapter(source: Path, target: Path, absent: list[str]) -> dict | None:
    """The PEFT adapter (adapter_config.json + safetensors), its weights written as bf16 (half the bytes
    of the trainer's float32; PEFT and `k1 export` read either), refusing anything that is not one.
    Returns what was written: file, dtype, the source's dtypes, both sizes; None when there is no adapter."""
    if not (source / "adapter_config.json").is_file():
        absent.append("adapter/: stage 4 has not trained an adapter yet")
        return None
    target.mkdir()
    written = None
    for path in sorted(source.iterdir()):
        if path.is_dir():
            raise UserError(f"refusing to publish {path}: an adapter folder holds files, not folders")
        if path.name != ADAPTER_WEIGHTS:
            _refuse_weights(path, path.stat().st_size)
            shutil.copyfile(path, target / path.name)
            continue
        header, _ = read_header(path)
        write_safetensors(target / path.name, read_safetensors(path), dtype="BF16")
        written = {"file": f"{target.name}/{path.name}", "dtype": "BF16", "bytes": (target / path.name).stat().st_size,
                   "source_dtypes": sorted({t["dtype"] for k, t in header.items() if k != "__metadata__"}),
                   "source_bytes": path.stat().st_size}
        _refuse_weights(path, written["bytes"])  # the size that counts is the one written
    if written is None:
        raise UserError(f"refusing to publish {source}: it has adapter_config.json but no {ADAPTER_WEIGHTS}")
    return written


def _write_records(transfer: dict, teacher: list[dict] | None, ood: dict, folder: Path, absent: list[str]) -> list[str]:
    """Compact test records (id, expected, parsed, verdict, response), one JSONL per model and format
    (stage 4) or variant (stage 4b)."""
    runs = {f"stage4-{who}-{fmt}": transfer[f"{who}_{fmt}"]
            for who in ("exported", "base") for fmt in PROMPT_FORMATS if transfer.get(f"{who}_{fmt}")}
    runs.update({f"stage4b-{who}-{variant}": ood[f"{who}_{variant}"]
                 for variant in ood_variants(ood) for who in ("exported", "base") if ood.get(f"{who}_{variant}")})
    if teacher:
        runs["stage1-teacher-zero-shot"] = teacher
    written = []
    for name, records in runs.items():
        text = b"".join(orjson.dumps({k: r.get(k) for k in RECORD_FIELDS}) + b"\n" for r in records)
        if len(text) > MAX_BYTES:
            absent.append(f"records/{name}.jsonl: {len(text) / 2 ** 20:.0f} MB is over the size limit")
            continue
        folder.mkdir(exist_ok=True)
        (folder / f"{name}.jsonl").write_bytes(text)
        written.append(f"records/{name}.jsonl")
    return written


def transfer_headline(transfer: dict, teacher: list[dict] | None, trained: tuple[str, ...]) -> dict:
    """Per prompt format evaluated so far: the exported student, and paired with it on the same items
    the base student and the teacher (stage 1), with exact McNemar tests against each."""
    headline = {}
    for fmt in PROMPT_FORMATS:
        exported = transfer.get(f"exported_{fmt}")
        if not exported:
            continue
        row = {"trained": fmt in trained, "exported": summarize(exported)}
        for who, other in (("base", transfer.get(f"base_{fmt}")), ("teacher", teacher)):
            if other:
                mine, theirs = _same_items(exported, other)
                row[who], row[f"vs_{who}"] = summarize(theirs), compare(mine, theirs)
        headline[fmt] = row
    return headline


def ood_variants(ood: dict) -> list[str]:
    """The variants stage 4b's saved state holds records of, in the order it asked them."""
    return [key.removeprefix("exported_") for key in ood if key.startswith("exported_")]


def ood_headline(ood: dict) -> dict:
    """Per out-of-distribution variant evaluated so far: the exported student, and paired with it the
    base student on the items both answered."""
    headline = {}
    for variant in ood_variants(ood):
        exported, base = ood[f"exported_{variant}"], ood.get(f"base_{variant}")
        row = {"exported": summarize(exported)}
        if base:
            mine, theirs = _same_items(exported, base)
            row["base"], row["vs_base"] = summarize(theirs), compare(mine, theirs)
        headline[variant] = row
    return headline


def _same_items(a: list[dict], b: list[dict]) -> tuple[list[dict], list[dict]]:
    """The records of both runs on the items both answered (a partly finished evaluation pairs on fewer)."""
    shared = {r["id"] for r in a} & {r["id"] for r in b}
    return [r for r in a if r["id"] in shared], [r for r in b if r["id"] in shared]


def stage_bars(results: dict, headline: dict, ood: dict) -> list[tuple[str, dict]]:
    """(label, summary) of every accuracy the run measured, in stage order, stages 4 and 4b from their records."""
    bars = []
    for stage, result in sorted(results.get("stages", {}).items(), key=lambda kv: stage_order(kv[0])):
        if "skipped" not in result:
            bars += get_stage(stage).bars(result)
    for fmt, row in headline.items():
        bars.append((f"4 exported student, {fmt}", row["exported"]))
        if "base" in row:
            bars.append((f"4 base student, {fmt}", row["base"]))
    for variant, row in ood.items():
        bars += [(f"4b {who} student, {variant}", row[who]) for who in ("exported", "base") if who in row]
    return bars


def stage_timings(run: Path) -> dict:
    """Per stage state file: wall time and load averages when recorded, and the ledger's calls for it."""
    ledger = read_json(run / "ledger.json", {}).get("stages", {})
    timings = {}
    for path in sorted((run / "stages").glob("*.json"), key=lambda p: stage_order(p.stem.split("_")[0])):
        state = read_json(path, {})
        tally = ledger.get(path.stem, {})
        timings[path.stem] = {"complete": bool(state.get("complete")), **state.get("timing", {}),
                              "calls": tally.get("calls"), "cache_hits": tally.get("cache_hits")}
    return timings
