"""report.md: the published results table (stage, model, accuracy), with what it left out.

Next to each accuracy: its Wilson 95% CI, what always answering the majority class scores on the
same items, the parse-failure rate and per-batch statistics; then per-difficulty accuracy, the
strategy candidates with their validation scores, the paired tests and the cost.
"""
from __future__ import annotations

from lrl.stage import ReportRow
from lrl.stages import all_stages, get_stage
from lrl.stats import percent
from lrl.transfer_report import paired_text


def _ci(acc: dict) -> str:
    low, high = acc["ci95"]
    return f"{percent(low)}–{percent(high)}"


def _majority(summary: dict) -> str:
    classes = summary.get("classes")
    if not classes:
        return "n/a"
    base = classes["majority_baseline"]
    return f"{percent(base['accuracy'])} (always {classes['majority_class']})"


def _row(stage: str, row: ReportRow) -> str:
    summary, batches = row.summary, row.summary["per_batch"]
    return (f"| {stage} | {row.title} | {row.model} | {row.prompt} | **{percent(summary['accuracy'])}** "
            f"({summary['correct']}/{summary['n']}) | {_ci(summary)} | {_majority(summary)} | "
            f"{percent(summary['parse_failure_rate'])} | {percent(batches['mean'])} ± {percent(batches['sd'])}, "
            f"{batches['perfect_batches']}/{batches['batches']} perfect |")


def _main_table(stages: dict) -> list[str]:
    lines = ["| Stage | What | Model | Prompt | Accuracy | Wilson 95% CI | Majority baseline | Parse failures "
             "| Per batch: mean ± SD, perfect |", "|---|---|---|---|---|---|---|---|---|"]
    for stage, result in stages.items():
        if "skipped" in result:
            lines.append(f"| {stage} | {get_stage(stage).title} | | skipped ({result['skipped']}) | | | | | |")
        else:
            lines += [_row(stage, row) for row in get_stage(stage).rows(result)]
    return lines


def _difficulty_table(stages: dict) -> list[str]:
    lines = ["| Stage | Difficulty | Accuracy | Wilson 95% CI |", "|---|---|---|---|"]
    for stage, result in stages.items():
        summary = result.get("summary") or result.get("training")
        if not summary:
            continue
        for difficulty, acc in summary["by_difficulty"].items():
            lines.append(f"| {stage} | {difficulty} | {percent(acc['accuracy'])} ({acc['correct']}/{acc['n']}) "
                         f"| {_ci(acc)} |")
    return lines


def _candidates(boot: dict) -> list[str]:
    zero = boot["validation_zero_shot"]
    lines = [f"Validation without a strategy: {percent(zero['accuracy'])} ({zero['correct']}/{zero['n']}, "
             f"CI {_ci(zero)}). A candidate is adopted only if it beats the best so far and always answering "
             "the majority class.", "",
             "| Candidate | After batch | Validation accuracy | Wilson 95% CI | Adopted |", "|---|---|---|---|---|"]
    for c in boot["candidates"]:
        v = c["validation"]
        lines.append(f"| strategies/{c['index']:02d}.md | {c['after_batch'] + 1} | {percent(v['accuracy'])} "
                     f"({v['correct']}/{v['n']}) | {_ci(v)} | {'yes' if c['adopted'] else 'no'} |")
    return lines


def _comparisons(comparisons: dict) -> list[str]:
    names = {key: title for stage in all_stages() for key, title in stage.comparison_titles.items()}
    names["round2_vs_round1"] = "Round-2 exported student (A) vs round 1 (B)"
    lines = ["| Comparison | n | only A right | only B right | A − B | Newcombe 95% CI | exact McNemar p |",
             "|---|---|---|---|---|---|---|"]
    for key, c in comparisons.items():
        low, high = c["difference_ci95"]
        lines.append(f"| {names.get(key) or c.get('title', key)} | {c['n']} | {c['only_a']} | {c['only_b']} | {100 * c['difference']:+.1f} pts "
                     f"| {100 * low:+.1f} to {100 * high:+.1f} | {c['mcnemar_exact_p']:.3g} |")
    return lines


