"""What every stage works with, and the one resumable way a stage evaluates a model on problems.

`evaluate` runs the evaluation loop (lrl.eval_run) through the model's bulk call: all the problems
in one call to a model that answers many at once (`parallel` > 1), else in chunks of one batch. After
each call it appends the result records to the stage's state and its prompts and responses to
thoughts.jsonl. Every answer is cached the moment it finishes, so a killed run asks the backend
nothing twice.
"""
from __future__ import annotations

import random
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Callable, Sequence

from backends.llm import SamplingParams
from lrl.batch_stats import batch_statistics
from lrl.cache import CachedLLM, ResponseCache
from lrl.domain import Problem, TransferDomain
from lrl.eval_run import EvalConfig, evaluate_model
from lrl.evaluation import summarize
from lrl.ledger import Ledger
from lrl.prompts import TEMPLATE_VERSION
from lrl.run_config import RunConfig
from lrl.rundir import RunDir, write_json_atomic

ProgressFactory = Callable[[str, int], "object"]  # (label, total) -> context manager with update(n)


@dataclass
class StageContext:
    """The run's shared pieces: config, run directory, domain, problem splits, cached models, ledger."""

    config: RunConfig
    run: RunDir
    domain: TransferDomain
    splits: dict  # "train" | "dev" | "test" -> list[Problem]
    teacher: object  # lrl.cache.CachedLLM
    student: object
    ledger: Ledger
    progress: ProgressFactory | None = None
    echo: Callable[[str], None] = lambda _text: None
    cache: ResponseCache | None = None  # the run's response cache, for models a stage builds itself
    strategy: str | None = None  # stage 2's final strategy, given to the stages that need one

    def cached(self, llm) -> CachedLLM:
        """`llm` (e.g. a GGUF the run exported) answering through the run's response cache and ledger,
        so its calls are resumable and replayable like the teacher's and the student's."""
        return CachedLLM(llm, self.cache, template_version=TEMPLATE_VERSION, ledger=self.ledger,
                         offline=self.config.offline)

    def params(self, max_tokens: int) -> SamplingParams:
        """Greedy sampling with the run's seed; `max_tokens` per kind of call."""
        return SamplingParams(temperature=0.0, max_tokens=max_tokens, seed=self.config.seed)

    def bar(self, label: str, total: int):
        return self.progress(label, total) if self.progress else nullcontext(None)

    def save_ledger(self) -> None:
        write_json_atomic(self.run / "ledger.json", self.ledger.to_dict())

    def call_one(self, llm, messages: list[dict], max_tokens: int, key: str, stage: str) -> str:
        """One model call (cached, metered), logged to thoughts.jsonl under `key`; returns the text."""
        completion = llm.complete(messages, self.params(max_tokens))
        self.run.log_thoughts([_thought(key, stage, llm, messages, completion.text)])
        self.save_ledger()
        return completion.text


def bar_callback(bar) -> Callable[[int, int], None] | None:
    """A bulk call's progress(done, total) drawn on `bar` (which counts increments); None without one."""
    if bar is None:
        return None
    shown = [0]

    def advance(done: int, _total: int) -> None:
        bar.update(done - shown[0])
        shown[0] = done
    return advance


def model_label(llm) -> str:
    """`backend:model` of the LLM that really answered (a test double shows as itself)."""
    return f"{llm.backend}:{llm.model}"


def _thought(key: str, stage: str, llm, messages: list[dict], response: str) -> dict:
    return {"key": key, "stage": stage, "backend": llm.backend, "model": llm.model,
            "messages": messages, "response": response}


