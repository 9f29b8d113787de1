"""The index of a published run (README.md) and its table of stage-2 candidates (candidates.md)."""
from __future__ import annotations

import shlex
from pathlib import Path

from lrl.evaluation import summarize
from lrl.stats import percent
from lrl.student_prompt import TRAINING_PROMPTS

FORMAT_TITLES = {"zero-shot": "no strategy in prompt", "strategy": "strategy in prompt"}


def _accuracy(s: dict) -> str:
    low, high = s["ci95"]
    return f"{percent(s['accuracy'])} [{100 * low:.1f}, {100 * high:.1f}] ({s['correct']}/{s['n']})"


def _with_parse(s: dict) -> str:
    return f"{_accuracy(s)}, {percent(s['parse_failure_rate'])} unparsed"


def _paired(c: dict) -> str:
    low, high = c["difference_ci95"]
    return (f"{100 * c['difference']:+.1f} pts [{100 * low:+.1f}, {100 * high:+.1f}], McNemar p = "
            f"{c['mcnemar_exact_p']:.3g} ({c['only_a']} vs {c['only_b']} discordant, n = {c['n']})")


def _majority(s: dict) -> str:
    """What always answering the most common class scores on the same items ('n/a' without classes)."""
    classes = s["classes"]
    return f"{_accuracy(classes['majority_baseline'])} (always {classes['majority_class']})" if classes else "n/a"


def _loads(load: list[float] | None) -> str:
    return "—" if not load else " / ".join(f"{x:.2f}" for x in load)


def render_candidates(boot: dict) -> str:
    """Every candidate strategy stage 2 distilled, its validation accuracy with CI, adopted or not, and its text."""
    zero = boot.get("val_zero_shot")
    lines = ["# Stage 2 candidate strategies", "",
             "Each candidate was scored on the validation split and adopted only if it beat the best so far, "
             "which starts at the prompt without a strategy.", "",
             "| Candidate | After batch | Validation accuracy [95% CI] | Adopted |", "|---|---|---|---|"]
    for c in boot["candidates"]:
        score = _accuracy(c["validation"]) if "validation" in c else "not scored"
        lines.append(f"| {c['index']:02d} | {c['after_batch'] + 1} | {score} | {'yes' if c.get('adopted') else 'no'} |")
    if zero:
        lines += ["", f"Validation without a strategy: {_accuracy(summarize(zero))}."]
    for c in boot["candidates"]:
        lines += ["", f"## Candidate {c['index']:02d}", "", "```text", c["text"].strip(), "```"]
    return "\n".join(lines) + "\n"


def _lora_length(config: dict, training: dict | None) -> str:
    """The steps and epochs stage 4 trained when it recorded them, else what the run asked for."""
    if training and "epochs" in training:
        return f"{training['steps']} steps ({training['epochs']:.2f} epochs of {training['examples']} training chats)"
    if config.get("lora_steps") is not None:
        return f"{config['lora_steps']} steps"
    return f"{config['lora_epochs']:g} epoch(s) of the curriculum"


def _what_ran(config: dict, manifest: dict, training: dict | None, stage4_complete: bool,
              stage4_steps: list[str]) -> list[str]:
    state = ("Stage 4 finished." if stage4_complete else
             f"Stage 4 is partly finished (done: {', '.join(stage4_steps) or 'nothing yet'}); the numbers below "
             "cover the items evaluated so far.")
    return [f"Domain `{config['domain']}`, variant `{config['variant']}`; teacher `{config['teacher']}`, "
            f"student `{config['student']}`; {config['n_train']} train, {config['n_val']} validation and "
            f"{config['n_test']} test problems, seed {config['seed']}. Stage 4: a curriculum of "
            f"{config['curriculum_size']} problems ({config['trace_style']} traces, prompts: "
            f"{config['student_prompts']}), LoRA rank {config['lora_rank']}{_lora_layers(config)} for {_lora_length(config, training)} at "
            f"sequence length {config['lora_seq_len']}, exported as `{config['export_quant']}`. {state} "
            f"Run started {manifest.get('created', 'at an unrecorded time')}."]


def _lora_layers(config: dict) -> str:
    layers = config.get("lora_layers")
    return f" on the top {layers} layers" if layers else ""


