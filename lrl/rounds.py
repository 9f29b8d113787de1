"""`--rounds 2`: the trained student's failures teach the teacher, and the transfer runs again.

After stage 4, the exported student answers the train and dev splits (never test) in its first
trained prompt format. The teacher reflects on its failures ("a student trained on strategy v1
failed these") and distills strategy v2, which is validated like any candidate: the teacher on the
dev split with v2 against v1, adopted only if it scores higher than v1 and than always answering
the majority class. An adopted v2 runs stage 4 again in
`round2/` (its own curriculum, training, export, gate and test evaluation, the response cache
shared), and the two exported students are compared on the same test items (exact McNemar), with
the strategy diff. Every step is saved in `stages/round2.json`, so a killed run resumes.
"""
from __future__ import annotations

import difflib
from dataclasses import replace

from lrl.domain import SUCCESS_OUTCOMES
from lrl.evaluation import compare
from lrl.prompts import distillation_messages, student_failure_messages
from lrl.rundir import RunDir, write_text_atomic
from lrl.stages import lora_transfer
from lrl.stages.context import StageContext, earns_adoption, evaluate, evaluation_summary
from lrl.student_prompt import prompt_strategy

NAME = "round2"


def run(ctx: StageContext, strategy_v1: str, round1: dict) -> dict:
    """Round 2 after a finished stage 4 (`round1` its result); the entry for results.json."""
    cfg, dev = ctx.config, ctx.splits["dev"]
    built = ctx.run.stage_state(lora_transfer.STAGE.key)
    practice = list(ctx.splits["train"]) + list(dev)
    fmt = round1["trained_prompts"][0]
    exported = lora_transfer.exported_llm(ctx, built["files"]["files"][built["export"]["deployed"]])
    records = evaluate(ctx, NAME, "student_practice", ctx.cached(exported), practice, prompt_strategy(fmt, strategy_v1),
                       "round 2: exported student on train+dev", max_tokens=built["curriculum"]["generation_limit"])
    exported.unload()
    failed = [r for r in records if r["verdict"] not in SUCCESS_OUTCOMES]
    result = {"practice": evaluation_summary(records, cfg.batch_size), "prompt": fmt}
    if not failed:
        return {**result, "skipped": "the round-1 student failed no train or dev problem"}
    problems = {p.id: p for p in practice}
    reflection = ctx.call_one(ctx.teacher, student_failure_messages(problems, records, strategy_v1, ctx.domain),
                              cfg.reflect_max_tokens, f"{NAME}/reflection", NAME)
    strategy_v2 = ctx.call_one(ctx.teacher, distillation_messages([reflection], strategy_v1), cfg.distill_max_tokens,
                               f"{NAME}/distillation", NAME).strip()
    write_text_atomic(ctx.run / "round2" / "strategy.md", strategy_v2 + "\n")
    v1 = evaluate(ctx, NAME, "validation_v1", ctx.teacher, dev, strategy_v1, "round 2: validation, strategy v1")
    v2 = evaluate(ctx, NAME, "validation_v2", ctx.teacher, dev, strategy_v2, "round 2: validation, strategy v2")
    result |= {"reflection": reflection, "strategy_v2": strategy_v2,
               "strategy_diff": strategy_diff(strategy_v1, strategy_v2),
               "validation_v1": evaluation_summary(v1, cfg.batch_size),
               "validation_v2": evaluation_summary(v2, cfg.batch_size),
               "validation_v2_vs_v1": compare(v2, v1)}
    if not earns_adoption(result["validation_v2"], result["validation_v1"]["accuracy"]):
        ctx.echo("round 2: strategy v2 did not beat v1 and the majority class on validation, "
                 "so there is no second transfer")
        return {**result, "skipped": "strategy v2 did not beat v1 and the majority class on validation"}
    round2 = lora_transfer.run(replace(ctx, run=RunDir(ctx.run / "round2"), strategy=strategy_v2))
    return {**result, "transfer": {k: v for k, v in round2.items() if k != "records"},
            "test_round2_vs_round1": compare(round2["records"], round1["records"])}


def strategy_diff(before: str, after: str) -> str:
    """A unified diff of two strategies, line by line."""
    return "\n".join(difflib.unified_diff(before.strip().splitlines(), after.strip().splitlines(),
                                          "strategy v1", "strategy v2", lineterm=""))