def _taught(result: dict) -> str:
    """Where stage 4's strategy came from, and how the teacher scores with it against without it on validation."""
    origin = result["strategy"]
    source = origin["source"] + (f" (`{origin['file']}`, sha256 {origin['sha256'][:12]})" if "file" in origin else "")
    if origin.get("review") and "review" not in source:
        source += f"; the reviewer chose to {origin['review']} it"
    check = result["strategy_validation"]
    with_it, without, paired = check["with_strategy"], check["without_strategy"], check["comparison"]
    low, high = paired["difference_ci95"]
    return (f"Stage 4 taught `transfer/strategy.md`, {source}. On the validation split the teacher scores "
            f"{percent(with_it['accuracy'])} ({with_it['correct']}/{with_it['n']}, CI {_ci(with_it)}) with it and "
            f"{percent(without['accuracy'])} ({without['correct']}/{without['n']}, CI {_ci(without)}) without it: "
            f"{100 * paired['difference']:+.1f} pts, paired 95% CI {100 * low:+.1f} to {100 * high:+.1f}, "
            f"exact McNemar p = {paired['mcnemar_exact_p']:.3g}.")


def _rejections(curriculum: dict) -> list[str]:
    """The teacher's rejected solutions by reason, most common first."""
    by_reason = curriculum["teacher_rejected_by_reason"]
    if not by_reason:
        return ["No teacher solution was rejected." if curriculum["teacher_asked"] else "The teacher wrote no targets."]
    return ["| Rejection reason | Solutions |", "|---|---|"] + [f"| {reason} | {count} |"
                                                              for reason, count in by_reason.items()]


def _lora_length(train: dict) -> str:
    """Steps, and the epochs they made of the curriculum's training chats (a stage 4 that recorded them)."""
    if "epochs" not in train:
        return f"{train['steps']} steps"
    how = "steps given" if train["epochs_asked"] is None else f"{train['epochs_asked']:g} asked"
    return (f"{train['steps']} steps of {train['rows_per_step']} packed row(s), {train['examples_trained']} chats "
            f"trained: {train['epochs']:.2f} epochs of the {train['examples']} training chats ({how})")


def _transfer(result: dict) -> list[str]:
    """Curriculum provenance, training, the export's fidelity gate, and both prompt formats side by side."""
    from lrl.fidelity_gate import render_gate
    from lrl.transfer_report import render_steps_by_format, render_transfer

    cur, train, export = result["curriculum"], result["training"], result["export"]
    trained = " and ".join(f"`{f}`" for f in result["trained_prompts"])
    gate_items = (f"all {export['items']} test items" if export["subset_seed"] is None else
                  f"{export['items']} of the {export['test_items']} test items (a subset drawn with seed "
                  f"{export['subset_seed']}, so its accuracies are not the test-set numbers below)")
    lines = [_taught(result), "",
             f"Curriculum: {cur['lines']} chats from the train split ({cur['from_teacher']} verified teacher "
             f"solutions, {cur['from_solver']} solver worked solutions in the {cur['trace_style']} form, median "
             f"{cur['target_tokens']['median']} and at most {cur['target_tokens']['max']} tokens; prompt formats "
             f"{cur['by_prompt_format']}); the student answers with up to {cur['generation_limit']} tokens.",
             f"Teacher solutions rejected: {cur['teacher_rejected']} of {cur['teacher_asked']} "
             f"({cur['teacher_rejection_rate']:.1%}); a solution is kept only when its final answer is right and "
             "its reasoning checks out.", "", *_rejections(cur), "",
             f"LoRA: {_lora_length(train)}, best validation loss {train['best_val_loss']:.4f}; trained on the "
             f"{trained} prompt format(s). The student is tested in both formats below, each with exactly the "
             "prompt it is named by; a format it was not trained on is marked.",
             "", f"The fidelity gate ran on {gate_items}, with the `{result['trained_prompts'][0]}` prompt; "
             f"deployed and tested below: the `{export['deployed']}` artifact (`{export['deployed_spec']}`).", "",
             render_gate(export["gate"]), "", render_transfer(result["transfer"])]
    if "steps" in result:
        lines += ["", render_steps_by_format(result["steps"])]
    return lines