def _headline(headline: dict) -> list[str]:
    lines = ["| Prompt | Trained on it | Exported student | Base student | Teacher (stage 1, zero-shot) "
             "| Majority class | Exported vs base (paired) |", "|---|---|---|---|---|---|---|"]
    for fmt, row in headline.items():
        majority = _majority(row["exported"])
        cells = [_with_parse(row[who]) if who in row else "not evaluated" for who in ("exported", "base", "teacher")]
        lines.append(f"| {FORMAT_TITLES[fmt]} (`{fmt}`) | {'yes' if row['trained'] else 'no'} | "
                     + " | ".join(cells) + f" | {majority} | {_paired(row['vs_base']) if 'vs_base' in row else '—'} |")
    teacher_tests = [f"- {fmt}: exported student vs teacher {_paired(row['vs_teacher'])}"
                     for fmt, row in headline.items() if "vs_teacher" in row]
    return lines + ([""] + teacher_tests if teacher_tests else [])


def _out_of_distribution(ood: dict) -> list[str]:
    lines = ["| Variant | Exported student | Base student | Majority class | Exported vs base (paired) |",
             "|---|---|---|---|---|"]
    for variant, row in ood.items():
        majority = _majority(row["exported"])
        base = _with_parse(row["base"]) if "base" in row else "not evaluated"
        lines.append(f"| `{variant}` | {_with_parse(row['exported'])} | {base} | {majority} | "
                     f"{_paired(row['vs_base']) if 'vs_base' in row else '—'} |")
    return lines


def _second_round(second: dict) -> list[str]:
    """What the round-1 student failed, strategy v2 against v1 on validation (paired), and round 2's student."""
    practice = second["practice"]
    lines = [f"The round-1 exported student answered {practice['n']} train and dev problems (`{second['prompt']}` "
             f"prompt): {_with_parse(practice)}."]
    if "validation_v2" in second:
        lines[0] += (" The teacher reflected on its failures and distilled strategy v2 "
                     "([round2/strategy.md](round2/strategy.md)); on the validation split the teacher scores "
                     f"{_accuracy(second['validation_v1'])} with v1 and {_accuracy(second['validation_v2'])} with v2, "
                     f"v2 − v1 {_paired(second['validation_v2_vs_v1'])}.")
    if "skipped" in second:
        return lines + ["", f"No second transfer: {second['skipped']}."]
    lines += ["", "Round 2 taught strategy v2 (its own curriculum, LoRA, export and gate); its exported student on "
              "the test split (round 1's is in the headline above):", "", "| Prompt | Round-2 exported student |", "|---|---|"]
    lines += [f"| `{fmt}` | {_with_parse(summary)} |" for fmt, summary in second["transfer"]["by_prompt"].items()]
    return lines + ["", f"Round 2 − round 1 on the same test items, first trained prompt: "
                        f"{_paired(second['test_round2_vs_round1'])}."]


def _curriculum(cur: dict) -> list[str]:
    formats = ", ".join(f"{fmt}: {n}" for fmt, n in cur["by_prompt_format"].items())
    reasons = ", ".join(f"{reason}: {n}" for reason, n in cur["teacher_rejected_by_reason"].items()) or "none"
    return [f"{cur['lines']} training chats: {cur['from_teacher']} written by the teacher (kept only when their "
            f"reasoning checked out), {cur['from_solver']} solver worked solutions; by prompt format {formats}. "
            f"The teacher was asked {cur['teacher_asked']} times and {cur['teacher_rejected']} of its solutions "
            f"were rejected ({percent(cur['teacher_rejection_rate'])}); by reason: {reasons}. Targets: median "
            f"{cur['target_tokens']['median']} tokens, longest {cur['target_tokens']['max']}; answers limited to "
            f"{cur['generation_limit']} tokens. All figures: [curriculum.json](curriculum.json)."]


def _timings(timings: dict) -> list[str]:
    lines = ["| Stage state | Finished | Wall time | Load average at start (1/5/15 min) | at end | Model calls "
             "(cache hits) |", "|---|---|---|---|---|---|"]
    for name, t in timings.items():
        wall = f"{t['seconds']:.0f} s" if "seconds" in t else "not recorded"
        calls = "—" if t["calls"] is None else f"{t['calls']} ({t['cache_hits']})"
        lines.append(f"| {name} | {'yes' if t['complete'] else 'no'} | {wall} | {_loads(t.get('load_start'))} | "
                     f"{_loads(t.get('load_end'))} | {calls} |")
    return lines


