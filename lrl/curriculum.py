"""The student's training set: train-split problems, each with a verified worked solution that follows the strategy.

Two sources of targets, mixed by `teacher_fraction`:
- the teacher's own solutions, asked with the strategy in its prompt, kept only when the final
  answer is right and the reasoning before it checks out (`domain.rejection_reason`: e.g. the
  scheduling peak it states must be the solver's; a bare answer is rejected). Rejections are
  counted by reason and reported, never silently kept;
- the domain solver's worked solutions (`domain.worked_solution`), correct by construction:
  compact by default (one short line per step, the strategy not restated), or verbose.
The curriculum also sets the generation limit of whoever answers in its format: 1.5 times its
longest target in tokens, so no trained student is cut off before its answer line. The teacher
gets the same allowance over the solver's targets.
Problems come only from the `train` split, which the domains make disjoint from dev and test by
construction; `build_curriculum` re-checks that against any evaluation problems it is given.
Output lines are chat JSONL, `{"messages": [user, assistant]}`, with the user turn built by
`student_prompt.student_messages`, so evaluation can reproduce the training prompt exactly. With
both prompt formats asked for, the (shuffled) problems alternate between them, so each format gets
half the lines from each source and the student is trained, and later tested, on both.
"""
from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from typing import Callable, Sequence

from backends.llm import Request, SamplingParams, estimate_tokens
from k1core.errors import UserError
from lrl.domain import Problem, TransferDomain, rejection_reason, split_overlap
from lrl.student_prompt import PROMPT_FORMATS, prompt_strategy, strategy_steps, student_messages, training_chat

TEACHER, SOLVER = "teacher", "solver"
TRACE_STYLES = ("compact", "verbose")
LIMIT_FACTOR = 1.5  # generation limit over the longest target: room for a slightly longer answer


@dataclass(frozen=True)
class CurriculumConfig:
    """How many train problems, which variants, the teacher/solver mix, and the student's prompt format."""

    n_problems: int = 1000
    variants: tuple[str, ...] = ()  # empty: the domain's default variant
    seed: int = 0
    teacher_fraction: float = 0.5  # share of problems whose target the teacher is asked to write
    prompt_formats: tuple[str, ...] = PROMPT_FORMATS  # the student's training (and evaluation) prompt formats
    teacher_params: SamplingParams = SamplingParams(temperature=0.0, max_tokens=1024)  # max_tokens: a floor
    trace_style: str = "compact"  # the solver's worked solutions: compact or verbose

    def __post_init__(self):
        if not (isinstance(self.n_problems, int) and self.n_problems >= 1):
            raise UserError(f"curriculum: n_problems must be a positive integer, got {self.n_problems!r}")
        if not 0.0 <= self.teacher_fraction <= 1.0:
            raise UserError(f"curriculum: teacher_fraction must be in [0, 1], got {self.teacher_fraction!r}")
        object.__setattr__(self, "variants", tuple(self.variants))
        formats = tuple(self.prompt_formats)
        if not formats or len(set(formats)) != len(formats) or not set(formats) <= set(PROMPT_FORMATS):
            raise UserError(f"curriculum: prompt_formats must be distinct names among {', '.join(PROMPT_FORMATS)}, "
                            f"got {formats!r}")
        object.__setattr__(self, "prompt_formats", formats)
        if self.trace_style not in TRACE_STYLES:
            raise UserError(f"curriculum: trace_style must be one of {', '.join(TRACE_STYLES)}, got {self.trace_style!r}")


