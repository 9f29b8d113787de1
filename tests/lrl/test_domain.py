import pytest
from hypothesis import given, settings, strategies as st

from k1core.errors import UserError
from lrl.domain import Verdict, get_domain, read_problems, split_overlap, write_problems
from lrl.final_answer import final_value


def test_registry_knows_the_three_domains_and_rejects_others():
    assert all(get_domain(n).name == n for n in ("scheduling", "coding", "arithmetic"))
    with pytest.raises(UserError, match="unknown domain 'chess'; choose one of scheduling, coding, arithmetic"):
        get_domain("chess")


@pytest.mark.parametrize("name", ["scheduling", "coding", "arithmetic"])
def test_problems_round_trip_through_jsonl(tmp_path, name):
    domain = get_domain(name)
    problems = domain.generate(6, 11, "dev")
    write_problems(tmp_path / "p.jsonl", problems)
    assert read_problems(tmp_path / "p.jsonl") == problems
    assert read_problems(tmp_path / "p.jsonl", domain) == problems


def test_read_problems_errors(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        read_problems(tmp_path / "missing.jsonl")
    (tmp_path / "p.jsonl").write_text('{"domain": "scheduling", "meetings": [[1, 2]], "rooms": 1}\n{"meetings": [[1, 2]]}\n')
    with pytest.raises(UserError, match=r"p.jsonl:2: key 'domain'"):
        read_problems(tmp_path / "p.jsonl")
    (tmp_path / "d.jsonl").write_text('{"id": "a", "meetings": [[1, 2]], "rooms": 1}\n{"id": "a", "meetings": [[1, 3]], "rooms": 1}\n')
    with pytest.raises(UserError, match="duplicate problem ids"):
        read_problems(tmp_path / "d.jsonl", get_domain("scheduling"))


def test_split_overlap_reports_canonical_duplicates():
    domain = get_domain("scheduling")
    a = domain.from_json({"id": "a", "split": "train", "meetings": [[1, 2], [3, 4]], "rooms": 1}, "x:1")
    b = domain.from_json({"id": "b", "split": "test", "meetings": [[3, 4], [1, 2]], "rooms": 1}, "x:2")
    c = domain.from_json({"id": "c", "split": "test", "meetings": [[3, 4], [1, 2]], "rooms": 2}, "x:3")
    report = split_overlap(domain, [a, b, c])
    assert list(report.duplicates.values()) == [{"train": ["a"], "test": ["b"]}]


def test_verdict_outcomes_are_checked():
    assert Verdict("pass").success and not Verdict("timeout").success
    with pytest.raises(ValueError):
        Verdict("maybe")


@pytest.mark.parametrize("text, value", [
    ("ANSWER: YES", "YES"), ("**ANSWER:** no", "no"), ("- **Answer**: **Yes**.", "Yes"),
    ("answer = 3", "3"), ("### ANSWER: `7/4`", "7/4"), ("ANSWER: yes\nANSWER: YES", "YES"),
])
def test_final_value_accepts_decorated_markers(text, value):
    assert final_value(text) == (value, None)


@pytest.mark.parametrize("text, reason", [
    ("The answer is yes", "no line"), ("ANSWER:", "empty"), ("ANSWER: YES\nANSWER: NO", "conflicting"),
    (None, "not text"),
])
def test_final_value_failures_say_why(text, reason):
    value, why = final_value(text)
    assert value is None and reason in why


@settings(max_examples=500, deadline=None)
@given(st.text())
def test_final_value_never_raises(text):
    value, reason = final_value(text)
    assert (value is None) != (reason is None)