def _commands(manifest: dict) -> list[str]:
    sessions = manifest.get("sessions", [])
    lines = [f"- {s['started']}: " + (f"`{shlex.join(s['command'])}`" if s.get("command") else
                                       f"command not recorded (stages {','.join(s['stages'])})") for s in sessions]
    return lines or ["No session recorded."]


def _rebuild(config: dict, dest: Path, trained_first: str) -> list[str]:
    strategy = f" --strategy {dest / 'strategy.md'}" if trained_first == "strategy" else ""
    return ["The GGUF is not committed; this rebuilds it from the adapter (fused and base + adapter files, "
            "each checked by the fidelity gate on test-split problems):", "", "```bash",
            f"k1 export --base {config['student']} --adapter {dest / 'adapter'} --quant {config['export_quant']} "
            f"--gate-domain {config['domain']} --gate-variant {config['variant']}{strategy} --out student.gguf",
            "```"]


def render_readme(*, name: str, dest: Path, config: dict, manifest: dict, training: dict | None, headline: dict,
                  ood: dict, bars: list, timings: dict, curriculum: dict | None, boot: dict, adapter: dict | None,
                  records: list[str], stage4_complete: bool, stage4_steps: list[str], files: list[str],
                  absent: list[str], second_round: dict | None) -> str:
    """README.md of a published run: what ran, the headline with CIs and paired tests, and where everything is."""
    lines = [f"# {name}", "", *_what_ran(config, manifest, training, stage4_complete, stage4_steps), "",
             "## Headline: the exported student on the test split", ""]
    lines += _headline(headline) if headline else ["Stage 4 has not evaluated the exported student yet."]
    if records:
        lines += ["", "Accuracies: Wilson 95% CI in brackets; paired differences: Newcombe 95% CI, exact McNemar p. "
                  "Every test answer is in [records/](records/) (id, expected, parsed, verdict, response), "
                  "so each paired test can be recomputed with `k1 lrl score A --against B`."]
    if ood:
        lines += ["", "## Out of distribution (stage 4b): problems unlike the curriculum's, first trained prompt", "",
                  *_out_of_distribution(ood)]
    lines += ["", "## Every stage", ""]
    if not bars:
        lines.append("Nothing evaluated yet.")
    else:
        if "accuracy.png" in files:
            lines += ["![accuracy per model and stage](accuracy.png)", ""]
        lines += ["| Stage, model, prompt | Accuracy [95% CI] | Parse failures |", "|---|---|---|"]
        lines += [f"| {label} | {_accuracy(s)} | {percent(s['parse_failure_rate'])} |" for label, s in bars]
        lines += ["", "The full report of the run: [report.md](report.md)."]
    if boot.get("candidates"):
        adopted = [c["index"] for c in boot["candidates"] if c.get("adopted")]
        lines += ["", "## Strategy", "", f"Stage 2 distilled {len(boot['candidates'])} candidate{'s' * (len(boot['candidates']) != 1)} "
                  f"([candidates.md](candidates.md)); adopted on validation: "
                  f"{', '.join(f'{i:02d}' for i in adopted) or 'none'}. Stage 4 taught [strategy.md](strategy.md)."]
    if second_round:
        lines += ["", "## Round 2: the student's failures teach the teacher", "", *_second_round(second_round)]
    if curriculum:
        lines += ["", "## Curriculum", "", *_curriculum(curriculum)]
    lines += ["", "## Wall time and machine load per stage", "", *_timings(timings), "",
              "## Commands", "", *_commands(manifest), ""]
    if adapter:
        unfinished = [] if "training" in stage4_steps else ["The adapter is the best one so far: training has "
                                                             "not finished.", ""]
        weights = (f"[{adapter['file']}]({adapter['file']}) holds the adapter's weights in bf16 "
                   f"({adapter['bytes'] / 1e6:.1f} MB; the trainer wrote {', '.join(adapter['source_dtypes'])}, "
                   f"{adapter['source_bytes'] / 1e6:.1f} MB); PEFT and `k1 export` read it as it is.")
        lines += ["## Rebuild the student", "", *unfinished, weights, "",
                  *_rebuild(config, dest, TRAINING_PROMPTS[config["student_prompts"]][0]), ""]
    lines += ["## Files", "", *[f"- [{f}]({f})" for f in files]]
    if absent:
        lines += ["", "## Absent", "", *[f"- {note}" for note in absent]]
    return "\n".join(lines) + "\n"
