"""Python coding as a TransferDomain: write a function, judged by hidden tests in the sandbox.

Problems come from the hand-written bank (`coding_bank.BANK`) and from parameterised families
below (each draw changes the constants, so a family yields many distinct problems). A problem's
payload holds the statement, the reference solution and the hidden tests; the prompt shows only
the statement, the signature and one example call.

The response must contain the code in a fenced block (```python ... ```); the last such block
is the answer. The sandbox (`lrl.sandbox`) runs it against every hidden test; verdicts are
pass, fail (some result differed), error (exception, limit hit, missing function), timeout, or
parse_failure (no code block). There is no single answer value: `Problem.answer` is None and
`solve` returns the reference source.
"""
from __future__ import annotations

import json
import random
import re
from typing import Sequence

from k1core.errors import UserError
from lrl.domain import (ERROR, FAIL, NO_FINAL_ANSWER, NO_REASONING, PARSE_FAILURE, PASS, TESTS_FAIL, TIMEOUT,
                        Parsed, Problem, Verdict, check_choice, owner_split, problem_fields, reasoning_lines,
                        split_salt, strategy_header, strategy_preamble)
from lrl.domains.coding_bank import BANK, CodingTask, coding_task
from lrl.sandbox import SandboxLimits, run_python

VARIANTS = ("mixed", "bank", "families")
STALL_DRAWS = 20_000  # draws in a row without a new problem after which the families count as exhausted
_FENCE = re.compile(r"```[ \t]*(?:python|py|python3)?[ \t]*\n(.*?)```", re.IGNORECASE | re.DOTALL)


# ---------------------------------------------------------------- parameterised families

def _sum_multiples(rng: random.Random) -> CodingTask:
    a, b = rng.sample(range(2, 10), 2)
    return coding_task(
        "def sum_multiples(n: int) -> int",
        f"Sum of all integers k with 0 < k < n that are divisible by {a} or by {b}.",
        f"def sum_multiples(n):\n    return sum(k for k in range(1, n) if k % {a} == 0 or k % {b} == 0)",
        (0,), (1,), (10,), (a * b + 1,), (1000,))


def _linear_recurrence(rng: random.Random) -> CodingTask:
    p, q, x0, x1 = rng.randint(1, 3), rng.randint(-2, 2), rng.randint(0, 3), rng.randint(1, 4)
    return coding_task(
        "def recurrence(n: int) -> int",
        f"x(0) = {x0}, x(1) = {x1}, x(n) = {p} * x(n-1) + ({q}) * x(n-2) for n >= 2. Return x(n) for n >= 0.",
        f"def recurrence(n):\n    a, b = {x0}, {x1}\n    for _ in range(n):\n        a, b = b, {p} * b + ({q}) * a\n    return a",
        (0,), (1,), (2,), (7,), (20,))


def _rotate_list(rng: random.Random) -> CodingTask:
    k = rng.randint(1, 9)
    return coding_task(
        "def rotate(xs: list) -> list",
        f"Rotate xs to the right by {k} positions (wrapping around; the empty list stays empty).",
        f"def rotate(xs):\n    if not xs:\n        return []\n    k = {k} % len(xs)\n    return xs[-k:] + xs[:-k] if k else list(xs)",
        ([],), ([1],), ([1, 2, 3, 4, 5],), (list(range(12)),), (["a", "b"],))


def _caesar_encode(rng: random.Random) -> CodingTask:
    k = rng.randint(1, 25)
    return coding_task(
        "def encode(s: str) -> str",
        f"Shift each ASCII letter {k} places forward in the alphabet (wrapping, keeping case); other characters unchanged.",
        f"def encode(s):\n    out = []\n    for c in s:\n        if c.isascii() and c.isalpha():\n            base = ord('a') if c.islower() else ord('A')\n            out.append(chr((ord(c) - base + {k}) % 26 + base))\n        else:\n            out.append(c)\n    return ''.join(out)",
        ("",), ("abc xyz",), ("Hello, World!",), ("ZzÄ9",))


