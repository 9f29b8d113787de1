from dataclasses import replace

import orjson
import pytest

from backends.llm import Completion, Request, SamplingParams
from backends.pricing import Price, anthropic_price
from k1core.errors import UserError
from lrl.cache import CachedLLM, ResponseCache
from lrl.ledger import BudgetExceeded, Ledger, estimate_call_usd, estimate_run_usd
from tests.lrl.echo_llm import ScriptedLLM

HAIKU = anthropic_price("claude-haiku-4-5")  # $1 in, $5 out, $1.25 cache write, $0.10 cache read


def completion(input_tokens=100, output_tokens=50, read=0, write=0, batched=False, cached=False):
    cost = HAIKU.cost_usd(input_tokens, output_tokens, read, write, batched)
    return Completion("t", input_tokens, output_tokens, read, write, 0.1, cost, "claude-haiku-4-5", "anthropic",
                      "end_turn", batched=batched, cached=cached)


def test_price_arithmetic_and_batch_discount():
    assert HAIKU.cost_usd(1_000_000, 0) == pytest.approx(1.0)
    assert HAIKU.cost_usd(0, 1_000_000) == pytest.approx(5.0)
    assert HAIKU.cost_usd(0, 0, cache_read_tokens=1_000_000) == pytest.approx(0.10)
    assert HAIKU.cost_usd(0, 0, cache_write_tokens=1_000_000) == pytest.approx(1.25)
    assert HAIKU.cost_usd(200, 100, 300, 400, batched=True) == pytest.approx(
        (200 * 1 + 100 * 5 + 300 * 0.1 + 400 * 1.25) / 1e6 / 2)
    assert anthropic_price("claude-opus-4-5-20251101").input == 5.0
    assert anthropic_price("claude-opus-4-1-20250805").input == 15.0  # longest matching family wins
    with pytest.raises(UserError, match="no price known"):
        anthropic_price("gpt-4o")


def test_tallies_per_stage_and_in_total():
    ledger = Ledger()
    with ledger.stage("stage1"):
        ledger.record(completion(write=2000))
        ledger.record(completion(read=2000))
    with ledger.stage("stage2"):
        ledger.record(completion(batched=True))
        ledger.record(completion(cached=True))
    ledger.record(completion())
    s = ledger.summary()
    one = s["stages"]["stage1"]
    assert one["calls"] == 2 and one["cache_read_tokens"] == 2000 and one["cache_write_tokens"] == 2000
    assert one["usd"] == pytest.approx((2 * (100 + 250) + 2000 * 1.25 + 2000 * 0.1) / 1e6)
    two = s["stages"]["stage2"]
    assert two["usd"] == pytest.approx(350 / 1e6 / 2) and two["saved_usd"] == pytest.approx(350 / 1e6)
    assert two["cache_hits"] == 1 and s["stages"]["unstaged"]["calls"] == 1
    assert s["total"]["usd"] == pytest.approx(one["usd"] + two["usd"] + 350 / 1e6)
    assert s["total"]["input_tokens"] == 500 and len(ledger.entries) == 5
    restored = Ledger.from_dict(orjson.loads(orjson.dumps(ledger.to_dict())))  # JSON-serialisable round trip
    assert restored.summary() == s and restored.entries == ledger.entries


def test_call_estimate_is_an_upper_bound_of_the_real_cost():
    request = Request([{"role": "user", "content": "x" * 4000}], SamplingParams(max_tokens=200))
    estimate = estimate_call_usd(HAIKU, request)
    assert estimate == pytest.approx(((1000 + 8) * 1.25 + 200 * 5) / 1e6)
    assert estimate >= completion(input_tokens=1000, output_tokens=200).cost_usd
    assert estimate_call_usd(HAIKU, request, batched=True) == pytest.approx(estimate / 2)


def test_run_estimate_with_prompt_caching_and_response_cache_hits():
    assert estimate_run_usd(HAIKU, 10, 1000, 100) == pytest.approx(10 * (1000 + 500) / 1e6)
    # 800 of each 1000-token prompt are a static prefix: written once, read 9 times.
    assert estimate_run_usd(HAIKU, 10, 1000, 100, static_prefix_tokens=800) == pytest.approx(
        (10 * 200 * 1.0 + 10 * 100 * 5 + 800 * 1.25 + 9 * 800 * 0.1) / 1e6)
    assert estimate_run_usd(HAIKU, 10, 1000, 100, cache_hit_fraction=0.5, batched=True) == pytest.approx(
        5 * (1000 + 500) / 1e6 / 2)
    assert estimate_run_usd(HAIKU, 10, 1000, 100, cache_hit_fraction=1.0) == 0.0
    with pytest.raises(UserError):
        estimate_run_usd(HAIKU, 10, 100, 10, static_prefix_tokens=200)


def test_budget_stops_before_the_call_that_would_exceed_it(tmp_path):
    llm = ScriptedLLM()  # each call: 5 tokens in at $1 and 100 out at $2 per MTok
    per_call_estimate = ((1 + 8) * 1.25 + 100 * 2) / 1e6  # "q0".."q9": 1 token + the per-message allowance
    ledger = Ledger(budget_usd=3.5 * per_call_estimate)
    cached = CachedLLM(llm, ResponseCache(tmp_path / "c.sqlite"), template_version="v1", ledger=ledger)
    params = SamplingParams(max_tokens=100)
    for i in range(3):
        cached.complete([{"role": "user", "content": f"q{i}"}], params)
    with pytest.raises(BudgetExceeded, match="budget \\$0.0007 would be exceeded: spent \\$0.0006"):
        for i in range(3, 10):
            cached.complete([{"role": "user", "content": f"q{i}"}], params)
    assert ledger.spent_usd <= ledger.budget_usd
    assert len(llm.calls) == 3  # the refused call never reached the backend
    cached.complete([{"role": "user", "content": "q0"}], params)  # cache hits are free, never refused


def test_budget_must_be_a_non_negative_number():
    with pytest.raises(UserError, match="budget-usd"):
        Ledger(budget_usd=-1)
    with pytest.raises(UserError, match="budget-usd"):
        Ledger(budget_usd=float("nan"))
    free = Ledger(budget_usd=0.0)
    free.check_budget(0.0)
    with pytest.raises(BudgetExceeded):
        free.check_budget(1e-9)


def test_free_local_models_never_hit_the_budget(tmp_path):
    llm = ScriptedLLM()
    llm.price = Price(0, 0, 0, 0)
    ledger = Ledger(budget_usd=0.0)
    cached = CachedLLM(llm, ResponseCache(tmp_path / "c.sqlite"), template_version="v1", ledger=ledger)
    out = cached.complete([{"role": "user", "content": "q"}])
    assert replace(out, cost_usd=0.0) == out
