"""Scoring model runs honestly: accuracy with its uncertainty, next to what guessing would score.

A results file is JSONL, one line per item (see `result_record`). `summarize` reports accuracy
with a Wilson 95% CI, the majority-class baseline on the same items (the published 86% sits below
the 88% that "always YES" scores), balanced accuracy, the parse-failure rate, a confusion matrix
and a per-difficulty breakdown. `compare` pairs two runs item by item: exact McNemar p-value and a
Newcombe 95% CI of the accuracy difference.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import orjson

from k1core.errors import UserError
from lrl.domain import (OUTCOMES, PARSE_FAILURE, SUCCESS_OUTCOMES, Problem, TransferDomain, get_domain,
                        read_jsonl, read_problems, write_jsonl)
from lrl.output_file import writable_file
from lrl.sandbox import code_sandbox, sandbox_line
from lrl.stats import accuracy_with_ci, mcnemar_exact_p, newcombe_paired_difference
from lrl.step_report import render_steps, step_summaries_of_files

PARSE_FAIL_LABEL = "<parse failure>"
MAX_CLASSES = 12  # beyond this, answers are values (numbers, code), not classes: no confusion matrix


def result_record(domain: TransferDomain, problem: Problem, response: str,
                  model: str | None = None, stage: str | None = None) -> dict:
    """Parse and check one response; the JSON line a results file holds for this item."""
    parsed = domain.parse(response, problem)
    verdict = domain.check(problem, parsed)
    return {"id": problem.id, "domain": problem.domain, "difficulty": problem.difficulty,
            "variant": problem.variant, "expected": problem.answer, "response": response,
            "parsed": parsed.answer, "parse_error": parsed.failure,
            "verdict": verdict.outcome, "detail": verdict.detail, "model": model, "stage": stage}


def read_results(path: str | Path) -> list[dict]:
    """Result lines, validated: an `id` and a known `verdict`; ids unique. UserError names file:line."""
    records, seen = [], set()
    for where, obj in read_jsonl(path):
        if "id" not in obj:
            raise UserError(f"{where}: missing key 'id'")
        if obj.get("verdict") not in OUTCOMES:
            raise UserError(f"{where}: key 'verdict' must be one of {', '.join(OUTCOMES)}, got {obj.get('verdict')!r}")
        key = str(obj["id"])
        if key in seen:
            raise UserError(f"{where}: duplicate id {key!r}")
        seen.add(key)
        records.append({**obj, "id": key})
    if not records:
        raise UserError(f"{path}: no result lines")
    return records


def _label(value: Any) -> str:
    return PARSE_FAIL_LABEL if value is None else str(value)


def class_metrics(records: list[dict]) -> dict | None:
    """Majority baseline, balanced accuracy and confusion matrix, when answers are a few classes."""
    if any(r.get("expected") is None for r in records):
        return None
    expected = Counter(_label(r["expected"]) for r in records)
    if len(expected) > MAX_CLASSES:
        return None
    majority, majority_count = max(expected.items(), key=lambda kv: (kv[1], kv[0]))
    confusion: dict[str, Counter] = defaultdict(Counter)
    for r in records:
        predicted = _label(r.get("parsed")) if r["verdict"] != PARSE_FAILURE else PARSE_FAIL_LABEL
        confusion[_label(r["expected"])][predicted] += 1
    recalls = [confusion[c][c] / count for c, count in expected.items()]
    return {
        "majority_class": majority,
        "majority_baseline": accuracy_with_ci(majority_count, len(records)),
        "balanced_accuracy": sum(recalls) / len(recalls),
        "confusion": {c: dict(row) for c, row in sorted(confusion.items())},
    }


def summarize(records: list[dict]) -> dict:
    """Accuracy (Wilson 95% CI), outcome counts, parse-failure rate, per-difficulty, class metrics."""
    n = len(records)
    wins = [r["verdict"] in SUCCESS_OUTCOMES for r in records]
    by_difficulty = defaultdict(list)
    for r, win in zip(records, wins):
        by_difficulty[str(r.get("difficulty", "all"))].append(win)
    outcomes = Counter(r["verdict"] for r in records)
    return {
        **accuracy_with_ci(sum(wins), n),
        "outcomes": dict(outcomes),
        "parse_failure_rate": outcomes[PARSE_FAILURE] / n,
        "by_difficulty": {d: accuracy_with_ci(sum(w), len(w)) for d, w in sorted(by_difficulty.items())},
        "classes": class_metrics(records),
    }


def compare(run_a: list[dict], run_b: list[dict]) -> dict:
    """Paired comparison of two runs on the same items: exact McNemar and Newcombe CI of A - B."""
    a_by_id = {r["id"]: r["verdict"] in SUCCESS_OUTCOMES for r in run_a}
    b_by_id = {r["id"]: r["verdict"] in SUCCESS_OUTCOMES for r in run_b}
    if a_by_id.keys() != b_by_id.keys():
        only_a, only_b = len(a_by_id.keys() - b_by_id.keys()), len(b_by_id.keys() - a_by_id.keys())
        raise UserError(f"the two runs are not on the same items ({only_a} ids only in the first, "
                        f"{only_b} only in the second); a paired comparison needs identical items")
    table = Counter((a_by_id[i], b_by_id[i]) for i in a_by_id)
    both, only_a, only_b, neither = table[True, True], table[True, False], table[False, True], table[False, False]
    diff, low, high = newcombe_paired_difference(both, only_a, only_b, neither)
    return {"n": len(a_by_id), "both_correct": both, "only_a": only_a, "only_b": only_b,
            "both_wrong": neither, "difference": diff, "difference_ci95": [low, high],
            "ci_method": "Newcombe (1998) square-and-add with Wilson intervals, corrected phi",
            "mcnemar_exact_p": mcnemar_exact_p(only_a, only_b)}


# ---------------------------------------------------------------- human-readable table

def _pct(x: float) -> str:
    return f"{100 * x:5.1f}%"


def _acc_row(name: str, acc: dict, width: int = 22) -> str:
    low, high = acc["ci95"]
    return f"{name:<{width}}{acc['correct']:>5}/{acc['n']:<5} {_pct(acc['accuracy'])}  [{_pct(low)}, {_pct(high)}]"


def render_table(summary: dict, comparison: dict | None = None, title: str = "run") -> str:
    """A plain-text report: accuracy with CI, baseline, breakdowns and the paired comparison."""
    lines = [f"== {title}", f"{'':<22}{'correct/n':>11}  acc     [Wilson 95% CI]", _acc_row("accuracy", summary)]
    classes = summary["classes"]
    if classes:
        lines.append(_acc_row(f"always {classes['majority_class']!s:.13}", classes["majority_baseline"]))
        lines.append(f"{'balanced accuracy':<22}{'':>11} {_pct(classes['balanced_accuracy'])}")
    lines.append(f"{'parse failures':<22}{'':>11} {_pct(summary['parse_failure_rate'])}")
    lines.append("outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(summary["outcomes"].items())))
    lines.append("by difficulty:")
    lines += ["  " + _acc_row(d, acc, width=20) for d, acc in summary["by_difficulty"].items()]
    if classes:
        predicted = sorted({p for row in classes["confusion"].values() for p in row})
        lines.append("confusion (rows expected, columns answered):")
        lines.append(f"  {'':<12}" + "".join(f"{p[:14]:>16}" for p in predicted))
        for expected, row in classes["confusion"].items():
            lines.append(f"  {expected[:12]:<12}" + "".join(f"{row.get(p, 0):>16}" for p in predicted))
    if comparison:
        low, high = comparison["difference_ci95"]
        lines += [
            "paired comparison (A = this run, B = --against):",
            f"  both right {comparison['both_correct']}, only A {comparison['only_a']}, "
            f"only B {comparison['only_b']}, both wrong {comparison['both_wrong']}",
            f"  A - B = {100 * comparison['difference']:+.1f} points, 95% CI "
            f"[{100 * low:+.1f}, {100 * high:+.1f}] (Newcombe), exact McNemar p = {comparison['mcnemar_exact_p']:.4g}",
        ]
    return "\n".join(lines)


def score_files(path: str | Path, against: str | Path | None = None, problems: str | Path | None = None) -> dict:
    """The full report for `k1 lrl score`: summary of `path`, the paired comparison if asked, and with the
    `problems` file the results answer, the per-step rates of the worked solutions (domains that check steps)."""
    runs = {str(path): read_results(path)}
    report = {"file": str(path), "summary": summarize(runs[str(path)])}
    if against is not None:
        runs[str(against)] = other = read_results(against)
        report["against"] = {"file": str(against), "summary": summarize(other)}
        report["comparison"] = compare(runs[str(path)], other)
    steps = step_summaries_of_files(problems, runs) if problems is not None else {}
    return {**report, "steps": steps} if steps else report


def render_report(report: dict) -> str:
    text = render_table(report["summary"], report.get("comparison"), title=report["file"])
    if "against" in report:
        text += "\n\n" + render_table(report["against"]["summary"], title=report["against"]["file"])
    if "steps" in report:
        text += "\n\n== steps of the worked solutions\n" + render_steps(report["steps"])
    return text


def write_report(path: str | Path, report: dict) -> None:
    """The report as indented JSON."""
    try:
        Path(path).write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))
    except OSError as err:
        raise UserError(f"cannot write {path} ({err.strerror})") from None


def grade_files(problems_path: str | Path, responses_path: str | Path, out: str | Path,
                domain_name: str | None = None) -> str:
    """Parse and check model responses (JSONL `{"id", "response", "model"?, "stage"?}`) into a results file.

    Every problem needs exactly one response: a missing response is no evidence either way, so it
    is an error rather than a silent skip.
    """
    writable_file(out)
    domain = get_domain(domain_name) if domain_name else None
    problems = {p.id: p for p in read_problems(problems_path, domain)}
    sandbox = code_sandbox(get_domain(name) for name in {p.domain for p in problems.values()})
    records = []
    for where, obj in read_jsonl(responses_path):
        pid, response = str(obj.get("id")), obj.get("response")
        if pid not in problems:
            raise UserError(f"{where}: id {obj.get('id')!r} is not in {problems_path}")
        if not isinstance(response, str):
            raise UserError(f"{where}: key 'response' must be a string")
        problem = problems.pop(pid)
        records.append(result_record(get_domain(problem.domain), problem, response,
                                     model=obj.get("model"), stage=obj.get("stage")))
    if problems:
        raise UserError(f"{responses_path}: no response for {len(problems)} problems (e.g. {next(iter(problems))!r})")
    write_jsonl(out, records)
    outcomes = Counter(r["verdict"] for r in records)
    summary = f"graded {len(records)} responses into {out}: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()))
    return summary + sandbox_line(sandbox)