def evaluate(ctx: StageContext, state_name: str, state_key: str, llm, problems: Sequence[Problem],
             strategy: str | None, label: str, baseline_prompt: str = "zero-shot",
             max_tokens: int | None = None) -> list[dict]:
    """Result records for `problems` solved by `llm`, resuming from the stage state's saved records.

    The records are stored under `state[state_key]` of `stages/<state_name>.json`, in problem order.
    `max_tokens` overrides --solve-max-tokens (stage 4 answers within its curriculum's limit).
    """
    state = ctx.run.stage_state(state_name)
    done = {r["id"]: r for r in state.get(state_key, [])}
    todo = [p for p in problems if p.id not in done]
    size = max(1, len(todo)) if llm.parallel > 1 else ctx.config.batch_size
    with ctx.bar(label, len(problems)) as bar:
        shown = [0]

        def advance_to(position: int) -> None:
            ctx.save_ledger()  # after every call: a kill must not hide dollars already spent from the budget
            if bar is not None and position > shown[0]:
                bar.update(position - shown[0])
                shown[0] = position

        def save_chunk(chunk, messages, completions, records) -> None:
            ctx.run.log_thoughts(_thought(f"{state_name}/{state_key}/{p.id}", state_name, llm, m, c.text)
                                 for p, m, c in zip(chunk, messages, completions))
            done.update((p.id, r) for p, r in zip(chunk, records))
            saved = ctx.run.stage_state(state_name)
            saved[state_key] = [done[p.id] for p in problems if p.id in done]
            ctx.run.save_stage_state(state_name, saved)
            ctx.save_ledger()

        advance_to(len(problems) - len(todo))
        config = EvalConfig(strategy, ctx.params(max_tokens or ctx.config.solve_max_tokens), baseline_prompt)
        evaluate_model(llm, ctx.domain, todo, config, stage=state_name,
                       progress=lambda n, _total: advance_to(len(problems) - len(todo) + n),
                       chunk_size=size, on_chunk=save_chunk)
    return [done[p.id] for p in problems]


def evaluation_summary(records: Sequence[dict], batch_size: int) -> dict:
    """`lrl.evaluation.summarize` (accuracy, Wilson CI, majority baseline, parse failures,
    per-difficulty) plus per-batch statistics."""
    return {**summarize(list(records)), "per_batch": batch_statistics(records, batch_size)}


def majority_accuracy(summary: dict) -> float:
    """Accuracy of always answering the majority class of the summarized items (0 when answers are
    not a few classes)."""
    return (summary["classes"] or {}).get("majority_baseline", {}).get("accuracy", 0.0)


def earns_adoption(summary: dict, best_accuracy: float) -> bool:
    """Whether a strategy scored as `summary` on validation is adopted: above `best_accuracy` and above
    always answering the majority class (a strategy that makes the teacher answer YES to everything
    can beat a weak prompt without teaching anything)."""
    return summary["accuracy"] > max(best_accuracy, majority_accuracy(summary))


def seeded_subset(problems: Sequence[Problem], n: int | None, seed: int) -> list[Problem]:
    """`problems`, or `n` of them drawn with `seed` and kept in their order (all when n is None or >= their count)."""
    problems = list(problems)
    if n is None or n >= len(problems):
        return problems
    return [problems[i] for i in sorted(random.Random(seed).sample(range(len(problems)), n))]


def teacher_test_problems(ctx: StageContext) -> list[Problem]:
    """The test items the teacher answers (stages 1 and 3): --teacher-items of the split, seeded. The
    students answer the whole split, so a large split costs the slow teacher nothing more."""
    return seeded_subset(ctx.splits["test"], ctx.config.teacher_items, ctx.config.seed)


def evaluate_on_test_split(ctx: StageContext, state_name: str, role: str, strategy: str | None, label: str,
                    baseline_prompt: str = "zero-shot", state_key: str = "records") -> dict:
    """Evaluate the teacher (on its share of the test split) or the student (on all of it); the
    stage's entry for results.json."""
    llm = ctx.teacher if role == "teacher" else ctx.student
    problems = teacher_test_problems(ctx) if role == "teacher" else ctx.splits["test"]
    records = evaluate(ctx, state_name, state_key, llm, problems, strategy, label, baseline_prompt)
    return {"model": model_label(llm), "role": role, "split": "test", "with_strategy": strategy is not None,
            "prompt": baseline_prompt if strategy is None else "strategy",
            "summary": evaluation_summary(records, ctx.config.batch_size), "records": records}
