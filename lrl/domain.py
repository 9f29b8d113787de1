"""The seam between LRL stages and a task: problems, prompts, answer parsing, checking, solutions.

Every stage (baseline, bootstrap with reflection, teacher+strategy, transfer) and the curriculum
builder talk to a task only through `TransferDomain`, so adding a task means adding one module in
`lrl/domains/` and one line in the registry below.

Answers travel in one marked format for every domain: the response's final answer is the last
line of the form `ANSWER: <value>` (see `lrl.final_answer`). Anything else is a parse failure,
reported as such and scored as wrong, never silently mapped to a default answer.
"""
from __future__ import annotations

import hashlib
import importlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Protocol, Sequence

import orjson

from k1core.errors import UserError
from k1core.json_object import json_object
from lrl.final_answer import marked_values

SPLITS = ("train", "dev", "test")

# Verdict outcomes: answer domains use the first three, code uses pass/fail/error/timeout.
CORRECT, WRONG, PARSE_FAILURE = "correct", "wrong", "parse_failure"
PASS, FAIL, ERROR, TIMEOUT = "pass", "fail", "error", "timeout"
OUTCOMES = (CORRECT, WRONG, PARSE_FAILURE, PASS, FAIL, ERROR, TIMEOUT)
SUCCESS_OUTCOMES = (CORRECT, PASS)

# Why a teacher solution is rejected before its reasoning is read (see `rejection_reason`).
NO_FINAL_ANSWER, WRONG_FINAL_ANSWER, TESTS_FAIL = "no final answer", "wrong final answer", "hidden tests fail"
NO_REASONING = "no reasoning"
ANSWER_REJECTIONS = {PARSE_FAILURE: NO_FINAL_ANSWER, WRONG: WRONG_FINAL_ANSWER,
                     FAIL: TESTS_FAIL, ERROR: TESTS_FAIL, TIMEOUT: TESTS_FAIL}


@dataclass(frozen=True)
class Problem:
    """One task instance; `payload` is domain-specific JSON, `answer` its ground truth (JSON too).

    Compared by value but not hashable (the payload is a dict): key collections by `id`, or by
    the domain's `canonical_key` to find the same task under another id.
    """

    id: str
    domain: str
    split: str
    difficulty: str
    variant: str
    payload: dict
    answer: Any

    def to_json(self) -> dict:
        """A JSON-ready dict; `Problem.from_json(p.to_json()) == p` for JSON-native payloads."""
        return {"id": self.id, "domain": self.domain, "split": self.split,
                "difficulty": self.difficulty, "variant": self.variant,
                "payload": self.payload, "answer": self.answer}


@dataclass(frozen=True)
class Parsed:
    """What a response said: an answer, or an explicit failure with the reason (never a default)."""

    answer: Any = None
    failure: str | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None

    @classmethod
    def fail(cls, reason: str) -> "Parsed":
        return cls(answer=None, failure=reason)


@dataclass(frozen=True)
class Verdict:
    """The outcome of checking one parsed response against the problem, with a short detail."""

    outcome: str
    detail: str = ""

    def __post_init__(self):
        if self.outcome not in OUTCOMES:
            raise ValueError(f"unknown verdict outcome {self.outcome!r}; expected one of {OUTCOMES}")

    @property
    def success(self) -> bool:
        return self.outcome in SUCCESS_OUTCOMES


