"""Stage 4's section of report.md: the exported student against the majority class, the base student and the teacher.

Every accuracy carries its Wilson 95% CI; each comparison is paired on the same test items
(exact McNemar p-value, Newcombe 95% CI of the difference). The claim "the transfer worked"
needs the student's CI to clear the majority baseline and the paired CI against the base student
to exclude zero; `verdict` spells out which of those hold instead of leaving it to the reader.
"""
from __future__ import annotations

from lrl.evaluation import compare, summarize


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _ci(pair) -> str:
    return f"[{100 * pair[0]:.1f}, {100 * pair[1]:.1f}]"


def transfer_summary(student: list[dict], base: list[dict], teacher: list[dict] | None = None) -> dict:
    """Summaries and paired comparisons of the exported student vs the base student (and the teacher)."""
    out = {"student": summarize(student), "base": summarize(base), "vs_base": compare(student, base)}
    if teacher is not None:
        out["teacher"] = summarize(teacher)
        out["vs_teacher"] = compare(student, teacher)
    classes = out["student"]["classes"]
    majority = classes["majority_baseline"] if classes else None
    out["verdict"] = {
        "beats_majority": bool(majority) and out["student"]["ci95"][0] > majority["accuracy"],
        "beats_base": out["vs_base"]["difference_ci95"][0] > 0,
    }
    return out


def render_transfer(summary: dict, title: str = "Stage 4: LoRA transfer, exported GGUF") -> str:
    """Markdown: accuracy table with CIs and majority baseline, then the paired tests."""
    lines = [f"## {title}", "", "| model | correct/n | accuracy | 95% CI (Wilson) | parse failures |", "|---|---|---|---|---|"]
    rows = [("exported student", summary["student"]), ("base student", summary["base"])]
    if "teacher" in summary:
        rows.append(("teacher", summary["teacher"]))
    for name, s in rows:
        lines.append(f"| {name} | {s['correct']}/{s['n']} | {_pct(s['accuracy'])} | {_ci(s['ci95'])} | "
                     f"{_pct(s['parse_failure_rate'])} |")
    classes = summary["student"]["classes"]
    if classes:
        m = classes["majority_baseline"]
        lines.append(f"| majority class ({classes['majority_class']}) | {m['correct']}/{m['n']} | {_pct(m['accuracy'])} | "
                     f"{_ci(m['ci95'])} | - |")
    lines += ["", "| paired comparison | student only | other only | difference [95% CI, Newcombe] | McNemar exact p |",
              "|---|---|---|---|---|"]
    for name, key in (("student vs base student", "vs_base"), ("student vs teacher", "vs_teacher")):
        if key in summary:
            c = summary[key]
            lines.append(f"| {name} | {c['only_a']} | {c['only_b']} | {100 * c['difference']:+.1f} pts "
                         f"{_ci(c['difference_ci95'])} | {c['mcnemar_exact_p']:.3g} |")
    v = summary["verdict"]
    lines += ["", f"Student CI above the majority baseline: **{'yes' if v['beats_majority'] else 'no'}**; "
              f"paired CI against the base student excludes zero in the student's favour: "
              f"**{'yes' if v['beats_base'] else 'no'}**."]
    return "\n".join(lines) + "\n"
