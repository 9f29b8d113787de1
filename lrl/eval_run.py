"""The one evaluation loop: ask a model every problem and score its answers.

The stages run it resumably in chunks of a batch (lrl.stages.context.evaluate), `k1 lrl eval` and
the export's fidelity gate run it item by item. Every prompt comes from `prompts.solve_messages`,
which is also the prompt a trained student saw (`student_prompt.student_messages`), so the numbers
are those of the prompt format the student was trained with. Greedy decoding by default.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from backends.llm import Completion, LLMError, Request, SamplingParams
from lrl.domain import Problem, TransferDomain
from lrl.evaluation import result_record
from lrl.prompts import solve_messages

# (problems, messages, completions or None where the model failed, records) of one chunk, once it is scored
ChunkDone = Callable[[list[Problem], list[list[dict]], list[Completion | None], list[dict]], None]


@dataclass(frozen=True)
class EvalConfig:
    """How each item is asked: the strategy in the prompt or not, the baseline prompt, and the sampling."""

    strategy: str | None = None
    params: SamplingParams = SamplingParams(temperature=0.0, max_tokens=512)
    baseline_prompt: str = "zero-shot"  # without a strategy: "published" adds the published hint
    # True: items are asked one at a time and one the model cannot answer (e.g. its prompt does not fit
    # the context) scores as a failure; False: each chunk goes through the bulk call and an error stops
    errors_as_failures: bool = True


def evaluate_model(llm, domain: TransferDomain, problems: Sequence[Problem], config: EvalConfig = EvalConfig(),
                   stage: str | None = None, progress=None, chunk_size: int = 1,
                   on_chunk: ChunkDone | None = None) -> list[dict]:
    """One result record per problem (see `lrl.evaluation.result_record`), plus tokens and latency.

    Problems go to the model's bulk call `chunk_size` at a time; `on_chunk` sees each chunk as soon
    as it is scored (to save it), `progress(done, total)` counts items.
    """
    records = []
    for start in range(0, len(problems), chunk_size):
        chunk = list(problems[start:start + chunk_size])
        messages = [solve_messages(domain, p, config.strategy, config.baseline_prompt) for p in chunk]
        shifted = (lambda done, _total: progress(start + done, len(problems))) if progress else None
        completions = _complete(llm, chunk, messages, config, shifted)
        scored = [_record(llm, domain, p, c, stage) for p, c in zip(chunk, completions)]
        if on_chunk:
            on_chunk(chunk, messages, [c if isinstance(c, Completion) else None for c in completions], scored)
        records += scored
    return records


def _complete(llm, chunk: list[Problem], messages: list[list[dict]], config: EvalConfig,
              progress) -> list[Completion | LLMError]:
    """The chunk through the model's bulk call, or, with errors_as_failures, one item at a time,
    keeping the error of an item that fails in place of its completion."""
    requests = [Request(m, config.params, custom_id=p.id) for m, p in zip(messages, chunk)]
    if not config.errors_as_failures:
        return llm.complete_many(requests, progress)
    answers = []
    for done, request in enumerate(requests, start=1):
        try:
            answers.append(llm.complete(request.messages, request.params))
        except LLMError as err:
            answers.append(err)
        if progress:
            progress(done, len(requests))
    return answers


def _record(llm, domain: TransferDomain, problem: Problem, answer: Completion | LLMError, stage: str | None) -> dict:
    if isinstance(answer, LLMError):  # scored as a failure, not hidden
        return {**result_record(domain, problem, "", model=llm.model, stage=stage), "error": str(answer)}
    return {**result_record(domain, problem, answer.text, model=llm.model, stage=stage),
            "output_tokens": answer.output_tokens, "latency_s": round(answer.latency_s, 4)}
