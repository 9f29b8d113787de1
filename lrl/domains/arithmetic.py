"""Multi-step arithmetic word problems with exact rational answers, checked exactly.

A problem is a starting quantity and a chain of operations (buy more, use some, give away a
fraction of what is left, scale, share equally), told as a short story. Everything is computed
with `fractions.Fraction`, so the ground truth is exact; a response must state the exact value
(an integer, a fraction like 7/4, a mixed number like 1 3/4, or a terminating decimal) — 0.333
is not 1/3. Difficulty is the number of steps and whether the start is fractional.
"""
from __future__ import annotations

import random
import re
from fractions import Fraction
from typing import Sequence

from k1core.errors import UserError
from lrl.domain import (CORRECT, NO_FINAL_ANSWER, NO_REASONING, PARSE_FAILURE, WRONG, WRONG_FINAL_ANSWER, Parsed,
                        Problem, Verdict, check_choice, owner_split, problem_fields, reasoning_lines, split_salt,
                        strategy_header, strategy_preamble)
from lrl.domains.equations import equations
from lrl.final_answer import answer_line, final_value

DIFFICULTIES = ("easy", "medium", "hard")
NO_INTERMEDIATE, WRONG_INTERMEDIATE = "no intermediate values", "wrong intermediate value"
SYMBOLS = {"add": "+ {v}", "sub": "- {v}", "give": "x (1 - {v})", "scale": "x {v}"}
STEPS = {"easy": (2,), "medium": (3, 4), "hard": (5, 6)}
NAMES = ("Ada", "Bo", "Chen", "Dana", "Eli", "Farah", "Gus", "Hana")
GOODS = (("flour", "kg"), ("juice", "litres"), ("rope", "metres"), ("rice", "kg"), ("paint", "litres"))

# op -> (sentence template, how it changes the running amount x with parameter v)
OPS = {
    "add": ("buys {v} {unit} more", lambda x, v: x + v),
    "sub": ("uses {v} {unit}", lambda x, v: x - v),
    "give": ("gives away {v} of what is left", lambda x, v: x * (1 - v)),
    "scale": ("ends up with {v} times as much as before", lambda x, v: x * v),
}


def _fmt(q: Fraction) -> str:
    return str(q.numerator) if q.denominator == 1 else f"{q.numerator}/{q.denominator}"


def run_steps(start: Fraction, steps: Sequence[tuple[str, Fraction]]) -> list[Fraction]:
    """The running amount after each step, start included."""
    amounts = [start]
    for op, v in steps:
        amounts.append(OPS[op][1](amounts[-1], v))
    return amounts


def _draw(rng: random.Random, difficulty: str) -> dict:
    """One problem payload: every intermediate amount stays positive."""
    name, (good, unit) = rng.choice(NAMES), rng.choice(GOODS)
    start = Fraction(rng.randint(2, 40))
    if difficulty == "hard":
        start += Fraction(rng.randint(1, 3), 4)
    steps, x = [], start
    for _ in range(rng.choice(STEPS[difficulty])):
        op = rng.choice(tuple(OPS))
        if op == "add":
            v = Fraction(rng.randint(1, 20))
        elif op == "sub":
            v = Fraction(rng.randint(1, max(1, int(x) - 1)))
            if v >= x:
                op, v = "add", Fraction(rng.randint(1, 20))
        elif op == "give":
            den = rng.randint(2, 6)
            v = Fraction(rng.randint(1, den - 1), den)
        else:
            v = Fraction(rng.choice((2, 3, 3, 4)), rng.choice((1, 1, 2)))
        x = OPS[op][1](x, v)
        steps.append((op, v))
    share = rng.randint(2, 5) if rng.random() < 0.5 else 1
    return {"name": name, "good": good, "unit": unit, "start": _fmt(start),
            "steps": [[op, _fmt(v)] for op, v in steps], "share": share}


def answer_of(payload: dict) -> Fraction:
    steps = [(op, Fraction(v)) for op, v in payload["steps"]]
    return run_steps(Fraction(payload["start"]), steps)[-1] / payload["share"]


