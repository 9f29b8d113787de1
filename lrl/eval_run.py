"""Run a model over a problems file and score it: the engine behind `k1 lrl eval` and the export gate.

Greedy decoding by default, prompts from `student_prompt.student_messages`, so the numbers are
those of the prompt format the student was trained with.
"""
from __future__ import annotations

from dataclasses import dataclass

from backends.llm import LLMError, Request, SamplingParams
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
    records = []
    for done, problem in enumerate(problems, start=1):
        request = Request(student_messages(domain, problem, config.strategy), config.params)
        try:
            completion = llm.complete(request.messages, request.params)
            text, extra = completion.text, {"output_tokens": completion.output_tokens,
                                            "latency_s": round(completion.latency_s, 4)}
        except LLMError as err:  # e.g. the prompt does not fit the context: scored as a failure, not hidden
            text, extra = "", {"error": str(err)}
        records.append({**result_record(domain, problem, text, model=llm.model, stage=stage), **extra})
        if progress:
            progress(done, len(problems))
    return records