def _count_threshold(rng: random.Random) -> CodingTask:
    d, t = rng.randint(2, 7), rng.randint(-5, 20)
    return coding_task(
        "def count_matching(xs: list[int]) -> int",
        f"Count the elements of xs that are divisible by {d} and strictly greater than {t}.",
        f"def count_matching(xs):\n    return sum(1 for x in xs if x % {d} == 0 and x > {t})",
        ([],), (list(range(-10, 40)),), ([t, t + d, 0],), ([d * 100, -d],))


FAMILIES = {f.__name__.lstrip("_"): f for f in
            (_sum_multiples, _linear_recurrence, _rotate_list, _caesar_encode, _count_threshold)}


# ---------------------------------------------------------------- problems

def _expected_outputs(task: CodingTask) -> list[list]:
    """[[args, expected]] by running the trusted reference in-process, JSON-normalised."""
    namespace: dict = {}
    exec(compile(task.reference, f"<reference {task.entry}>", "exec"), namespace)
    fn = namespace[task.entry]
    return [json.loads(json.dumps([list(args), fn(*args)])) for args in task.inputs]


def make_problem(task: CodingTask, pid: str, split: str, difficulty: str, variant: str) -> Problem:
    payload = {"entry": task.entry, "signature": task.signature, "statement": task.statement,
               "reference": task.reference, "tests": _expected_outputs(task)}
    return Problem(pid, "coding", split, difficulty, variant, payload, None)


def _bank_problems(split: str, exclude: frozenset = frozenset()) -> list[Problem]:
    return [make_problem(t, f"bank-{t.entry}", split, "bank", "bank")
            for t in BANK if owner_split(t.reference) == split and t.reference not in exclude]


def _family_problems(n: int, seed: int, split: str, exclude: frozenset = frozenset()) -> list[Problem]:
    rng = random.Random(seed * 1000 + split_salt(split))
    names, problems, seen, misses = sorted(FAMILIES), [], set(), 0
    while misses < STALL_DRAWS:  # the families hold a few hundred problems: stop once they are drawn out
        if len(problems) == n:
            return problems
        name = rng.choice(names)
        task = FAMILIES[name](rng)
        if task.reference in seen or task.reference in exclude or owner_split(task.reference) != split:
            misses += 1
            continue
        seen.add(task.reference)
        misses = 0
        problems.append(make_problem(task, f"family-{split}-{len(problems)}-{name}", split, "family", "families"))
    raise UserError(f"could only draw {len(problems)} distinct family problems for split {split}")


def extract_code(response: str) -> Parsed:
    """The last fenced code block of the response, or a parse failure."""
    if not isinstance(response, str):
        return Parsed.fail("response is not text")
    blocks = [b for b in _FENCE.findall(response) if b.strip()]
    if not blocks:
        return Parsed.fail("no fenced ```python code block")
    return Parsed(blocks[-1])


def harness_program(code: str, entry: str, tests: list) -> str:
    """The program the sandbox runs: load the candidate, call `entry` on each test, report."""
    # json.dumps/loads are bound before the candidate runs (it could patch the module), and every
    # result is normalised through them, which also strips any custom __eq__ from returned objects.
    return f"""import json
dumps, loads = json.dumps, json.loads
CANDIDATE = {code!r}
TESTS = {json.dumps(tests)!r}
ENTRY = {entry!r}
namespace = {{"__name__": "solution"}}
try:
    exec(compile(CANDIDATE, "<solution>", "exec"), namespace)
except BaseException as err:
    report({{"phase": "load", "error": type(err).__name__ + ": " + str(err)[:200]}})
    raise SystemExit(1)
fn = namespace.get(ENTRY)
if not callable(fn):
    report({{"phase": "load", "error": "no function named " + ENTRY}})
    raise SystemExit(1)
results = []
for args, expected in loads(TESTS):
    try:
        got = loads(dumps(fn(*args)))
        results.append(["pass" if got == expected else "fail", repr(args)[:80], repr(got)[:80]])
    except (Exception, RecursionError, MemoryError) as err:
        results.append(["error", repr(args)[:80], type(err).__name__ + ": " + str(err)[:120]])
report({{"phase": "tests", "results": results}})
"""