@dataclass
class Curriculum:
    """The chat lines, where each target came from, the teacher's rejections by reason, target lengths."""

    lines: list[dict]
    sources: list[str]  # TEACHER or SOLVER per line
    problem_ids: list[str]
    formats: list[str] = field(default_factory=list)  # the prompt format of each line
    target_tokens: list[int] = field(default_factory=list)  # each target's length in tokens
    teacher_asked: int = 0
    teacher_max_tokens: int = 0
    teacher_rejected: Counter = field(default_factory=Counter)  # rejection reason -> count
    trace_style: str = "compact"

    @property
    def generation_limit(self) -> int:
        """The max_tokens for answering in this curriculum's format: LIMIT_FACTOR x its longest target."""
        return math.ceil(LIMIT_FACTOR * max(self.target_tokens, default=1))

    def stats(self) -> dict:
        kept = Counter(self.sources)
        rejected = sum(self.teacher_rejected.values())
        tokens = sorted(self.target_tokens)
        return {"lines": len(self.lines), "from_teacher": kept[TEACHER], "from_solver": kept[SOLVER],
                "by_prompt_format": dict(Counter(self.formats)), "trace_style": self.trace_style,
                "target_tokens": {"median": tokens[len(tokens) // 2] if tokens else 0, "max": max(tokens, default=0)},
                "generation_limit": self.generation_limit,
                "teacher_asked": self.teacher_asked, "teacher_max_tokens": self.teacher_max_tokens,
                "teacher_rejected": rejected, "teacher_rejected_by_reason": dict(self.teacher_rejected.most_common()),
                "teacher_rejection_rate": rejected / self.teacher_asked if self.teacher_asked else 0.0}


def train_problems(domain: TransferDomain, config: CurriculumConfig) -> list[Problem]:
    """`n_problems` train-split problems, spread evenly over the variants, in a seeded shuffled order."""
    variants = config.variants or (None,)
    counts = [config.n_problems // len(variants) + (i < config.n_problems % len(variants)) for i in range(len(variants))]
    problems = []
    for variant, count in zip(variants, counts):
        if count:
            problems += domain.generate(count, seed=config.seed, split="train", variant=variant)
    random.Random(config.seed).shuffle(problems)
    return problems


def check_disjoint(domain: TransferDomain, train: Sequence[Problem], held_out: Sequence[Problem]) -> None:
    """UserError if any training problem is the same task as a held-out one."""
    marked = [Problem(**{**asdict(p), "split": "train"}) for p in train]
    marked += [Problem(**{**asdict(p), "split": "test"}) for p in held_out]
    overlap = split_overlap(domain, marked)
    if not overlap.clean:
        some = next(iter(overlap.duplicates.values()))
        raise UserError(f"curriculum: {len(overlap.duplicates)} training problems also appear in the "
                        f"evaluation set (e.g. {some}); the splits must be disjoint")


def build_curriculum(domain: TransferDomain, strategy: str, config: CurriculumConfig, teacher=None,
                     held_out: Sequence[Problem] = (), progress=None,
                     count_tokens: Callable[[str], int] = estimate_tokens) -> Curriculum:
    """Chat lines for the student; the teacher (an LLM) is needed only when teacher_fraction > 0.

    `count_tokens` measures targets for the generation limits (the student's tokenizer in a run).
    """
    if not strategy or not strategy.strip():
        raise UserError("curriculum: the strategy text is empty")
    if config.teacher_fraction > 0 and teacher is None:
        raise UserError("curriculum: teacher_fraction > 0 needs a teacher model")
    problems = train_problems(domain, config)
    check_disjoint(domain, problems, held_out)
    n_teacher = round(config.teacher_fraction * len(problems))
    formats = [config.prompt_formats[i % len(config.prompt_formats)] for i in range(len(problems))]
    steps = strategy_steps(strategy) if config.trace_style == "verbose" else None
    solved = [domain.worked_solution(p, steps, verbose=config.trace_style == "verbose") for p in problems]
    curriculum = Curriculum([], [], [], trace_style=config.trace_style)
    if n_teacher:
        asked = problems[:n_teacher]
        longest = max(count_tokens(target) for target in solved)
        params = replace(config.teacher_params,
                         max_tokens=max(config.teacher_params.max_tokens, math.ceil(LIMIT_FACTOR * longest)))
        requests = [Request(student_messages(domain, p, strategy), params, custom_id=p.id) for p in asked]
        curriculum.teacher_asked, curriculum.teacher_max_tokens = len(asked), params.max_tokens
        for i, (problem, completion) in enumerate(zip(asked, teacher.complete_many(requests, progress))):
            reason = rejection_reason(domain, problem, completion.text)
            if reason:
                curriculum.teacher_rejected[reason] += 1
                continue
            _add(curriculum, domain, problem, completion.text.strip(), strategy, formats[i], TEACHER, count_tokens)
    for i, problem in enumerate(problems[n_teacher:], start=n_teacher):
        _add(curriculum, domain, problem, solved[i], strategy, formats[i], SOLVER, count_tokens)
    return curriculum


def _add(curriculum: Curriculum, domain: TransferDomain, problem: Problem, target: str, strategy: str,
         prompt_format: str, source: str, count_tokens: Callable[[str], int]) -> None:
    curriculum.lines.append(training_chat(domain, problem, target, prompt_strategy(prompt_format, strategy)))
    curriculum.sources.append(source)
    curriculum.problem_ids.append(problem.id)
    curriculum.formats.append(prompt_format)
    curriculum.target_tokens.append(count_tokens(target))
