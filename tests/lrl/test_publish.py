"""`k1 lrl publish` on a run of the rule-based test double, with stage 4's state written the way a
partly finished LoRA transfer leaves it (stage 4 itself needs real models): what is copied, what is
refused, and that the published records recompute the paired tests."""
from __future__ import annotations

import shutil

import numpy as np
import orjson
import pytest
from click.testing import CliRunner

import cli
from k1core.errors import UserError
from backends.student.peft_delta import read_peft_pairs
from backends.student.safetensors_io import bf16_bits, read_header, read_safetensors, write_safetensors
from lrl import accuracy_plot, publish as publishing
from lrl.evaluation import SUCCESS_OUTCOMES, score_files
from lrl.pipeline import run
from lrl.publish import RECORD_FIELDS, publish
from lrl.run_config import RunConfig
from lrl.rundir import RunDir
from tests.lrl.rules_llm import RulesLLM

CURRICULUM = {"lines": 40, "from_teacher": 15, "from_solver": 25, "by_prompt_format": {"zero-shot": 20, "strategy": 20},
              "trace_style": "compact", "target_tokens": {"median": 60, "max": 90}, "generation_limit": 135,
              "teacher_asked": 20, "teacher_max_tokens": 320, "teacher_rejected": 5,
              "teacher_rejected_by_reason": {"wrong answer": 3, "unparseable": 2}, "teacher_rejection_rate": 0.25}


