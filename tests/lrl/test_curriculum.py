"""Curriculum: train split only, teacher solutions kept only when verified, solver targets follow the strategy."""
from __future__ import annotations

import pytest

from backends.llm import Completion
from k1core.errors import UserError
from lrl.curriculum import SOLVER, TEACHER, CurriculumConfig, build_curriculum, train_problems
from lrl.domain import get_domain
from lrl.domains.scheduling import peak_overlap
from lrl.final_answer import answer_line
from lrl.student_prompt import strategy_steps, student_messages

STRATEGY = "1. List every start and end as events.\n2. Sort them, ends before starts at equal times.\n3. Track the peak."


class ScriptedTeacher:
    """A teacher whose answers are decided by the test: right, wrong or unparsable, per problem."""

    model, backend = "scripted", "test"

    def __init__(self, domain, behaviour):
        self.domain, self.behaviour, self.prompts = domain, behaviour, []

    def complete_many(self, requests, progress=None):
        out = []
        for request in requests:
            self.prompts.append(request.messages[-1]["content"])
            problem = self.problems[request.custom_id]
            kind = self.behaviour(problem)
            truth = self.domain.solve(problem)
            text = {"right": f"The peak is {peak_overlap(problem.payload['meetings'])}.\n{answer_line(str(truth))}",
                    "wrong": f"Guess.\n{answer_line('NO' if truth == 'YES' else 'YES')}",
                    "garbled": "I am not sure."}[kind]
            out.append(Completion(text, 10, 5, 0, 0, 0.0, 0.0, "scripted", "test", "stop"))
        return out


def test_teacher_rejections_are_counted_and_solver_fills_the_rest():
    domain = get_domain("scheduling")
    config = CurriculumConfig(n_problems=40, variants=("balanced",), teacher_fraction=0.5)
    teacher = ScriptedTeacher(domain, lambda p: ("right", "wrong", "garbled")[int(p.id.rsplit("_", 1)[1]) % 3])
    teacher.problems = {p.id: p for p in train_problems(domain, config)}
    cur = build_curriculum(domain, STRATEGY, config, teacher)
    stats = cur.stats()
    assert stats["teacher_asked"] == 20 and stats["from_solver"] == 20
    assert stats["teacher_rejected"] == 20 - stats["from_teacher"] > 0
    assert set(stats["teacher_rejected_by_reason"]) == {"wrong final answer", "no final answer"}
    assert all(STRATEGY in prompt for prompt in teacher.prompts)  # the teacher always sees the strategy
    assert stats["by_prompt_format"] == {"zero-shot": cur.formats.count("zero-shot"), "strategy": cur.formats.count("strategy")}
    for line, source, pid, fmt in zip(cur.lines, cur.sources, cur.problem_ids, cur.formats):
        problem = teacher.problems[pid]
        *prompt, assistant = line["messages"]
        shown = STRATEGY if fmt == "strategy" else None
        assert prompt == student_messages(domain, problem, shown) and assistant["role"] == "assistant"
        verdict = domain.check(problem, domain.parse(assistant["content"], problem))
        assert verdict.success, (source, assistant["content"])  # every kept target is verified
        if source == SOLVER:  # compact: the strategy is in the prompt, not restated in the target
            assert not any(step in assistant["content"] for step in strategy_steps(STRATEGY))
    assert TEACHER in cur.sources
    assert stats["generation_limit"] >= 1.5 * max(cur.target_tokens) and stats["teacher_max_tokens"] >= 1024


def test_verbose_traces_restate_the_strategy_and_set_a_longer_limit():
    domain = get_domain("scheduling")
    compact, verbose = (build_curriculum(domain, STRATEGY, CurriculumConfig(n_problems=12, teacher_fraction=0.0,
                                                                             variants=("balanced",), trace_style=style))
                        for style in ("compact", "verbose"))
    assert all(step in line["messages"][-1]["content"] for line in verbose.lines for step in strategy_steps(STRATEGY))
    assert verbose.generation_limit > compact.generation_limit
    assert compact.stats()["trace_style"] == "compact" and verbose.stats()["trace_style"] == "verbose"


def test_no_strategy_variant_and_train_split_only():
    domain = get_domain("scheduling")
    config = CurriculumConfig(n_problems=30, variants=("balanced", "min-rooms"), teacher_fraction=0.0,
                              prompt_formats=("zero-shot",))
    cur = build_curriculum(domain, STRATEGY, config)
    assert len(cur.lines) == 30 and cur.stats()["teacher_asked"] == 0
    assert all("STRATEGY" not in m["content"] for line in cur.lines for m in line["messages"][:-1])
    problems = train_problems(domain, config)
    assert {p.split for p in problems} == {"train"} and {p.variant for p in problems} == {"balanced", "min-rooms"}


def test_both_formats_split_every_source_in_half():
    domain = get_domain("scheduling")
    config = CurriculumConfig(n_problems=40, variants=("balanced",), teacher_fraction=0.5)
    teacher = ScriptedTeacher(domain, lambda p: "right")
    teacher.problems = {p.id: p for p in train_problems(domain, config)}
    cur = build_curriculum(domain, STRATEGY, config, teacher)
    for source in (TEACHER, SOLVER):
        formats = [f for f, s in zip(cur.formats, cur.sources) if s == source]
        assert formats.count("strategy") == formats.count("zero-shot") == 10
    with_strategy = [any("STRATEGY" in m["content"] for m in line["messages"][:-1]) for line in cur.lines]
    assert with_strategy == [f == "strategy" for f in cur.formats]
    only = build_curriculum(domain, STRATEGY, CurriculumConfig(n_problems=6, teacher_fraction=0.0,
                                                              prompt_formats=("strategy",)))
    assert only.stats()["by_prompt_format"] == {"strategy": 6}


def test_overlap_with_held_out_problems_is_refused():
    domain = get_domain("scheduling")
    config = CurriculumConfig(n_problems=10, variants=("balanced",), teacher_fraction=0.0)
    leaked = train_problems(domain, config)[:2]
    with pytest.raises(UserError, match="also appear in the evaluation set"):
        build_curriculum(domain, STRATEGY, config, held_out=leaked)
    test = domain.generate(50, seed=0, split="test", variant="balanced")
    build_curriculum(domain, STRATEGY, config, held_out=test)  # disjoint by construction


@pytest.mark.parametrize("kwargs, message", [
    ({"n_problems": 0}, "n_problems"), ({"teacher_fraction": 1.5}, "teacher_fraction"),
    ({"prompt_formats": ()}, "prompt_formats"), ({"prompt_formats": ("strategy", "strategy")}, "prompt_formats"),
    ({"prompt_formats": ("few-shot",)}, "prompt_formats"), ({"trace_style": "terse"}, "trace_style")])
def test_bad_config_names_the_key(kwargs, message):
    with pytest.raises(UserError, match=message):
        CurriculumConfig(**kwargs)


def test_teacher_needed_when_asked_for():
    with pytest.raises(UserError, match="needs a teacher"):
        build_curriculum(get_domain("scheduling"), STRATEGY, CurriculumConfig(n_problems=4))


def test_strategy_steps_reads_numbered_and_bulleted_lines():
    assert strategy_steps("Intro\n1. a\n2) b\n- c\n* d") == ["a", "b", "c", "d"]
    assert strategy_steps("just prose\nover two lines") == ["just prose over two lines"]
