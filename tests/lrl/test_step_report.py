"""Per-step rates of worked solutions: counts, Wilson CIs, conditional rows, the table and `k1 lrl score`."""
import orjson
import pytest
from click.testing import CliRunner

from cli import main
from k1core.errors import UserError
from lrl.domain import get_domain, write_problems
from lrl.domains.scheduling import ANSWER_FOLLOWS, ANSWER_RIGHT, PEAK_RIGHT, PEAK_STATED
from lrl.evaluation import result_record
from lrl.stats import wilson_interval
from lrl.step_report import render_steps, step_summary

DOMAIN = get_domain("scheduling")
PROBLEMS = DOMAIN.generate(8, 7, "test", "balanced")


def answer_yes_after_the_right_peak(problem):
    """The failure a trained student showed: the right peak, then YES whatever the rooms."""
    peak_line = DOMAIN.worked_solution(problem).splitlines()[1]  # "2. Peak: N at once."
    return f"{peak_line}\nSo the answer is YES.\nANSWER: YES"


def records(respond):
    return [result_record(DOMAIN, p, respond(p)) for p in PROBLEMS]


def test_a_right_peak_with_a_broken_comparison_shows_in_the_conditional_rate():
    summary = step_summary(DOMAIN, PROBLEMS, records(answer_yes_after_the_right_peak))
    steps, nos = summary["steps"], sum(p.answer == "NO" for p in PROBLEMS)
    assert summary["n"] == 8 and nos == 4
    assert steps[PEAK_STATED]["correct"] == steps[PEAK_RIGHT]["correct"] == 8
    assert (steps[ANSWER_FOLLOWS]["correct"], steps[ANSWER_FOLLOWS]["n"]) == (8 - nos, 8)
    assert steps[ANSWER_FOLLOWS]["ci95"] == list(wilson_interval(8 - nos, 8))
    given = {(row["step"], row["given"]): row for row in summary["given"]}
    assert given[ANSWER_FOLLOWS, PEAK_RIGHT]["correct"] == 4 and given[ANSWER_RIGHT, PEAK_RIGHT]["n"] == 8


def test_steps_not_stated_are_left_out_of_their_rate():
    summary = step_summary(DOMAIN, PROBLEMS, records(lambda p: f"ANSWER: {p.answer}"))
    steps = summary["steps"]
    assert (steps[PEAK_STATED]["correct"], steps[PEAK_STATED]["n"]) == (0, 8)
    assert steps[PEAK_RIGHT]["n"] == steps[ANSWER_FOLLOWS]["n"] == 0 and steps[ANSWER_RIGHT]["correct"] == 8
    table = render_steps({"bare answers": summary})
    assert f"| {PEAK_RIGHT} | — (0 stated) |" in table and f"| {ANSWER_RIGHT} | 100.0% [67.6, 100.0] (8/8) |" in table


def test_the_table_has_a_column_per_run_and_a_row_per_step_and_condition():
    solved = step_summary(DOMAIN, PROBLEMS, records(DOMAIN.worked_solution))
    broken = step_summary(DOMAIN, PROBLEMS, records(answer_yes_after_the_right_peak))
    table = render_steps({"solver": solved, "student": broken})
    assert "| Step | solver | student |" in table
    assert f"| {ANSWER_FOLLOWS}, given {PEAK_RIGHT} | 100.0% [67.6, 100.0] (8/8) | 50.0% [21.5, 78.5] (4/8) |" in table


def test_a_domain_without_step_checks_has_no_summary_and_bad_records_are_one_clear_error():
    arithmetic = get_domain("arithmetic")
    problems = arithmetic.generate(2, 1, "test")
    assert step_summary(arithmetic, problems, [result_record(arithmetic, p, "ANSWER: 1") for p in problems]) is None
    with pytest.raises(UserError, match="result 'nope' answers no problem"):
        step_summary(DOMAIN, PROBLEMS, [{"id": "nope", "response": "x"}])
    with pytest.raises(UserError, match="no 'response' text"):
        step_summary(DOMAIN, PROBLEMS, [{"id": PROBLEMS[0].id, "verdict": "wrong"}])


def test_score_prints_the_step_table_given_the_problems(tmp_path):
    problems, results = tmp_path / "p.jsonl", tmp_path / "r.jsonl"
    write_problems(problems, PROBLEMS)
    results.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records(answer_yes_after_the_right_peak)))
    report = tmp_path / "report.json"
    result = CliRunner().invoke(main, ["lrl", "score", str(results), "--problems", str(problems), "--json", str(report)])
    assert result.exit_code == 0, result.output
    assert f"| {ANSWER_FOLLOWS}, given {PEAK_RIGHT} | 50.0% [21.5, 78.5] (4/8) |" in result.output
    assert orjson.loads(report.read_bytes())["steps"][str(results)]["steps"][PEAK_RIGHT]["correct"] == 8
    assert "steps of the worked solutions" not in CliRunner().invoke(main, ["lrl", "score", str(results)]).output


def test_score_steps_need_results_of_one_domain(tmp_path):
    problems, results = tmp_path / "p.jsonl", tmp_path / "r.jsonl"
    write_problems(problems, PROBLEMS)
    mixed = [{**r, "domain": "arithmetic"} if i else r for i, r in enumerate(records(DOMAIN.worked_solution))]
    results.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in mixed))
    result = CliRunner().invoke(main, ["lrl", "score", str(results), "--problems", str(problems)])
    assert result.exit_code == 2 and "one domain; these have arithmetic, scheduling" in result.output
