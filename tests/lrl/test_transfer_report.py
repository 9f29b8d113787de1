"""Stage 4's report section: CIs, majority baseline, paired tests and a verdict that follows the numbers,
both prompt formats side by side."""
from __future__ import annotations

from lrl.domain import get_domain
from lrl.evaluation import result_record
from lrl.step_report import step_summary
from lrl.transfer_report import render_steps_by_format, render_transfer, transfer_by_format, transfer_summary


def records(correct_ids, n=200, truth=lambda i: "YES" if i % 4 else "NO"):
    return [{"id": str(i), "expected": truth(i), "parsed": truth(i) if i in correct_ids else "?",
             "parse_error": None, "verdict": "correct" if i in correct_ids else "wrong", "difficulty": "all"}
            for i in range(n)]


STUDENT = records(set(range(200)) - set(range(0, 200, 20)))  # 95%
ALWAYS_YES = records({i for i in range(200) if i % 4})  # 75% = the majority class
TEACHER = records(set(range(200)) - set(range(0, 200, 10)))  # 90%


def test_clear_win_over_base_and_majority_is_reported_as_such():
    summary = transfer_summary(STUDENT, ALWAYS_YES, TEACHER)
    assert summary["verdict"] == {"beats_majority": True, "beats_base": True}
    assert summary["vs_base"]["only_a"] == 40 and summary["vs_teacher"]["only_a"] == 10


def test_the_teacher_is_paired_on_the_items_it_answered():
    answered = TEACHER[::4]  # --teacher-items: a subset of the test split
    summary = transfer_summary(STUDENT, ALWAYS_YES, answered)
    assert summary["teacher"]["n"] == summary["vs_teacher"]["n"] == 50
    assert summary["student"]["n"] == summary["vs_base"]["n"] == 200
    table = render_transfer(transfer_by_format({"zero-shot": STUDENT}, {"zero-shot": ALWAYS_YES}, answered, ("zero-shot",)))
    assert "| exported − teacher (paired, on the teacher's 50 items) |" in table


def test_no_better_than_majority_is_reported_as_no():
    summary = transfer_summary(ALWAYS_YES, ALWAYS_YES)
    assert summary["verdict"] == {"beats_majority": False, "beats_base": False}


def test_both_formats_side_by_side_with_trained_marks_and_the_format_comparison():
    summary = transfer_by_format({"zero-shot": STUDENT, "strategy": ALWAYS_YES},
                                 {"zero-shot": ALWAYS_YES, "strategy": ALWAYS_YES}, TEACHER, ("zero-shot",))
    assert summary["formats"]["zero-shot"]["trained"] and not summary["formats"]["strategy"]["trained"]
    assert summary["formats"]["zero-shot"]["verdict"] == {"beats_majority": True, "beats_base": True}
    assert summary["formats"]["strategy"]["verdict"] == {"beats_majority": False, "beats_base": False}
    assert summary["strategy_vs_zero_shot"]["only_b"] == 40
    text = render_transfer(summary)
    assert "no strategy in prompt (`zero-shot`) | strategy in prompt (`strategy`)" in text
    assert "**no** (generalization only)" in text and "always YES" in text and "teacher (stage 1" in text
    assert "95.0% [91.0, 97.3] (190/200; 0.0% unparsed)" in text
    assert "| exported CI above the majority baseline | **yes** | **no** |" in text
    assert "strategy in prompt − no strategy (paired): -20.0 pts" in text


def test_without_a_teacher_there_is_no_teacher_row():
    summary = transfer_by_format({"zero-shot": STUDENT}, {"zero-shot": ALWAYS_YES}, None, ("zero-shot",))
    text = render_transfer(summary)
    assert "teacher" not in text and "strategy_vs_zero_shot" not in summary


def test_the_step_section_has_a_column_per_student_and_prompt_format():
    domain = get_domain("scheduling")
    problems = domain.generate(4, 3, "test", "balanced")
    solved = step_summary(domain, problems, [result_record(domain, p, domain.worked_solution(p)) for p in problems])
    bare = step_summary(domain, problems, [result_record(domain, p, "ANSWER: YES") for p in problems])
    text = render_steps_by_format({"exported": {"zero-shot": solved, "strategy": solved},
                                   "base": {"zero-shot": bare, "strategy": bare}})
    assert text.startswith("### Worked solutions, step by step")
    assert ("| Step | exported student, `zero-shot` | exported student, `strategy` | base student, `zero-shot` "
            "| base student, `strategy` |") in text
    assert "| peak stated | 100.0% [51.0, 100.0] (4/4) | 100.0% [51.0, 100.0] (4/4) | 0.0% [0.0, 49.0] (0/4) " in text