def judge(run) -> Verdict:
    """Map a sandbox run of the harness to a verdict."""
    if run.status == "timeout":
        return Verdict(TIMEOUT, run.detail)
    if run.status == "killed":
        return Verdict(ERROR, run.detail)
    report = run.report
    if not isinstance(report, dict) or report.get("phase") != "tests":
        reason = report.get("error") if isinstance(report, dict) else (run.detail or "no report")
        return Verdict(ERROR, str(reason))
    results = report["results"]
    for outcome in (ERROR, FAIL):
        bad = [r for r in results if r[0] == outcome]
        if bad:
            return Verdict(outcome, f"{len(bad)}/{len(results)} tests {outcome}; first: args {bad[0][1]} -> {bad[0][2]}")
    return Verdict(PASS, f"{len(results)}/{len(results)} tests pass")


class CodingDomain:
    """Write-a-Python-function problems judged by hidden tests in the sandbox."""

    name = "coding"
    variants = VARIANTS
    runs_model_code = True  # checking an answer executes it: only under the sandbox's OS isolation
    rejections = (NO_FINAL_ANSWER, TESTS_FAIL, NO_REASONING)

    def __init__(self, limits: SandboxLimits = SandboxLimits()):
        self.limits = limits

    def generate(self, n, seed, split="test", variant=None, difficulty=None, exclude=frozenset()):
        variant = variant or "mixed"
        check_choice(variant, VARIANTS, "coding variant")
        if difficulty is not None:  # a problem's difficulty here is its source, which --variant picks
            raise UserError(f"coding problems have no difficulty levels (got {difficulty!r}); "
                            f"choose a variant: {', '.join(VARIANTS)}")
        split_salt(split)
        bank = _bank_problems(split, exclude) if variant != "families" else []
        random.Random(seed).shuffle(bank)
        if variant == "bank" and n > len(bank):
            raise UserError(f"the {split} split holds {len(bank)} hand-written problems, fewer than {n}")
        chosen = bank[:n]
        return chosen + _family_problems(n - len(chosen), seed, split, exclude) if len(chosen) < n else chosen

    def from_json(self, obj, where):
        payload = obj.get("payload")
        keys = ("entry", "signature", "statement", "reference", "tests")
        if not isinstance(payload, dict) or any(k not in payload for k in keys):
            raise UserError(f"{where}: a coding problem needs payload keys {', '.join(keys)}")
        if not isinstance(payload["tests"], list) or not all(isinstance(t, list) and len(t) == 2 for t in payload["tests"]):
            raise UserError(f"{where}: payload 'tests' must be a list of [args, expected] pairs")
        return Problem(payload=payload, answer=None, **problem_fields(obj, where, self.name))

    def canonical_key(self, problem):
        return problem.payload["reference"]

    def render_prompt(self, problem, strategy=None):
        p = problem.payload
        args, expected = p["tests"][0]
        call = f"{p['entry']}({', '.join(repr(a) for a in args)})"
        return (f"{strategy_header(strategy)}PYTHON PROBLEM:\nWrite `{p['signature']}`.\n{p['statement']}\n"
                f"Example: {call} == {expected!r}\n\n"
                "Use only the standard library. Put the complete function in one ```python code block; "
                "the last code block in your response is the one that is tested.")

    def parse(self, response, problem=None):
        return extract_code(response)

    def check(self, problem, parsed):
        if not parsed.ok:
            return Verdict(PARSE_FAILURE, parsed.failure)
        p = problem.payload
        return judge(run_python(harness_program(parsed.answer, p["entry"], p["tests"]), self.limits))

    def solve(self, problem):
        return problem.payload["reference"]

    def worked_solution(self, problem, strategy_steps: Sequence[str] | None = None, verbose=False):
        p = problem.payload
        code = f"```python\n{p['reference'].rstrip()}\n```"
        if not verbose:
            return f"Handle the edge cases (empty input, boundaries), then:\n{code}"
        lines = strategy_preamble(strategy_steps)
        lines.append(f"The task: {p['statement']}")
        lines.append("Check the edge cases the statement implies (empty input, boundaries), then write it:")
        return "\n".join(lines + [code])

    def check_reasoning(self, problem, response):
        """Code that passes the hidden tests (checked before this) must come with words saying how."""
        return None if reasoning_lines(_FENCE.sub("", response)) else NO_REASONING
