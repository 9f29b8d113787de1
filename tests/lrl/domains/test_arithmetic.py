from fractions import Fraction

import pytest
from hypothesis import given, settings, strategies as st

from lrl.domain import split_overlap
from lrl.domains.arithmetic import ArithmeticDomain, answer_of, parse_number, run_steps

DOMAIN = ArithmeticDomain()


def test_steps_are_computed_exactly():
    amounts = run_steps(Fraction(7), [("sub", Fraction(6)), ("give", Fraction(3, 4)), ("scale", Fraction(3, 2))])
    assert amounts == [7, 1, Fraction(1, 4), Fraction(3, 8)]
    payload = {"name": "A", "good": "rice", "unit": "kg", "start": "10", "steps": [["give", "1/3"]], "share": 4}
    assert answer_of(payload) == Fraction(5, 3)


def test_problems_are_multi_step_disjoint_and_solved_by_their_worked_solutions():
    sets = [DOMAIN.generate(30, 2, split) for split in ("train", "dev", "test")]
    assert split_overlap(DOMAIN, [p for s in sets for p in s]).clean
    for p in sets[0]:
        assert len(p.payload["steps"]) >= 2
        assert DOMAIN.solve(p) == p.answer
        assert DOMAIN.check(p, DOMAIN.parse(DOMAIN.worked_solution(p, ["track the amount"]))).outcome == "correct"
        assert "ANSWER" in DOMAIN.render_prompt(p)


@pytest.mark.parametrize("text, value", [
    ("7/4", "7/4"), ("1 3/4", "7/4"), ("1.75", "7/4"), ("14/8", "7/4"), ("-2", "-2"),
    ("3 kg", "3"), ("1,250", "1250"), (".5", "1/2"),
])
def test_number_formats_parse_exactly(text, value):
    assert parse_number(text).answer == value


@pytest.mark.parametrize("text", ["abc", "1/0", "3 or 4", "3 or four", "about 3", "3 kg approximately", "", "1.2.3", "½"])
def test_non_numbers_are_parse_failures(text):
    assert not parse_number(text).ok


def test_rounded_decimals_are_wrong_not_close_enough():
    p = DOMAIN.from_json({"payload": {"name": "A", "good": "rice", "unit": "kg", "start": "1",
                                      "steps": [["give", "2/3"]], "share": 1}}, "f:1")
    assert p.answer == "1/3"
    assert DOMAIN.check(p, DOMAIN.parse("ANSWER: 0.333")).outcome == "wrong"
    assert DOMAIN.check(p, DOMAIN.parse("ANSWER: 2/6")).outcome == "correct"


def test_bad_payload_names_the_line():
    with pytest.raises(Exception, match="f:3: not an arithmetic problem"):
        DOMAIN.from_json({"payload": {"start": "x"}}, "f:3")


def test_parser_is_fast_on_pathological_spacing():
    import time
    started = time.monotonic()
    assert not parse_number("1" + " " * 50_000 + "!").ok
    assert time.monotonic() - started < 1


@settings(max_examples=400, deadline=None)
@given(st.text())
def test_parser_never_raises_on_arbitrary_text(text):
    problem = DOMAIN.generate(1, 0, "test")[0]
    for candidate in (text, f"ANSWER: {text}"):
        parsed = DOMAIN.parse(candidate)
        assert DOMAIN.check(problem, parsed).outcome in ("correct", "wrong", "parse_failure")
