"""Stage 4's report section: CIs, majority baseline, paired tests and a verdict that follows the numbers."""
from __future__ import annotations

from lrl.transfer_report import render_transfer, transfer_summary


def records(correct_ids, n=200, truth=lambda i: "YES" if i % 4 else "NO"):
    return [{"id": str(i), "expected": truth(i), "parsed": truth(i) if i in correct_ids else "?",
             "parse_error": None, "verdict": "correct" if i in correct_ids else "wrong", "difficulty": "all"}
            for i in range(n)]


def test_clear_win_over_base_and_majority_is_reported_as_such():
    student = records(set(range(200)) - set(range(0, 200, 20)))  # 95%
    base = records({i for i in range(200) if i % 4})  # 75% = always YES
    teacher = records(set(range(200)) - set(range(0, 200, 10)))  # 90%
    summary = transfer_summary(student, base, teacher)
    assert summary["verdict"] == {"beats_majority": True, "beats_base": True}
    text = render_transfer(summary)
    assert "majority class (YES)" in text and "student vs teacher" in text and text.count("**yes**") == 2


def test_no_better_than_majority_is_reported_as_no():
    student = records({i for i in range(200) if i % 4})
    summary = transfer_summary(student, student)
    assert summary["verdict"] == {"beats_majority": False, "beats_base": False}
    assert "**no**" in render_transfer(summary) and "teacher" not in render_transfer(summary)
