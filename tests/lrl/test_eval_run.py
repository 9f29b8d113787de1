"""The one evaluation loop: bulk chunks handed over as they finish; a failed call stops the run."""
from __future__ import annotations

import pytest

from k1core.errors import UserError
from lrl.domain import get_domain
from lrl.eval_run import EvalConfig, evaluate_model
from lrl.prompts import solve_messages
from tests.lrl.echo_llm import ScriptedLLM


def problems(n=5):
    return get_domain("arithmetic").generate(n, seed=1, split="test")


def test_an_item_the_model_cannot_answer_stops_the_run_naming_the_item():
    items = problems()
    llm = ScriptedLLM(fail_on=solve_messages(get_domain("arithmetic"), items[2])[-1]["content"])
    seen, saved = [], []
    with pytest.raises(UserError, match=f"item {items[2].id}: the model call failed"):
        evaluate_model(llm, get_domain("arithmetic"), items, stage="eval", progress=lambda d, n: seen.append((d, n)),
                       on_chunk=lambda chunk, messages, completions, records: saved.extend(records))
    assert [r["id"] for r in saved] == [p.id for p in items[:2]]
    assert all("output_tokens" in r and "latency_s" in r for r in saved)
    assert seen == [(1, 5), (2, 5)]


def test_bulk_chunks_are_handed_over_as_they_finish_and_an_error_stops_them():
    items, chunks = problems(), []
    config = EvalConfig()
    evaluate_model(ScriptedLLM(), get_domain("arithmetic"), items, config, chunk_size=2,
                   on_chunk=lambda chunk, messages, completions, records: chunks.append(len(records)))
    assert chunks == [2, 2, 1]
    with pytest.raises(UserError):
        evaluate_model(ScriptedLLM(fail_on="WORD PROBLEM"), get_domain("arithmetic"), items, config, chunk_size=2)


@pytest.mark.parametrize("parallel, expected", [(1, [1] * 10), (2, [8, 2]), (8, [10])])
def test_by_default_a_batching_model_gets_four_batches_per_bulk_call(parallel, expected):
    chunks = []
    evaluate_model(ScriptedLLM(parallel=parallel), get_domain("arithmetic"), problems(10),
                   on_chunk=lambda chunk, messages, completions, records: chunks.append(len(records)))
    assert chunks == expected
