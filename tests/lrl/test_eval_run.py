"""The one evaluation loop: item by item with errors scored as failures, or in bulk chunks that stop on an error."""
from __future__ import annotations

import pytest

from backends.llm import LLMError
from lrl.domain import SUCCESS_OUTCOMES, get_domain
from lrl.eval_run import EvalConfig, evaluate_model
from lrl.prompts import solve_messages
from tests.lrl.echo_llm import ScriptedLLM


def problems(n=5):
    return get_domain("arithmetic").generate(n, seed=1, split="test")


def test_an_item_the_model_cannot_answer_scores_as_a_failure_with_its_error():
    items = problems()
    llm = ScriptedLLM(fail_on=solve_messages(get_domain("arithmetic"), items[2])[-1]["content"])
    seen = []
    records = evaluate_model(llm, get_domain("arithmetic"), items, stage="eval", progress=lambda d, n: seen.append((d, n)))
    assert [r["id"] for r in records] == [p.id for p in items]
    failed = [r for r in records if "error" in r]
    assert len(failed) == 1 and failed[0]["id"] == items[2].id and failed[0]["verdict"] not in SUCCESS_OUTCOMES
    assert all("output_tokens" in r and "latency_s" in r for r in records if "error" not in r)
    assert seen == [(i, 5) for i in range(1, 6)] and llm.bulk_calls == []


def test_bulk_chunks_are_handed_over_as_they_finish_and_an_error_stops_them():
    items, chunks = problems(), []
    config = EvalConfig(errors_as_failures=False)
    evaluate_model(ScriptedLLM(), get_domain("arithmetic"), items, config, chunk_size=2,
                   on_chunk=lambda chunk, messages, completions, records: chunks.append(len(records)))
    assert chunks == [2, 2, 1]
    with pytest.raises(LLMError):
        evaluate_model(ScriptedLLM(fail_on="WORD PROBLEM"), get_domain("arithmetic"), items, config, chunk_size=2)
