"""Stage 2: the teacher learns a strategy by solving, reflecting and distilling (Linguistic RL).

The training split is cut into batches of `batch_size`. After every batch the teacher reflects on
it, seeing its failures first and its own reasoning. Every `distill_every` batches (and after the
last batch) the reflections since the previous distillation are distilled into a candidate
strategy. Each candidate is scored on the validation split and adopted only if it beats both the
current best, which starts as the zero-shot prompt's validation accuracy, and the split's
majority class (a strategy that makes the teacher answer YES to everything can beat a weak
zero-shot prompt without having taught anything): a strategy that does not help is kept for
inspection but never used. The teacher solves later batches with the current
best strategy.

Every step is saved to `stages/2_bootstrap.json` before the next starts, so a killed run resumes
at the step it was in.
"""
from __future__ import annotations

import math

from lrl.domain import SUCCESS_OUTCOMES
from lrl.prompts import REFLECTION_ITEMS, RESPONSE_CHARS, distillation_messages, reflection_messages
from lrl.rundir import write_json_atomic, write_text_atomic
from lrl.stage import CallSizes, PlannedCall, ReportRow, Stage
from lrl.stages.context import (StageContext, earns_adoption, evaluate, evaluation_summary, majority_accuracy,
                                model_label)

def run(ctx: StageContext) -> dict:
    """Bootstrap a strategy; the stage's entry for results.json (batches, candidates, the best)."""
    cfg, teacher, dev = ctx.config, ctx.teacher, ctx.splits["dev"]
    zero_shot = evaluate(ctx, STAGE.key, "val_zero_shot", teacher, dev, None, "stage 2: validation, no strategy")
    best = {"candidate": None, "accuracy": evaluation_summary(zero_shot, cfg.batch_size)["accuracy"]}
    train = ctx.splits["train"]
    batches = [train[i:i + cfg.batch_size] for i in range(0, len(train), cfg.batch_size)]
    since_distillation: list[str] = []
    for b, batch in enumerate(batches):
        strategy = _text(ctx, best["candidate"])
        records = evaluate(ctx, STAGE.key, f"batch_{b:03d}", teacher, batch, strategy,
                           f"stage 2: batch {b + 1}/{len(batches)}")
        since_distillation.append(_reflection(ctx, b, batch, records, strategy))
        if (b + 1) % cfg.distill_every == 0 or b == len(batches) - 1:
            candidate = _distill(ctx, b, since_distillation, strategy)
            since_distillation = []
            best = _validate(ctx, candidate, best)
    return _result(ctx, best, len(batches))


def _state(ctx: StageContext) -> dict:
    return ctx.run.stage_state(STAGE.key)


def _update(ctx: StageContext, **changes) -> dict:
    state = {**_state(ctx), **changes}
    ctx.run.save_stage_state(STAGE.key, state)
    return state


def _text(ctx: StageContext, candidate: int | None) -> str | None:
    return None if candidate is None else _state(ctx)["candidates"][candidate]["text"]


def _reflection(ctx: StageContext, b: int, batch, records: list[dict], strategy: str | None) -> str:
    """The teacher's reflection on batch `b` (saved; a resumed run reads it back)."""
    reflections = _state(ctx).get("reflections", {})
    key = f"{b:03d}"
    if key not in reflections:
        messages = reflection_messages({p.id: p for p in batch}, records, strategy, ctx.domain)
        text = ctx.call_one(ctx.teacher, messages, ctx.config.reflect_max_tokens, f"{STAGE.key}/reflection/{key}", STAGE.key)
        reflections = {**reflections, key: text}
        _update(ctx, reflections=reflections)
        correct = sum(r["verdict"] in SUCCESS_OUTCOMES for r in records)
        ctx.run.journal(f"Stage 2, batch {b + 1}: {correct}/{len(records)} correct"
                        f"{' with the current strategy' if strategy else ' without a strategy'}. "
                        f"Reflection:\n\n> " + text.strip().replace("\n", "\n> "))
    return reflections[key]


def _distill(ctx: StageContext, b: int, reflections: list[str], strategy: str | None) -> int:
    """Index of the candidate distilled after batch `b`, distilling it unless already saved."""
    candidates = _state(ctx).get("candidates", [])
    for i, candidate in enumerate(candidates):
        if candidate["after_batch"] == b:
            return i
    index = len(candidates)
    messages = distillation_messages(reflections, strategy)
    text = ctx.call_one(ctx.teacher, messages, ctx.config.distill_max_tokens,
                        f"{STAGE.key}/distillation/{index:02d}", STAGE.key).strip()
    _update(ctx, candidates=candidates + [{"index": index, "after_batch": b, "text": text}])
    ctx.run.journal(f"Stage 2: candidate strategy {index:02d} distilled from {len(reflections)} reflections:\n\n> "
                    + text.replace("\n", "\n> "))
    return index


