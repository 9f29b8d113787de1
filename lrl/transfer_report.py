"""Stage 4's section of report.md: the exported student against the majority class, the base student
and the teacher, side by side for both prompt formats (zero-shot, strategy in the prompt).

Every accuracy carries its Wilson 95% CI; each comparison is paired on the same test items
(exact McNemar p-value, Newcombe 95% CI of the difference). The claim "the transfer worked" needs
the student's CI to clear the majority baseline and the paired CI against the base student (same
prompt format) to exclude zero; `verdict` spells out which of those hold instead of leaving it to
the reader. Each column says whether the student was trained on that prompt format: a number on
a format it never saw in training measures generalization, not the trained behaviour.
"""
from __future__ import annotations

from lrl.evaluation import compare, summarize
from lrl.stats import percent
from lrl.step_report import render_steps
from lrl.student_prompt import PROMPT_FORMATS

FORMAT_TITLES = {"zero-shot": "no strategy in prompt", "strategy": "strategy in prompt"}


def _ci(pair) -> str:
    return f"[{100 * pair[0]:.1f}, {100 * pair[1]:.1f}]"


def transfer_summary(student: list[dict], base: list[dict], teacher: list[dict] | None = None) -> dict:
    """Summaries and paired comparisons of the exported student vs the base student (and the teacher, on
    the test items the teacher answered: all of them, or its --teacher-items share)."""
    out = {"student": summarize(student), "base": summarize(base), "vs_base": compare(student, base)}
    if teacher is not None:
        answered = {r["id"] for r in teacher}
        out["teacher"] = summarize(teacher)
        out["vs_teacher"] = compare([r for r in student if r["id"] in answered], teacher)
    classes = out["student"]["classes"]
    majority = classes["majority_baseline"] if classes else None
    out["verdict"] = {
        "beats_majority": bool(majority) and out["student"]["ci95"][0] > majority["accuracy"],
        "beats_base": out["vs_base"]["difference_ci95"][0] > 0,
    }
    return out


def transfer_by_format(exported: dict[str, list[dict]], base: dict[str, list[dict]], teacher: list[dict] | None,
                       trained: tuple[str, ...]) -> dict:
    """`transfer_summary` per prompt format (exported and base student asked alike), which formats the
    student was trained on, and the exported student's strategy-vs-zero-shot paired test."""
    formats = {fmt: {"trained": fmt in trained, **transfer_summary(exported[fmt], base[fmt], teacher)}
               for fmt in PROMPT_FORMATS if fmt in exported}
    out = {"formats": formats}
    if set(formats) == set(PROMPT_FORMATS):
        out["strategy_vs_zero_shot"] = compare(exported["strategy"], exported["zero-shot"])
    return out


def _cell(s: dict) -> str:
    return f"{percent(s['accuracy'])} {_ci(s['ci95'])} ({s['correct']}/{s['n']}; {percent(s['parse_failure_rate'])} unparsed)"


def paired_text(c: dict) -> str:
    return f"{100 * c['difference']:+.1f} pts {_ci(c['difference_ci95'])}, p = {c['mcnemar_exact_p']:.3g} ({c['only_a']} vs {c['only_b']})"


def _yes(flag: bool) -> str:
    return "**yes**" if flag else "**no**"


def render_transfer(summary: dict, title: str = "Exported student by prompt format") -> str:
    """Markdown: one column per prompt format; accuracies with Wilson CIs and parse failures, the
    majority class, paired tests (difference [Newcombe CI], exact McNemar p, discordant counts) and the verdict."""
    formats = summary["formats"]
    columns = list(formats)
    header = "| | " + " | ".join(f"{FORMAT_TITLES[f]} (`{f}`)" for f in columns) + " |"
    lines = [f"### {title}", "", header, "|---|" + "---|" * len(columns),
             "| student trained on this prompt | " + " | ".join("yes" if formats[f]["trained"] else
                                                               "**no** (generalization only)" for f in columns) + " |"]
    rows = [("exported student", "student"), ("base student", "base"), ("teacher (stage 1, zero-shot)", "teacher")]
    for name, key in rows:
        if all(key in formats[f] for f in columns):
            lines.append(f"| {name} | " + " | ".join(_cell(formats[f][key]) for f in columns) + " |")
    majority = []
    for f in columns:
        classes = formats[f]["student"]["classes"]
        m = classes["majority_baseline"] if classes else None
        majority.append(f"{percent(m['accuracy'])} {_ci(m['ci95'])} (always {classes['majority_class']})" if m else "n/a")
    lines.append("| majority class | " + " | ".join(majority) + " |")
    first = formats[columns[0]]
    teacher_items = (f", on the teacher's {first['vs_teacher']['n']} items"
                     if "vs_teacher" in first and first["vs_teacher"]["n"] < first["student"]["n"] else "")
    for name, key in (("exported − base (paired)", "vs_base"), (f"exported − teacher (paired{teacher_items})", "vs_teacher")):
        if all(key in formats[f] for f in columns):
            lines.append(f"| {name} | " + " | ".join(paired_text(formats[f][key]) for f in columns) + " |")
    lines.append("| exported CI above the majority baseline | " + " | ".join(
        _yes(formats[f]["verdict"]["beats_majority"]) for f in columns) + " |")
    lines.append("| paired CI vs base student above zero | " + " | ".join(
        _yes(formats[f]["verdict"]["beats_base"]) for f in columns) + " |")
    lines += ["", "Paired cells: exported − other, Newcombe 95% CI, exact McNemar p, and the discordant items "
              "(only the exported student right vs only the other right)."]
    if "strategy_vs_zero_shot" in summary:
        lines += ["", f"Exported student, strategy in prompt − no strategy (paired): "
                      f"{paired_text(summary['strategy_vs_zero_shot'])}."]
    return "\n".join(lines) + "\n"


def render_steps_by_format(steps: dict) -> str:
    """Markdown: the per-step rates of the exported and the base student's worked solutions, one column
    per student and prompt format."""
    columns = {f"{who} student, `{fmt}`": summary for who, by_format in steps.items()
               for fmt, summary in by_format.items()}
    return ("### Worked solutions, step by step\n\nHow often each step of the students' solutions on the test "
            "split is right, so a wrong answer can be traced to the step where it went wrong.\n\n"
            + render_steps(columns))
