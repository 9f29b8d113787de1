"""A LoRA that changes a tiny model's greedy answer: the default export keeps the change, and the gate
fails an artifact that lost it (the fused weights written without the delta, what 4-bit re-quantization
does to a small delta)."""
from __future__ import annotations

import shutil

import pytest

pytest.importorskip("jax")

from backends.export.fused_gguf import write_fused_gguf  # noqa: E402
from backends.llm import SamplingParams  # noqa: E402
from backends.spec import BackendOptions, build_llm  # noqa: E402
from lrl.domain import get_domain, write_jsonl  # noqa: E402
from lrl.export_job import ExportConfig, GateFailure, build_export, export_student, gate_export  # noqa: E402
from lrl.student_prompt import student_messages, training_chat  # noqa: E402
from tests.backends.export.peft_fixtures import tiny_gguf  # noqa: E402

LEARNED = "ANSWER: YES"
CONFIG = ExportConfig(quant="q4_k_m", max_tokens=16, n_ctx=1024)


@pytest.fixture(scope="module")
def learned(tmp_path_factory):
    """(base GGUF, adapter dir, problems): the adapter makes the model answer LEARNED where the base babbles."""
    from backends.student.finetune import finetune
    from backends.student.jax_trainer import TrainConfig
    from backends.student.lora import LoraConfig
    from k1core.optim import AdamWConfig

    tmp = tmp_path_factory.mktemp("learned")
    base, _, _ = tiny_gguf(tmp, "qwen2", wide=True)
    domain = get_domain("scheduling")
    problems = domain.generate(3, seed=0, split="test", variant="balanced")
    write_jsonl(tmp / "train.jsonl", [training_chat(domain, p, LEARNED) for p in problems])
    steps = 40
    finetune(base, tmp / "train.jsonl", None, TrainConfig(
        out_dir=str(tmp / "lora"), seq_len=1024, steps=steps, eval_every=0, checkpoint_every=steps, logit_chunk=64,
        lora=LoraConfig(rank=4, alpha=8.0),
        optim=AdamWConfig(lr=2e-2, min_lr=2e-3, warmup_steps=2, total_steps=steps, weight_decay=0.0)))
    return base, tmp / "lora" / "final", problems, domain


def greedy(spec: str, domain, problems) -> list[str]:
    llm = build_llm(spec, BackendOptions(n_ctx=1024, n_threads=1))
    try:
        return [llm.complete(student_messages(domain, p), SamplingParams(max_tokens=16)).text for p in problems]
    finally:
        llm.close()


@pytest.mark.slow
def test_default_export_keeps_the_learned_answer_and_the_gate_fails_one_that_lost_it(learned, tmp_path):
    base, adapter, problems, domain = learned
    assert not any(t.startswith(LEARNED) for t in greedy(f"llamacpp:{base}", domain, problems))  # the base never says it
    report = export_student(base, adapter, tmp_path / "student.gguf", CONFIG, domain, problems)
    assert report["gate"]["passed"] and report["gate"]["reference_check"]["changed_from_base"] == 1.0
    assert all(t.startswith(LEARNED) for t in greedy(report["deployed_spec"], domain, problems))
    assert report["deployed"] in report["gate"]["runs"] and report["gate"]["runs"][report["deployed"]]["enforced"]
    modelfile = (tmp_path / "Modelfile").read_text()
    assert ("ADAPTER ./student.lora.gguf" in modelfile) == (report["deployed"] == "adapter")

    lost = tmp_path / "lost"  # the same export, its fused file replaced by the weights without the delta
    lost.mkdir()
    built = build_export(base, adapter, lost / "student.gguf", CONFIG)
    write_fused_gguf(base, {}, tmp_path / "plain.gguf", "q8_0")
    shutil.copyfile(tmp_path / "plain.gguf", lost / "student.gguf")
    built["files"]["q4_k_m"]["sha256"] = "lost"
    with pytest.raises(GateFailure, match="q4_k_m: agreement 0.0%"):
        gate_export(built, ExportConfig(quant="q4_k_m", deploy="fused", max_tokens=16, n_ctx=1024), domain, problems)
    assert '"passed": false' in (lost / "student.export.json").read_text()