def render_story(p: dict) -> str:
    sentences = [f"{p['name']} has {p['start']} {p['unit']} of {p['good']}."]
    for op, v in p["steps"]:
        sentences.append("Then " + p["name"] + " " + OPS[op][0].format(v=v, unit=p["unit"]) + ".")
    if p["share"] > 1:
        sentences.append(f"Finally {p['name']} shares what is left equally among {p['share']} friends. "
                         f"How many {p['unit']} of {p['good']} does each friend get?")
    else:
        sentences.append(f"How many {p['unit']} of {p['good']} does {p['name']} have now?")
    return " ".join(sentences)


def true_quantities(payload: dict) -> tuple[set, set]:
    """(running amounts after each step and the answer; every value a correct solution may state)."""
    steps = [(op, Fraction(v)) for op, v in payload["steps"]]
    amounts = run_steps(Fraction(payload["start"]), steps)
    results = set(amounts[1:]) | {answer_of(payload)}
    stated = results | set(amounts) | {Fraction(payload["share"])}
    for (op, v), before, after in zip(steps, amounts, amounts[1:]):
        stated |= {v, after - before, before - after, 1 - v, before * v}
    return results, stated


def check_reasoning(problem: Problem, response: str) -> str | None:
    """Every equation the solution states must hold exactly, every value it states as a result must be
    one of the problem's true quantities, and at least one must be a running amount."""
    reasoning = "\n".join(reasoning_lines(response))
    if not reasoning:
        return NO_REASONING
    p = problem.payload
    units = frozenset({p["unit"].casefold(), p["good"].casefold(), "of", "x"})
    results, stated = true_quantities(p)
    found = equations(reasoning, units)
    for equation in found:
        if equation.holds is False or (equation.holds is None and equation.right_value is not None
                                       and equation.right_value not in stated):
            return WRONG_INTERMEDIATE
    return None if any(e.right_value in results for e in found) else NO_INTERMEDIATE


def checker_note(problem: Problem, response: str) -> str:
    """The true running amounts a reflection can compare its own with (the equations are left out)."""
    p = problem.payload
    amounts = run_steps(Fraction(p["start"]), [(op, Fraction(v)) for op, v in p["steps"]])
    shared = f", then shared among {p['share']}" if p["share"] > 1 else ""
    return f"Checker: the amount after each step is {', '.join(_fmt(a) for a in amounts[1:])}{shared}."


def worked_solution(problem: Problem, strategy_steps: Sequence[str] | None = None, verbose: bool = False) -> str:
    """One equation per step of the story, the sharing last; verbose adds the strategy and the story's words."""
    p = problem.payload
    steps = [(op, Fraction(v)) for op, v in p["steps"]]
    amounts = run_steps(Fraction(p["start"]), steps)
    lines = strategy_preamble(strategy_steps) + [f"Start: {_fmt(amounts[0])} {p['unit']}."] if verbose else []
    for (op, v), before, after in zip(steps, amounts, amounts[1:]):
        equation = f"{_fmt(before)} {SYMBOLS[op].format(v=_fmt(v))} = {_fmt(after)}"
        told = OPS[op][0].format(v=_fmt(v), unit=p["unit"])
        lines.append(f"{p['name']} {told}: {equation}" if verbose else equation)
    if p["share"] > 1:
        lines.append(f"Shared among {p['share']}: {_fmt(amounts[-1])} / {p['share']} = {_fmt(amounts[-1] / p['share'])}")
    return "\n".join(lines + [answer_line(_fmt(answer_of(p)))])


_NUMBER = re.compile(r"^(-?)(?:(\d+)\s+(\d+)/(\d+)|(\d+)/(\d+)|(\d+(?:\.\d+)?|\.\d+))(?P<unit>\s+[a-z][a-z ]*)?$",
                     re.IGNORECASE)
_HEDGES = {"or", "and", "to", "maybe", "approximately", "about", "roughly"}


