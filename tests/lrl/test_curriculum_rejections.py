"""Every rejection reason of every domain, produced by a scripted teacher and counted by the curriculum."""
from __future__ import annotations

from fractions import Fraction

import pytest

from backends.llm import Completion
from lrl.curriculum import TEACHER, CurriculumConfig, build_curriculum, train_problems
from lrl.domain import get_domain, rejection_reason
from lrl.domains.arithmetic import answer_of, run_steps
from lrl.domains.scheduling import peak_overlap
from lrl.final_answer import answer_line

STRATEGY = "1. Work it out step by step.\n2. Check the result."


def _scheduling(reason, problem):
    peak, truth = peak_overlap(problem.payload["meetings"]), problem.answer
    wrong = peak + 1 if isinstance(truth, int) else ("NO" if truth == "YES" else "YES")
    return {
        "no final answer": f"The peak is {peak}.",
        "wrong final answer": f"The peak is {peak}.\n{answer_line(str(wrong))}",
        "no reasoning": answer_line(str(truth)),
        "no peak stated": f"I looked at every meeting carefully.\n{answer_line(str(truth))}",
        "right answer, wrong peak": f"At most {peak + 3} meetings overlap.\n{answer_line(str(truth))}",
        None: f"Sorted the events; the maximum overlap is {peak} meetings.\n**ANSWER: {truth}**",
    }[reason]


def _arithmetic(reason, problem):
    p = problem.payload
    amounts = run_steps(Fraction(p["start"]), [(op, Fraction(v)) for op, v in p["steps"]])
    first = f"{p['start']} {'+' if amounts[1] > amounts[0] else '-'} {abs(amounts[1] - amounts[0])}"
    truth = problem.answer
    return {
        "no final answer": f"{first} = {amounts[1]}",
        "wrong final answer": f"{first} = {amounts[1]}\n{answer_line(str(answer_of(p) + 1))}",
        "no reasoning": answer_line(truth),
        "no intermediate values": f"I tracked the amount through the story.\n{answer_line(truth)}",
        "wrong intermediate value": f"{first} = {amounts[1] + 1}\n{answer_line(truth)}",
        None: f"Step 1: {first} = {amounts[1]} {p['unit']}\n{answer_line(truth)}",
    }[reason]


def _coding(reason, problem):
    p = problem.payload
    code = f"```python\n{p['reference']}\n```"
    return {
        "no final answer": "Loop over the input and keep a running result.",
        "hidden tests fail": f"Return nothing:\n```python\ndef {p['entry']}(*args):\n    return None\n```",
        "no reasoning": code,
        None: f"Handle the empty input first.\n{code}",
    }[reason]


SCRIPTS = {"scheduling": (_scheduling, ("balanced", "min-rooms")), "arithmetic": (_arithmetic, ()),
           "coding": (_coding, ("families",))}


class ScriptedTeacher:
    """Writes, for every problem, the solution its test asks for."""

    model, backend = "scripted", "test"

    def __init__(self, write, problems):
        self.write, self.problems = write, {p.id: p for p in problems}

    def complete_many(self, requests, progress=None):
        return [Completion(self.write(self.problems[r.custom_id]), 10, 5, 0, 0, 0.0, 0.0, "scripted", "test", "stop")
                for r in requests]


def _cases():
    for name, (script, variants) in SCRIPTS.items():
        for reason in get_domain(name).rejections:
            yield pytest.param(name, variants, reason, id=f"{name}-{reason}")


@pytest.mark.parametrize("name, variants, reason", list(_cases()))
def test_each_rejection_reason_is_counted(name, variants, reason):
    domain, script = get_domain(name), SCRIPTS[name][0]
    config = CurriculumConfig(n_problems=4, variants=variants, teacher_fraction=1.0, prompt_formats=("strategy",))
    teacher = ScriptedTeacher(lambda p: script(reason, p), train_problems(domain, config))
    stats = build_curriculum(domain, STRATEGY, config, teacher).stats()
    assert stats["teacher_rejected_by_reason"] == {reason: 4} and stats["from_teacher"] == 0


@pytest.mark.parametrize("name", SCRIPTS)
def test_reasoned_right_solutions_are_kept(name):
    domain, (script, variants) = get_domain(name), SCRIPTS[name]
    config = CurriculumConfig(n_problems=4, variants=variants, teacher_fraction=1.0, prompt_formats=("strategy",))
    teacher = ScriptedTeacher(lambda p: script(None, p), train_problems(domain, config))
    curriculum = build_curriculum(domain, STRATEGY, config, teacher)
    assert curriculum.sources == [TEACHER] * 4 and not curriculum.teacher_rejected


@pytest.mark.parametrize("name", SCRIPTS)
@pytest.mark.parametrize("verbose", [False, True])
def test_the_solvers_own_traces_pass_the_verifier(name, verbose):
    domain, variants = get_domain(name), SCRIPTS[name][1] or (None,)
    for variant in variants:
        for problem in domain.generate(6 if name == "coding" else 30, seed=1, split="train", variant=variant):
            text = domain.worked_solution(problem, ["work it out"], verbose=verbose)
            assert rejection_reason(domain, problem, text) is None, text
