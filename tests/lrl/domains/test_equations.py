"""Equations in arithmetic solutions: any notation for the operators, exact values, prose is not arithmetic."""
from fractions import Fraction

from hypothesis import given, settings, strategies as st

from lrl.domain import rejection_reason
from lrl.domains.arithmetic import NO_INTERMEDIATE, WRONG_INTERMEDIATE, ArithmeticDomain, worked_solution
from lrl.domains.equations import equations, evaluate

DOMAIN = ArithmeticDomain()
TIMES = ("x", "×", "*", "·")


def test_notations_evaluate_exactly():
    assert evaluate("17 × (1 − 1/3)") == Fraction(34, 3)
    assert evaluate("1/3 of 12") == 4 and evaluate("1 3/4 + 1") == Fraction(11, 4)
    assert evaluate("12 kg + 5 kg", frozenset({"kg"})) == 17
    assert evaluate("left after giving away 1/3") is None and evaluate("2 ** 100") is None
    assert evaluate("5 / 0") is None and evaluate("") is None


def test_labels_chains_and_approximations():
    (a,) = equations("Step 2: 17 x 2/3 = 34/3 ≈ 11.33")
    assert a.holds is True
    b, c = equations("12 + 5 = 17 = 18")
    assert b.holds is True and c.holds is False
    (d,) = equations("17 x 2/3 = 11.33")
    assert d.holds is False  # a rounded value is not the exact one


@settings(max_examples=150, deadline=None)
@given(index=st.integers(0, 59), times=st.sampled_from(TIMES), spaced=st.booleans(), bold=st.booleans(),
       bullet=st.sampled_from(("", "- ", "* ", "1. ")))
def test_the_solution_is_kept_in_any_notation(index, times, spaced, bold, bullet):
    problem = DOMAIN.generate(60, seed=5, split="train")[index]
    lines = worked_solution(problem).splitlines()
    rewritten = []
    for line in lines[:-1]:
        line = line.replace(" x ", f" {times} ")
        line = line if spaced else line.replace(" ", "")
        rewritten.append(bullet + (f"**{line}**" if bold else line))
    assert rejection_reason(DOMAIN, problem, "\n".join(rewritten + lines[-1:])) is None


@settings(max_examples=150, deadline=None)
@given(index=st.integers(0, 59), which=st.integers(0, 10), delta=st.sampled_from((1, -1, Fraction(1, 2))))
def test_one_false_intermediate_value_rejects_a_right_answer(index, which, delta):
    problem = DOMAIN.generate(60, seed=5, split="train")[index]
    lines = worked_solution(problem).splitlines()
    row = which % (len(lines) - 1)
    left, right = lines[row].rsplit("=", 1)
    lines[row] = f"{left}= {Fraction(right.strip()) + delta}"
    assert rejection_reason(DOMAIN, problem, "\n".join(lines)) == WRONG_INTERMEDIATE


def test_prose_without_values_is_not_enough():
    problem = DOMAIN.generate(1, seed=0, split="train")[0]
    assert rejection_reason(DOMAIN, problem, f"I followed the story.\nANSWER: {problem.answer}") == NO_INTERMEDIATE