class TransferDomain(Protocol):
    """A task the LRL pipeline can learn: generate, render, parse, check, solve, explain.

    Optional, for domains whose solutions have checkable steps (`lrl.step_report` finds them):
    `step_checks(problem, response) -> dict[str, bool | None]`, each step of the response's worked
    solution in order, right (True), wrong (False) or not stated (None), never raising on any text;
    and `step_conditions`, (step, given step) pairs whose conditional rate locates a failure.
    Optional too: `ood_variants`, variant -> the variants that ask the same question of problems
    unlike its own, for stage 4b's out-of-distribution tests. And `checker_note(problem, response)
    -> str`: one line of what the checker computed that decides the answer (scheduling: the peak;
    arithmetic: the running amounts) beside what the response stated, without the procedure, for
    the teacher's reflection on its mistakes.
    """

    name: str
    variants: tuple[str, ...]
    rejections: tuple[str, ...]  # every reason `rejection_reason` can give for this domain

    def generate(self, n: int, seed: int, split: str = "test", variant: str | None = None,
                 difficulty: str | None = None, exclude: frozenset = frozenset()) -> list[Problem]:
        """`n` problems, deterministic in (seed, split, variant, difficulty); splits never overlap.

        `exclude` holds canonical keys (e.g. of a published test file) that must not be drawn.
        """

    def from_json(self, obj: dict, where: str) -> Problem:
        """A problem from a JSON dict (ours, or a user's looser format); UserError naming `where`."""

    def canonical_key(self, problem: Problem) -> str:
        """A string equal for problems that are the same task up to presentation (for dedup)."""

    def render_prompt(self, problem: Problem, strategy: str | None = None) -> str:
        """The user message: optional strategy text, the problem, and the required answer format."""

    def parse(self, response: str, problem: Problem | None = None) -> Parsed:
        """The marked final answer of a model response, or a parse failure with its reason.

        With `problem`, answers of the wrong kind (an integer for a yes/no question) fail here.
        """

    def check(self, problem: Problem, parsed: Parsed) -> Verdict:
        """Score a parsed response against the problem's ground truth."""

    def solve(self, problem: Problem) -> Any:
        """The ground-truth answer computed from the payload (independent of `problem.answer`)."""

    def worked_solution(self, problem: Problem, strategy_steps: Sequence[str] | None = None,
                        verbose: bool = False) -> str:
        """A step-by-step solution ending in the marked final answer that `parse` accepts.

        Compact by default: one short line per step of the algorithm, no restated strategy (the
        strategy is in the prompt or, after training, in the weights). `verbose` writes every step
        out in prose, opening with the strategy's steps when they are given.
        """

    def check_reasoning(self, problem: Problem, response: str) -> str | None:
        """Why a response whose final answer is right does not show reasoning that checks out, or None.

        The reason is one of the domain's REJECTIONS (e.g. a scheduling solution that states no peak,
        or the wrong one); a bare answer with nothing before it is NO_REASONING in every domain.
        """


# ---------------------------------------------------------------- registry

_REGISTRY = {
    "scheduling": "lrl.domains.scheduling:SchedulingDomain",
    "coding": "lrl.domains.coding:CodingDomain",
    "arithmetic": "lrl.domains.arithmetic:ArithmeticDomain",
}


def get_domain(name: str) -> TransferDomain:
    """The domain registered under `name` (imported lazily); UserError listing names if unknown."""
    if name not in _REGISTRY:
        raise UserError(f"unknown domain {name!r}; choose one of {', '.join(_REGISTRY)}")
    module, cls = _REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), cls)()


# ---------------------------------------------------------------- JSONL files

def read_jsonl(path: str | Path) -> list[tuple[str, dict]]:
    """(where, object) per non-blank line; UserError naming `file:line` for unreadable lines."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except OSError as err:
        raise UserError(f"{path}: cannot read ({err.strerror})") from None
    rows = []
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            rows.append((where, json_object(line)))
        except ValueError as err:
            raise UserError(f"{where}: {err}") from None
    return rows


def write_jsonl(path: str | Path, objects: Iterable[dict]) -> None:
    """One orjson line per object; a path that cannot be written is a UserError."""
    try:
        with open(path, "wb") as f:
            for obj in objects:
                f.write(orjson.dumps(obj) + b"\n")
    except OSError as err:
        raise UserError(f"cannot write {path} ({err.strerror})") from None


def read_problems(path: str | Path, domain: TransferDomain | None = None) -> list[Problem]:
    """Problems from a JSONL file; the domain comes from each line's `domain` key or `domain`."""
    problems = []
    for where, obj in read_jsonl(path):
        line_domain = domain or get_domain(_require_str(obj.get("domain"), "domain", where))
        problems.append(line_domain.from_json(obj, where))
    ids = Counter(p.id for p in problems)
    repeated = [i for i, count in ids.items() if count > 1]
    if repeated:
        raise UserError(f"{path}: duplicate problem ids {repeated[:5]}")
    return problems


