"""Run a model over a problems file and score it: the engine behind `k1 lrl eval` and the export gate.

Greedy decoding by default, prompts from `student_prompt.student_messages`, so the numbers are
those of the prompt format the student was trained with. All items go to the model's bulk call
at once, so a backend with `parallel` > 1 answers many of them together.
"""
from __future__ import annotations

from dataclasses import dataclass

from backends.llm import Completion, LLMError, Request, SamplingParams
from lrl.domain import Problem, TransferDomain
from lrl.evaluation import result_record
from lrl.student_prompt import student_messages


@dataclass(frozen=True)
class EvalConfig:
    """How each item is asked: the strategy in the prompt or not, and the sampling."""

    strategy: str | None = None
    params: SamplingParams = SamplingParams(temperature=0.0, max_tokens=512)


def evaluate_model(llm, domain: TransferDomain, problems: list[Problem], config: EvalConfig = EvalConfig(),
                   stage: str | None = None, progress=None) -> list[dict]:
    """One result record per problem (see `lrl.evaluation.result_record`), plus tokens and latency."""
    requests = [Request(student_messages(domain, p, config.strategy), config.params, custom_id=p.id) for p in problems]
    records = []
    for problem, answer in zip(problems, answers(llm, requests, progress)):
        if isinstance(answer, LLMError):  # e.g. the prompt does not fit the context: scored as a failure, not hidden
            text, extra = "", {"error": str(answer)}
        else:
            text, extra = answer.text, {"output_tokens": answer.output_tokens, "latency_s": round(answer.latency_s, 4)}
        records.append({**result_record(domain, problem, text, model=llm.model, stage=stage), **extra})
    return records


def answers(llm, requests: list[Request], progress=None) -> list[Completion | LLMError]:
    """Every request's completion from one bulk call; when that call fails, each request asked on its
    own, so a failing request stands alone as its error (a cached model replays those that finished)."""
    try:
        return llm.complete_many(requests, progress)
    except LLMError:
        pass
    results = []
    for done, request in enumerate(requests, start=1):
        try:
            results.append(llm.complete(request.messages, request.params))
        except LLMError as err:
            results.append(err)
        if progress:
            progress(done, len(requests))
    return results