def write_adapter(folder, floats: int) -> dict:
    """A PEFT adapter of the trainer's float32 for layer 0's q_proj: rank 4, `floats` numbers in A and in B."""
    rng = np.random.default_rng(0)
    stem = "base_model.model.model.layers.0.self_attn.q_proj"
    tensors = {f"{stem}.lora_A.weight": rng.standard_normal((4, floats // 4), np.float32) / 30,
               f"{stem}.lora_B.weight": rng.standard_normal((floats // 4, 4), np.float32) / 30}
    folder.mkdir(parents=True, exist_ok=True)
    write_safetensors(folder / "adapter_model.safetensors", tensors)
    (folder / "adapter_config.json").write_text('{"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj"]}')
    return tensors


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """Stages 0-3b by the rules double; stage 4 trained, exported and evaluated in the zero-shot format
    only (the teacher-with-strategy answers stand in for the exported student's, the base student's own)."""
    out = tmp_path_factory.mktemp("lrl") / "run"
    llm = RulesLLM()
    run(RunConfig(teacher="anthropic:claude-3-5-haiku-latest", student="qwen0.5b", out=out, n_train=20, n_val=10,
                  n_test=20), llms={"teacher": llm, "student": llm}, command=["k1", "lrl", "run", "--n-test", "20"])
    rundir = RunDir(out)
    rundir.save_stage_state("4_lora_transfer", {
        "strategy_sha256": "0" * 64, "curriculum": CURRICULUM, "training": {"steps": 10, "rows_per_step": 1, "examples": 36, "examples_trained": 13, "epochs_asked": None,
                                                           "epochs": 0.3611, "best_val_loss": 0.5},
        "exported_zero-shot": rundir.stage_state("3_teacher_strategy")["records"],
        "base_zero-shot": rundir.stage_state("0_student_baseline")["records"]})
    rundir.save_stage_state("4b_ood_transfer", {  # the out-of-distribution test, half done: its base student not yet
        "exported_large": rundir.stage_state("3_teacher_strategy")["records"]})
    best = out / "transfer" / "lora" / "best"
    best.mkdir(parents=True)
    write_adapter(best, 4 * 64)
    (out / "transfer" / "lora" / "checkpoint").mkdir()
    (out / "transfer" / "student.q4_k_m.gguf").write_bytes(b"GGUF")
    (out / "transfer" / "strategy.md").write_text("1. Sweep the sorted events.\n")
    return out


@pytest.fixture
def run_copy(finished_run, tmp_path):
    return shutil.copytree(finished_run, tmp_path / "run")


def test_publishes_the_record_the_adapter_and_an_index_but_no_weights(finished_run, tmp_path):
    dest = tmp_path / "results" / "scheduling-balanced"
    summary = publish(finished_run, dest)
    files = {str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file()}
    assert {"README.md", "report.md", "results.json", "config.json", "manifest.json", "journal.md", "ledger.json",
            "strategy.md", "candidates.md", "curriculum.json", "stages.json", "accuracy.png",
            "adapter/adapter_config.json", "adapter/adapter_model.safetensors",
            "records/stage4-exported-zero-shot.jsonl", "records/stage4-base-zero-shot.jsonl",
            "records/stage1-teacher-zero-shot.jsonl", "records/stage4b-exported-large.jsonl"} == files
    assert (dest / "accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (dest / "strategy.md").read_text() == "1. Sweep the sorted events.\n"  # what stage 4 taught
    readme = (dest / "README.md").read_text()
    assert "Stage 4 is partly finished (done: curriculum, training)" in readme and "absent" not in summary
    assert "| no strategy in prompt (`zero-shot`) | yes | 100.0% [83.9, 100.0] (20/20), 0.0% unparsed |" in readme
    assert "(always YES) | +" in readme and "McNemar p = " in readme
    assert "| `large` | 100.0% [83.9, 100.0] (20/20), 0.0% unparsed | not evaluated | 50.0% [" in readme
    assert f"k1 export --base qwen0.5b --adapter {dest / 'adapter'} --quant q4_k_m" in readme
    assert "`k1 lrl run --n-test 20`" in readme and "training has not finished" not in readme
    assert "by reason: unparseable: 2, wrong answer: 3" in readme
    assert "LoRA rank 8 for 10 steps (0.36 epochs of 36 training chats) at sequence length 512" in readme
    results = orjson.loads((finished_run / "results.json").read_bytes())
    candidates = (dest / "candidates.md").read_text()
    for c in results["stages"]["2"]["candidates"]:
        assert f"| {c['index']:02d} | {c['after_batch'] + 1} | {100 * c['validation']['accuracy']:.1f}% [" in candidates
        assert c["text"].strip() in candidates
    timing = orjson.loads((dest / "stages.json").read_bytes())
    assert len(timing["1_teacher_baseline"]["load_start"]) == 3 and timing["1_teacher_baseline"]["seconds"] >= 0
    assert not timing["4_lora_transfer"]["complete"] and "| 4_lora_transfer | no | not recorded |" in readme


def test_published_records_recompute_the_paired_test(finished_run, tmp_path):
    dest = tmp_path / "published"
    publish(finished_run, dest)
    exported, base = (dest / "records" / f"stage4-{who}-zero-shot.jsonl" for who in ("exported", "base"))
    rows = [orjson.loads(line) for line in exported.read_bytes().splitlines()]
    assert len(rows) == 20 and all(tuple(r) == RECORD_FIELDS for r in rows)
    paired = score_files(exported, against=base)["comparison"]
    state = RunDir(finished_run)
    won = {r["id"]: r["verdict"] in SUCCESS_OUTCOMES for r in state.stage_state("0_student_baseline")["records"]}
    assert (paired["n"], paired["only_a"], paired["only_b"]) == (20, sum(not w for w in won.values()), 0)
    assert f"McNemar p = {paired['mcnemar_exact_p']:.3g} ({paired['only_a']} vs 0 discordant, n = 20)" in \
        (dest / "README.md").read_text()


def test_bad_input_is_one_clear_error_and_leaves_nothing_half_written(finished_run, tmp_path):
    with pytest.raises(UserError, match="is not a `k1 lrl run` directory"):
        publish(tmp_path / "missing", tmp_path / "a")
    without = shutil.copytree(finished_run, tmp_path / "no4")
    (without / "stages" / "4_lora_transfer.json").unlink()
    with pytest.raises(UserError, match="has no stage 4"):
        publish(without, tmp_path / "b")
    dest = tmp_path / "c"
    publish(finished_run, dest)
    with pytest.raises(UserError, match="already exists; .* --force"):
        publish(finished_run, dest)
    (dest / "stale.txt").write_text("from an earlier publish")
    publish(finished_run, dest, force=True)
    assert not (dest / "stale.txt").exists() and (dest / "README.md").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c", "no4"]


def test_the_adapter_is_published_in_bf16_at_half_the_size(finished_run, tmp_path):
    dest = tmp_path / "published"
    publish(finished_run, dest)
    source = finished_run / "transfer" / "lora" / "best" / "adapter_model.safetensors"
    published = dest / "adapter" / "adapter_model.safetensors"
    header, _ = read_header(published)
    assert {t["dtype"] for name, t in header.items() if name != "__metadata__"} == {"BF16"}
    original, back = read_safetensors(source), read_safetensors(published)
    for name, x in original.items():  # each value is its float32 rounded to bf16
        assert np.array_equal(back[name], (bf16_bits(x).astype(np.uint32) << 16).view(np.float32))
        assert np.abs(back[name] - x).max() <= 2 ** -8 * np.abs(x).max() and not np.array_equal(back[name], x)
    pairs, config = read_peft_pairs(dest / "adapter")  # what k1 export reads
    assert config["r"] == 4 and set(pairs) == {"model.layers.0.self_attn.q_proj.weight"}
    assert published.stat().st_size < 0.6 * source.stat().st_size
    manifest = orjson.loads((dest / "manifest.json").read_bytes())
    assert manifest["published"]["adapter"] == {
        "file": "adapter/adapter_model.safetensors", "dtype": "BF16", "bytes": published.stat().st_size,
        "source_dtypes": ["F32"], "source_bytes": source.stat().st_size}
    run_manifest = orjson.loads((finished_run / "manifest.json").read_bytes())
    assert {k: v for k, v in manifest.items() if k != "published"} == run_manifest  # otherwise as the run wrote it
    assert "holds the adapter's weights in bf16" in (dest / "README.md").read_text()


def test_the_adapter_is_judged_by_its_bf16_size(run_copy, tmp_path, monkeypatch):
    monkeypatch.setattr(publishing, "MAX_BYTES", 2 ** 19)
    best = run_copy / "transfer" / "lora" / "best"
    write_adapter(best, 100_000)  # 800 kB of float32, 400 kB of bf16
    publish(run_copy, tmp_path / "fits")
    write_adapter(best, 140_000)  # 560 kB of bf16
    with pytest.raises(UserError, match="refusing to publish .*adapter_model.safetensors: it is over 0.5 MB"):
        publish(run_copy, tmp_path / "over")
    assert not (tmp_path / "over").exists()


@pytest.mark.parametrize("name, size, reason", [("student.gguf", 10, "a GGUF model"),
                                                ("optimizer.safetensors", 10, "a training checkpoint"),
                                                ("notes.txt", 2 ** 20, "over 0.5 MB")])
def test_refuses_weights_checkpoints_and_large_files(run_copy, tmp_path, monkeypatch, name, size, reason):
    monkeypatch.setattr(publishing, "MAX_BYTES", 2 ** 19)
    (run_copy / "transfer" / "lora" / "best" / name).write_bytes(b"\0" * size)
    with pytest.raises(UserError, match=f"refusing to publish .*{name}: it is {reason}"):
        publish(run_copy, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / ".out.publishing").exists()


def test_says_what_is_absent(run_copy, tmp_path, monkeypatch):
    monkeypatch.setattr(accuracy_plot, "pyplot", lambda: None)
    shutil.rmtree(run_copy / "transfer" / "lora")
    (run_copy / "stages" / "4b_ood_transfer.json").unlink()
    summary = publish(run_copy, tmp_path / "out")
    assert "absent: adapter/: stage 4 has not trained an adapter yet" in summary
    assert "absent: the out-of-distribution test: stage 4b has not evaluated the exported student yet" in summary
    assert "absent: no accuracy plot: matplotlib is not installed (pip install 'k1[plot]')" in summary
    readme = (tmp_path / "out" / "README.md").read_text()
    assert "## Absent" in readme and "Rebuild the student" not in readme and "accuracy.png" not in readme


def test_cli_publishes_and_reports_bad_input_in_one_line(finished_run, tmp_path):
    runner = CliRunner()
    ok = runner.invoke(cli.main, ["lrl", "publish", str(finished_run), str(tmp_path / "out")])
    assert ok.exit_code == 0 and f"published {finished_run} to {tmp_path / 'out'}" in ok.output
    again = runner.invoke(cli.main, ["lrl", "publish", str(finished_run), str(tmp_path / "out")])
    assert again.exit_code == 2 and again.output.count("\n") == 1 and again.output.startswith("k1: error: ")


def test_the_readme_names_the_lora_length_asked_until_stage_4_records_it():
    from lrl.publish_readme import _lora_length

    assert _lora_length({"lora_steps": 100}, {"steps": 100, "best_val_loss": 0.5}) == "100 steps"
    assert _lora_length({"lora_steps": None, "lora_epochs": 1.0}, None) == "1 epoch(s) of the curriculum"


def test_a_second_round_is_published_with_strategy_v2_and_its_paired_validation(run_copy, tmp_path):
    from lrl.evaluation import compare, summarize

    state = RunDir(run_copy)
    v1, v2 = (state.stage_state(name)["records"] for name in ("3_teacher_strategy", "0_student_baseline"))
    results = orjson.loads((run_copy / "results.json").read_bytes())
    results["round2"] = {"practice": summarize(v2), "prompt": "zero-shot", "validation_v1": summarize(v1),
                         "validation_v2": summarize(v2), "validation_v2_vs_v1": compare(v2, v1),
                         "skipped": "strategy v2 did not beat v1 and the majority class on validation"}
    (run_copy / "results.json").write_bytes(orjson.dumps(results))
    (run_copy / "round2").mkdir()
    (run_copy / "round2" / "strategy.md").write_text("1. Sort the events.\n")
    dest = tmp_path / "published"
    publish(run_copy, dest)
    assert (dest / "round2" / "strategy.md").read_text() == "1. Sort the events.\n"
    readme = (dest / "README.md").read_text()
    paired = results["round2"]["validation_v2_vs_v1"]
    assert "## Round 2: the student's failures teach the teacher" in readme
    assert f"v2 − v1 {100 * paired['difference']:+.1f} pts [" in readme and "([round2/strategy.md](round2/strategy.md))" in readme
    assert "No second transfer: strategy v2 did not beat v1 and the majority class on validation." in readme