def write_problems(path: str | Path, problems: Iterable[Problem]) -> None:
    """Problems as JSONL, one `Problem.to_json()` per line."""
    write_jsonl(path, (p.to_json() for p in problems))


def _require_str(value, key: str, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise UserError(f"{where}: key {key!r} must be a non-empty string")
    return value


def check_choice(value: str | None, choices: Sequence[str], what: str) -> None:
    """UserError naming the valid choices when `value` (None allowed) is not one of them."""
    if value is not None and value not in choices:
        raise UserError(f"unknown {what} {value!r}; choose one of {', '.join(choices)}")


def strategy_header(strategy: str | None) -> str:
    """The prompt prefix carrying a learned strategy (empty without one); shared by all domains."""
    return f"STRATEGY:\n{strategy.strip()}\n\n" if strategy else ""


def reasoning_lines(response: str) -> list[str]:
    """The response's non-blank lines other than its marked answer lines: the work it shows."""
    return [line.strip() for line in response.splitlines()
            if line.strip() and not marked_values(line) and any(c.isalnum() for c in line)]


def rejection_reason(domain: TransferDomain, problem: Problem, response: str) -> str | None:
    """Why a teacher's solution cannot be a training target, or None when it can: the final answer
    must be right (parsed and checked) and the reasoning before it must check out."""
    verdict = domain.check(problem, domain.parse(response, problem))
    if not verdict.success:
        return ANSWER_REJECTIONS.get(verdict.outcome, WRONG_FINAL_ANSWER)
    return domain.check_reasoning(problem, response)


def strategy_preamble(steps: Sequence[str] | None) -> list[str]:
    """Opening lines of a worked solution that follows a strategy's numbered steps."""
    if not steps:
        return []
    return ["Following the strategy:", *(f"{i}. {s}" for i, s in enumerate(steps, start=1)), ""]


def problem_fields(obj: dict, where: str, domain: str, default_split: str = "user") -> dict:
    """The common Problem fields of a JSON line, with defaults for user-written files."""
    pid = obj.get("id", where.rsplit(":", 1)[-1])
    return {
        "id": str(pid),
        "domain": domain,
        "split": str(obj.get("split", default_split)),
        "difficulty": str(obj.get("difficulty", "user")),
        "variant": str(obj.get("variant", "user")),
    }


# ---------------------------------------------------------------- answers and splits

@dataclass(frozen=True)
class OverlapReport:
    """Problems whose canonical form appears in more than one split: keys and the ids per split."""

    duplicates: dict = field(default_factory=dict)  # canonical key -> {split: [ids]}

    @property
    def clean(self) -> bool:
        return not self.duplicates


def split_overlap(domain: TransferDomain, problems: Iterable[Problem]) -> OverlapReport:
    """Canonicalise every problem and report those that occur in two or more splits."""
    seen: dict[str, dict[str, list[str]]] = {}
    for p in problems:
        seen.setdefault(domain.canonical_key(p), {}).setdefault(p.split, []).append(p.id)
    return OverlapReport({k: v for k, v in seen.items() if len(v) > 1})


def split_salt(split: str) -> int:
    """A fixed per-split integer mixed into seeds, so the same seed gives different splits."""
    if split not in SPLITS:
        raise UserError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    return SPLITS.index(split)


def owner_split(key: str) -> str:
    """The one split a canonical problem belongs to, by a stable hash of its key.

    Generators reject candidates owned by another split, which makes splits disjoint by
    construction: the same canonical problem can never be drawn into two splits.
    """
    digest = hashlib.sha256(key.encode()).digest()
    bucket = digest[0] % 10  # 60% train, 20% dev, 20% test of the problem space
    return "train" if bucket < 6 else "dev" if bucket < 8 else "test"
