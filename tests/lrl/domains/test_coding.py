from collections import Counter

import pytest
from hypothesis import given, settings, strategies as st

from k1core.errors import UserError
from lrl.domain import split_overlap
from lrl.domains.coding import FAMILIES, CodingDomain, _bank_problems, extract_code
from lrl.domains.coding_bank import BANK
from lrl.sandbox import SandboxLimits

DOMAIN = CodingDomain(SandboxLimits(cpu_seconds=1, wall_seconds=3.0))


def all_bank_problems():
    return [p for split in ("train", "dev", "test") for p in _bank_problems(split)]


def test_bank_has_fifty_distinct_problems_spread_over_the_splits():
    assert len(BANK) >= 50 and len({t.entry for t in BANK}) == len(BANK)
    problems = all_bank_problems()
    assert len(problems) == len(BANK)
    assert all(len(p.payload["tests"]) >= 3 for p in problems)
    assert all(Counter(p.split for p in problems)[s] >= 5 for s in ("train", "dev", "test"))


def _references_pass(problems):
    for p in problems:
        verdict = DOMAIN.check(p, DOMAIN.parse(DOMAIN.worked_solution(p, ["think of edge cases"])))
        assert verdict.outcome == "pass", (p.id, verdict)


def test_reference_solutions_pass_their_hidden_tests_in_the_sandbox():
    _references_pass(all_bank_problems()[::6] + DOMAIN.generate(3, 0, "train", "families"))


@pytest.mark.slow
def test_every_reference_solution_passes_its_hidden_tests_in_the_sandbox():
    _references_pass(all_bank_problems() + DOMAIN.generate(20, 0, "train", "families"))


def test_families_make_distinct_disjoint_problems():
    sets = [DOMAIN.generate(20, 4, split, "families") for split in ("train", "dev", "test")]
    assert split_overlap(DOMAIN, [p for s in sets for p in s]).clean
    assert len({p.payload["entry"] for s in sets for p in s}) == len(FAMILIES)


def test_mixed_fills_with_family_problems_and_bank_refuses_too_many():
    problems = DOMAIN.generate(40, 1, "dev", "mixed")
    assert len(problems) == 40 and {p.variant for p in problems} == {"bank", "families"}
    with pytest.raises(Exception, match="fewer than"):
        DOMAIN.generate(40, 1, "dev", "bank")


def test_a_difficulty_is_refused_rather_than_ignored():
    with pytest.raises(UserError, match="no difficulty levels"):
        DOMAIN.generate(4, 1, "dev", "mixed", difficulty="hard")


FIB = next(p for p in all_bank_problems() if p.payload["entry"] == "fibonacci")


@pytest.mark.parametrize("response, outcome", [
    ("```python\ndef fibonacci(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n```", "pass"),
    ("```python\ndef fibonacci(n):\n    return n\n```", "fail"),
    ("```python\ndef fibonacci(n):\n    return 1 // 0\n```", "error"),
    ("```python\ndef fib(n):\n    return 0\n```", "error"),
    ("```python\ndef fibonacci(n:\n```", "error"),
    ("```python\ndef fibonacci(n):\n    while True:\n        pass\n```", "timeout"),
    ("```python\nimport os\ndef fibonacci(n):\n    os.fork()\n```", "error"),
    ("def fibonacci(n): return n", "parse_failure"),
    ("```python\nprint('draft')\n```\nBetter:\n```python\ndef fibonacci(n):\n    return [0, 1, 1, 2, 3, 5, 8, 13, 21, 34, 55][n] if n < 11 else 2880067194370816120\n```", "pass"),
])
def test_verdicts_distinguish_pass_fail_error_timeout_and_parse_failure(response, outcome):
    assert DOMAIN.check(FIB, DOMAIN.parse(response)).outcome == outcome


def test_prompt_shows_one_example_but_not_the_hidden_tests():
    prompt = DOMAIN.render_prompt(FIB, "Trace small cases.")
    assert "fibonacci(0) == 0" in prompt and "Trace small cases." in prompt
    assert "2880067194370816120" not in prompt


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_code_extraction_never_raises(text):
    parsed = extract_code(text)
    assert parsed.ok or parsed.failure
