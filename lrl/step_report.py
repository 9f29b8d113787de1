"""Per-step accuracy of worked solutions: which step goes wrong, not only that the answer does.

A domain that can check the steps of a response (`step_checks`, see `lrl.domain.TransferDomain`)
says for each step whether it is right, wrong or not stated. Over a run's result records each
step's rate counts the solutions that state it, with its Wilson 95% CI; the domain's
`step_conditions` add a step's rate among the solutions whose earlier step was right. A student
that finds the right peak and then compares it with the rooms wrongly shows a high "stated peak =
true peak" and a low "answer follows from the stated peak, given stated peak = true peak".
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

from k1core.errors import UserError
from lrl.domain import Problem, TransferDomain, get_domain, read_problems
from lrl.stats import accuracy_with_ci


def has_step_checks(domain: TransferDomain) -> bool:
    """Whether the domain implements the optional `step_checks`."""
    return callable(getattr(domain, "step_checks", None))


def _rate(checks: list[dict], step: str) -> dict:
    stated = [c[step] for c in checks if c.get(step) is not None]
    return accuracy_with_ci(sum(stated), len(stated))


def step_summary(domain: TransferDomain, problems: Iterable[Problem], records: Sequence[dict]) -> dict | None:
    """{"n", "steps": {step: rate}, "given": [{"step", "given", **rate}]} over `records` (each with the
    `id` of one of `problems` and its `response`); None when the domain checks no steps."""
    if not has_step_checks(domain):
        return None
    by_id = {p.id: p for p in problems}
    checks = []
    for record in records:
        problem, response = by_id.get(str(record["id"])), record.get("response")
        if problem is None:
            raise UserError(f"result {record['id']!r} answers no problem of the problem set it is checked against")
        if not isinstance(response, str):
            raise UserError(f"result {record['id']!r} has no 'response' text whose steps could be checked")
        checks.append(domain.step_checks(problem, response))
    steps = list(checks[0]) if checks else []
    given = [{"step": step, "given": condition, **_rate([c for c in checks if c.get(condition)], step)}
             for step, condition in getattr(domain, "step_conditions", ()) if step in steps]
    return {"n": len(checks), "steps": {step: _rate(checks, step) for step in steps}, "given": given}


def step_summaries_of_files(problems_path: str | Path, runs: dict[str, list[dict]]) -> dict:
    """{name: step summary} of each run's records against the problems file they answer; {} when the
    results' domain (each record's `domain`) checks no steps."""
    names = sorted({str(r.get("domain")) for records in runs.values() for r in records})
    if len(names) != 1:
        raise UserError(f"steps are checked on the results of one domain; these have {', '.join(names)}")
    domain = get_domain(names[0])
    if not has_step_checks(domain):
        return {}
    problems = read_problems(problems_path, domain)
    return {name: step_summary(domain, problems, records) for name, records in runs.items()}


def _cell(rate: dict) -> str:
    if not rate["n"]:
        return "— (0 stated)"
    low, high = rate["ci95"]
    return f"{100 * rate['accuracy']:.1f}% [{100 * low:.1f}, {100 * high:.1f}] ({rate['correct']}/{rate['n']})"


def render_steps(columns: dict[str, dict]) -> str:
    """A Markdown table: one row per step (and per conditional rate), one column per step summary."""
    first = next(iter(columns.values()))
    lines = ["| Step | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for step in first["steps"]:
        lines.append(f"| {step} | " + " | ".join(_cell(s["steps"][step]) for s in columns.values()) + " |")
    for i, row in enumerate(first["given"]):
        lines.append(f"| {row['step']}, given {row['given']} | "
                     + " | ".join(_cell(s["given"][i]) for s in columns.values()) + " |")
    lines += ["", "Each cell: right among the solutions that state the step (right/stated), Wilson 95% CI; "
              "a row \"X, given Y\" counts only the solutions whose Y is right."]
    return "\n".join(lines) + "\n"
