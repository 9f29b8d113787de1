"""Stage 4: teach the strategy to the student's weights: curriculum -> LoRA -> GGUF export -> test evaluation.

1. Curriculum from the train split (verified teacher solutions + solver worked solutions in the
   strategy's steps), disjoint from dev and test; a tenth is held back as the trainer's validation set.
2. LoRA training with the JAX trainer (best adapter by validation loss).
3. Export: fused F16 and Q8_0, quantized to the configured type, with the fidelity gate run on the
   test split (a failing gate stops the run with its report written).
4. The exported GGUF's test evaluation is the gate's run of that quantization: the same items,
   the student's training prompt, greedy, in llama.cpp. It is paired with stage 0 (base student)
   and stage 1 (teacher) for McNemar tests when those stages ran.
Each step's outcome is saved in the stage state, so a resumed run skips what finished.
"""
from __future__ import annotations

from backends.export.model_path import resolve_gguf
from backends.spec import parse_spec
from k1core.errors import UserError
from lrl.curriculum import CurriculumConfig, build_curriculum
from lrl.domain import read_jsonl, write_jsonl
from lrl.export_job import ExportConfig, export_student
from lrl.run_config import STAGE_NAMES
from lrl.stages.context import StageContext, evaluation_summary
from lrl.transfer_report import transfer_summary

NAME = "4_lora_transfer"


def student_gguf(spec_text: str):
    """The student's base GGUF file; LoRA transfer needs local weights, not an API model."""
    spec = parse_spec(spec_text)
    if spec.backend != "llamacpp":
        raise UserError(f"stage 4 trains the student's weights, so --student must be a local GGUF "
                        f"(llamacpp:<file> or an alias), not {spec_text}")
    return resolve_gguf(spec_text)


def make_curriculum(ctx: StageContext, strategy: str, work) -> dict:
    cfg = ctx.config
    config = CurriculumConfig(n_problems=cfg.curriculum_size, variants=(cfg.variant,) if cfg.variant else (),
                              seed=cfg.seed, teacher_fraction=cfg.teacher_fraction,
                              strategy_in_prompt=cfg.student_strategy_in_prompt,
                              teacher_params=ctx.params(cfg.solve_max_tokens))
    curriculum = build_curriculum(ctx.domain, strategy, config, teacher=ctx.teacher,
                                  held_out=list(ctx.splits["dev"]) + list(ctx.splits["test"]))
    n_val = max(1, len(curriculum.lines) // 10)
    write_jsonl(work / "curriculum.val.jsonl", curriculum.lines[:n_val])
    write_jsonl(work / "curriculum.train.jsonl", curriculum.lines[n_val:])
    stats = curriculum.stats()
    ctx.echo(f"stage 4: curriculum of {stats['lines']} chats ({stats['from_teacher']} teacher, "
             f"{stats['from_solver']} solver); teacher solutions rejected: {stats['teacher_rejected']}/{stats['teacher_asked']}")
    return stats


def train_adapter(ctx: StageContext, base, work) -> dict:
    from backends.student.finetune import finetune
    from backends.student.jax_trainer import TrainConfig
    from backends.student.lora import LoraConfig
    from k1core.optim import AdamWConfig

    cfg = ctx.config
    steps = cfg.lora_steps
    tcfg = TrainConfig(out_dir=str(work / "lora"), steps=steps, seq_len=cfg.lora_seq_len,
                       lora=LoraConfig(rank=cfg.lora_rank, alpha=2.0 * cfg.lora_rank),
                       optim=AdamWConfig(lr=2e-4, min_lr=2e-5, warmup_steps=max(1, steps // 20), total_steps=steps,
                                         weight_decay=0.0),
                       eval_every=max(1, steps // 5), checkpoint_every=max(1, steps // 5), seed=cfg.seed)
    result = finetune(base, work / "curriculum.train.jsonl", work / "curriculum.val.jsonl", tcfg)
    return {"steps": result.steps_done, "best_val_loss": result.best_val, "history": result.history}


def run(ctx: StageContext, strategy: str) -> dict:
    """Curriculum, training, export with its gate, and the exported student's paired test evaluation."""
    cfg = ctx.config
    base = student_gguf(cfg.student)
    work = ctx.run / "transfer"
    work.mkdir(exist_ok=True)
    state = ctx.run.stage_state(NAME)
    steps = (("curriculum", lambda: make_curriculum(ctx, strategy, work)),
             ("training", lambda: train_adapter(ctx, base, work)))
    for key, step in steps:
        if key not in state:
            state[key] = step()
            ctx.run.save_stage_state(NAME, state)
    out = work / "student.gguf"
    if "export" not in state:
        export = export_student(base, work / "lora" / "best", out, ExportConfig(
            quant=cfg.export_quant, strategy=strategy if cfg.student_strategy_in_prompt else None,
            max_tokens=cfg.solve_max_tokens, n_threads=cfg.n_threads), ctx.domain, ctx.splits["test"])
        state["export"] = {"files": export["files"], "gate": export["gate"]}
        ctx.run.save_stage_state(NAME, state)
    records = [obj for _, obj in read_jsonl(work / f"student.gate-{cfg.export_quant}.jsonl")]
    result = {"model": f"llamacpp:{out.name}", "role": "student", "split": "test",
              "with_strategy": cfg.student_strategy_in_prompt,
              "prompt": "strategy" if cfg.student_strategy_in_prompt else "zero-shot",
              "summary": evaluation_summary(records, cfg.batch_size), "records": records,
              "curriculum": state["curriculum"], "training": {k: v for k, v in state["training"].items() if k != "history"},
              "export": state["export"]}
    base_state = ctx.run.stage_state(f"0_{STAGE_NAMES['0']}")
    teacher_state = ctx.run.stage_state(f"1_{STAGE_NAMES['1']}")
    if base_state.get("complete"):
        teacher_records = teacher_state["result"]["records"] if teacher_state.get("complete") else None
        result["transfer"] = transfer_summary(records, base_state["result"]["records"], teacher_records)
    return result