def _validate(ctx: StageContext, index: int, best: dict) -> dict:
    """Score candidate `index` on the validation split; adopt it only if it beats `best` and always
    answering the validation split's majority class."""
    candidate = _state(ctx)["candidates"][index]
    records = evaluate(ctx, STAGE.key, f"val_candidate_{index:02d}", ctx.teacher, ctx.splits["dev"],
                       candidate["text"], f"stage 2: validation, candidate {index:02d}")
    summary = evaluation_summary(records, ctx.config.batch_size)
    adopted = earns_adoption(summary, best["accuracy"])
    scored = {**candidate, "validation": summary, "adopted": adopted, "previous_best": best}
    state = _state(ctx)
    state["candidates"][index] = scored
    ctx.run.save_stage_state(STAGE.key, state)
    stem = ctx.run / "strategies" / f"{index:02d}"
    write_text_atomic(stem.with_suffix(".md"), candidate["text"] + "\n")
    write_json_atomic(stem.with_suffix(".json"), scored)
    ctx.run.journal(f"Stage 2: candidate {index:02d} scores {summary['accuracy']:.1%} on validation "
                    f"against the current best {best['accuracy']:.1%} and the majority class "
                    f"{majority_accuracy(summary):.1%}: "
                    f"{'adopted' if adopted else 'not adopted'}.")
    return {"candidate": index, "accuracy": summary["accuracy"]} if adopted else best


def _result(ctx: StageContext, best: dict, n_batches: int) -> dict:
    state = _state(ctx)
    batch_records = [r for b in range(n_batches) for r in state[f"batch_{b:03d}"]]
    candidates = state.get("candidates", [])
    return {
        "model": model_label(ctx.teacher), "role": "teacher", "split": "train",
        "training": evaluation_summary(batch_records, ctx.config.batch_size),
        "validation_zero_shot": evaluation_summary(state["val_zero_shot"], ctx.config.batch_size),
        "candidates": [{k: c[k] for k in ("index", "after_batch", "text", "adopted")}
                       | {"validation": c["validation"]} for c in candidates],
        "adopted": best["candidate"],
        "best_validation_accuracy": best["accuracy"],
    }


def final_strategy(result: dict) -> tuple[str | None, bool]:
    """(text, adopted): the adopted strategy, or, when no candidate beat the zero-shot prompt,
    the best-scoring candidate flagged as not adopted (None if there is no candidate)."""
    candidates = result["candidates"]
    if result["adopted"] is not None:
        return candidates[result["adopted"]]["text"], True
    if not candidates:
        return None, False
    best = max(candidates, key=lambda c: (c["validation"]["accuracy"], -c["index"]))
    return best["text"], False


def planned_calls(ctx: StageContext, sizes: CallSizes) -> list[PlannedCall]:
    """Validation solves (the dev split at once), training solves (a batch at once), one reflection per
    batch, one distillation per `distill_every` batches (each on its own)."""
    cfg, n_dev, n_train = ctx.config, len(ctx.splits["dev"]), len(ctx.splits["train"])
    batches = math.ceil(n_train / cfg.batch_size)
    distillations = math.ceil(batches / cfg.distill_every)
    reflect_in = REFLECTION_ITEMS * (sizes.solve_in + RESPONSE_CHARS // 4)
    distill_in = cfg.distill_every * cfg.reflect_max_tokens + cfg.distill_max_tokens
    return [PlannedCall("teacher", (1 + distillations) * n_dev, sizes.with_strategy_in, sizes.solve_out,
                        at_once=n_dev),
            PlannedCall("teacher", n_train, sizes.with_strategy_in, sizes.solve_out, at_once=cfg.batch_size),
            PlannedCall("teacher", batches, reflect_in, cfg.reflect_max_tokens, at_once=1),
            PlannedCall("teacher", distillations, distill_in, cfg.distill_max_tokens, at_once=1)]


def report_rows(result: dict) -> list[ReportRow]:
    """The teacher's accuracy on the training batches, each solved with the best strategy so far."""
    return [ReportRow(STAGE.title, result["model"], result["training"], "current best")]


STAGE = Stage("2", "bootstrap", "Teacher while learning (train)", run, planned_calls=planned_calls,
              report_rows=report_rows,
              plot_bars=lambda result: [("2 teacher while learning (train split)", result["training"])])