def parse_number(value: str) -> Parsed:
    """An exact rational from an integer, a/b, a mixed number 'w a/b', or a decimal; units may follow."""
    text = value.strip().replace(",", "") if re.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?(\s.*)?", value.strip()) else value.strip()
    match = _NUMBER.match(text)
    if not match:
        return Parsed.fail(f"marked answer {value[:40]!r} is not a number")
    if _HEDGES & set((match.group("unit") or "").lower().split()):
        return Parsed.fail(f"marked answer {value[:40]!r} is hedged or gives several values")
    sign, whole, num, den, fnum, fden, plain = match.groups()[:7]
    try:
        if whole is not None:
            q = int(whole) + Fraction(int(num), int(den))
        elif fnum is not None:
            q = Fraction(int(fnum), int(fden))
        else:
            q = Fraction(plain)
    except ZeroDivisionError:
        return Parsed.fail(f"marked answer {value[:40]!r} divides by zero")
    return Parsed(_fmt(-q if sign else q))


class ArithmeticDomain:
    """Exact multi-step word problems (see the module docstring)."""

    name = "arithmetic"
    variants = ("story",)
    rejections = (NO_FINAL_ANSWER, WRONG_FINAL_ANSWER, NO_REASONING, NO_INTERMEDIATE, WRONG_INTERMEDIATE)

    def generate(self, n, seed, split="test", variant=None, difficulty=None, exclude=frozenset()):
        check_choice(variant, self.variants, "arithmetic variant")
        check_choice(difficulty, DIFFICULTIES, "difficulty")
        rng = random.Random(seed * 1000 + split_salt(split))
        problems, seen = [], set()
        for index in range(n):
            diff = difficulty or DIFFICULTIES[index % 3]
            for _ in range(100_000):
                payload = _draw(rng, diff)
                key = self._key(payload)
                if key not in seen and key not in exclude and owner_split(key) == split:
                    break
            else:  # pragma: no cover
                raise UserError(f"could not draw {n} distinct arithmetic problems")
            seen.add(key)
            problems.append(Problem(f"story-{split}-{index}", self.name, split, diff, "story",
                                    payload, _fmt(answer_of(payload))))
        return problems

    def from_json(self, obj, where):
        payload = obj.get("payload")
        try:
            answer = _fmt(answer_of(payload))
            render_story(payload)
        except (TypeError, KeyError, ValueError, ZeroDivisionError, AttributeError) as err:
            raise UserError(f"{where}: not an arithmetic problem payload ({type(err).__name__}: {err})") from None
        return Problem(payload=payload, answer=answer, **problem_fields(obj, where, self.name))

    @staticmethod
    def _key(payload: dict) -> str:
        return f"{payload['start']}|{payload['steps']}|{payload['share']}"

    def canonical_key(self, problem):
        return self._key(problem.payload)

    def render_prompt(self, problem, strategy=None):
        return (f"{strategy_header(strategy)}WORD PROBLEM:\n{render_story(problem.payload)}\n\n"
                "Give the exact value (an integer or a fraction like 7/4, not a rounded decimal).\n"
                "End your response with a final line `ANSWER: <value>`.")

    def parse(self, response, problem=None):
        value, reason = final_value(response)
        return Parsed.fail(reason) if reason else parse_number(value)

    def check(self, problem, parsed):
        if not parsed.ok:
            return Verdict(PARSE_FAILURE, parsed.failure)
        truth = answer_of(problem.payload)
        return Verdict(CORRECT if Fraction(parsed.answer) == truth else WRONG, f"expected {_fmt(truth)}")

    def solve(self, problem):
        return _fmt(answer_of(problem.payload))

    def worked_solution(self, problem, strategy_steps=None, verbose=False):
        return worked_solution(problem, strategy_steps, verbose)

    def check_reasoning(self, problem, response):
        return check_reasoning(problem, response)

    def checker_note(self, problem, response):
        return checker_note(problem, response)