def _second_round(round1: dict, second: dict) -> list[str]:
    """Round 2: what the round-1 student failed, strategy v1 against v2, and both students side by side."""
    practice = second["practice"]
    lines = [f"The round-1 exported student answered {practice['n']} train and dev problems "
             f"(`{second['prompt']}` prompt): {percent(practice['accuracy'])} (CI {_ci(practice)}). "
             "Its failures went back to the teacher, which distilled strategy v2 (`round2/strategy.md`)."]
    if "validation_v2" in second:
        v1, v2, paired = second["validation_v1"], second["validation_v2"], second["validation_v2_vs_v1"]
        lines += ["", f"Validation (teacher): strategy v1 {percent(v1['accuracy'])} (CI {_ci(v1)}), strategy v2 "
                  f"{percent(v2['accuracy'])} (CI {_ci(v2)}); v2 − v1 on the same items {paired_text(paired)}.",
                  "", "```diff", second["strategy_diff"] or "(no change)", "```"]
    if "skipped" in second:
        return lines + ["", f"No second transfer: {second['skipped']}."]
    lines += ["", "| Prompt | Round 1 | Round 2 |", "|---|---|---|"]
    for fmt, summary in round1["by_prompt"].items():
        other = second["transfer"]["by_prompt"][fmt]
        lines.append(f"| {fmt} | {percent(summary['accuracy'])} (CI {_ci(summary)}) | "
                     f"{percent(other['accuracy'])} (CI {_ci(other)}) |")
    return lines + ["", "The paired test on the same test items is in the table of paired tests above."]


def render_report(results: dict, ledger: dict) -> str:
    """The whole report.md text."""
    cfg, stages = results["config"], results["stages"]
    lines = [f"# LRL run: {cfg['domain']} ({cfg['variant'] or 'default'} variant)", "",
             f"Teacher `{results['models']['teacher']}`, student `{results['models']['student']}`; {cfg['n_train']} train, {cfg['n_val']} "
             f"validation, {cfg['n_test']} test problems; seed {cfg['seed']}; prompts {results['template_version']}.",
             "", "## Results", ""] + _main_table(stages)
    warning = results.get("sandbox", {}).get("warning")
    if warning:
        lines[1:1] = ["", f"> **{warning}**"]
    users = [stage for stage, r in stages.items() if "strategy" in r and not get_stage(stage).teaches_strategy]
    if users:
        used = stages[users[0]]["strategy"]
        lines += ["", f"Stage{'s' if len(users) > 1 else ''} {', '.join(users)} used `strategy.md`: " + (
            "it beat the zero-shot prompt on validation" if used["adopted_on_validation"] else
            "**no candidate beat the zero-shot prompt on validation**, so this is only the best-scoring "
            "candidate") + (f"; the reviewer chose to {used['review']} it." if used["review"] else ".")]
    if "2" in stages and "candidates" in stages["2"]:
        lines += ["", "## Strategy candidates (stage 2)", ""] + _candidates(stages["2"])
    if results["comparisons"]:
        lines += ["", "## Paired tests (same test items)", ""] + _comparisons(results["comparisons"])
    if "4" in stages and "skipped" not in stages["4"]:
        lines += ["", "## LoRA transfer (stage 4)", ""] + _transfer(stages["4"])
    if "round2" in results:
        lines += ["", "## Round 2: the student's failures teach the teacher", ""] + _second_round(stages["4"],
                                                                                                 results["round2"])
    lines += ["", "## Accuracy by difficulty", ""] + _difficulty_table(stages)
    total = ledger["total"]
    lines += ["", "## Cost", "",
              f"{total['calls']} calls ({total['cache_hits']} from the response cache), {total['input_tokens']} input "
              f"and {total['output_tokens']} output tokens, ${total['usd']:.4f} spent, ${total['saved_usd']:.4f} "
              "saved by the cache, over every process of this run (ledger.json has each call).", ""]
    return "\n".join(lines)
