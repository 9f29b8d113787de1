"""The Anthropic client at the HTTP layer: request shape, SDK retries, prompt caching, batches, costs.

The SDK talks to a mock transport serving responses in the API's documented format
(tests/backends/fixtures/anthropic_*.json), so every byte we send is inspected.
"""
import copy
import json
import os
import time
from pathlib import Path

import orjson
import pytest

anthropic = pytest.importorskip("anthropic")
import anthropic._base_client as sdk_base  # noqa: E402

from backends.anthropic_backend import AnthropicLLM, message_request  # noqa: E402
from backends.llm import LLMError, Request, SamplingParams  # noqa: E402
from backends.pricing import anthropic_price  # noqa: E402
from k1core.errors import UserError  # noqa: E402

# The SDK moved from httpx to httpx2; use whichever module its client is built on.
http = getattr(sdk_base, "httpx2", None) or sdk_base.httpx
FIXTURES = Path(__file__).parent / "fixtures"
MODEL = "claude-haiku-4-5"
SYSTEM = "You schedule tasks. " * 200
CHAT = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Tasks: A(3h), B(4h), B after A."}]


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"anthropic_{name}.json").read_text())


class Server:
    """Scripted responses per (method, path); records every request it sees with its arrival time."""

    def __init__(self, routes):
        self.routes = {key: list(responses) for key, responses in routes.items()}
        self.seen = []

    def __call__(self, request):
        self.seen.append((request.method, request.url.path, request.content, time.perf_counter()))
        responses = self.routes[(request.method, request.url.path)]
        response = responses.pop(0) if len(responses) > 1 else responses[0]
        return response(request) if callable(response) else response

    def bodies(self, method, path):
        return [orjson.loads(body) for m, p, body, _ in self.seen if (m, p) == (method, path)]


def client_for(server, max_retries=3):
    return anthropic.Anthropic(api_key="sk-test", max_retries=max_retries,
                               http_client=http.Client(transport=http.MockTransport(server)))


def ok(body):
    return http.Response(200, json=body)


def test_request_shape_has_model_max_tokens_and_cache_control_on_the_system_prompt():
    server = Server({("POST", "/v1/messages"): [ok(fixture("message"))]})
    llm = AnthropicLLM(MODEL, client=client_for(server))
    completion = llm.complete(CHAT, SamplingParams(max_tokens=300, stop=("###",)))
    [body] = server.bodies("POST", "/v1/messages")
    assert body["model"] == MODEL and body["max_tokens"] == 300 and body["temperature"] == 0.0
    assert body["system"] == [{"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}]
    assert body["messages"] == [{"role": "user", "content": CHAT[1]["content"]}]
    assert body["stop_sequences"] == ["###"] and "top_p" not in body
    assert completion.text == "Schedule A before B; total 7 hours."
    assert (completion.input_tokens, completion.output_tokens, completion.cache_write_tokens) == (12, 6, 2100)
    assert completion.backend == "anthropic" and completion.stop_reason == "end_turn"


def test_cost_arithmetic_for_cache_write_then_cache_read():
    read = copy.deepcopy(fixture("message"))
    read["usage"].update(cache_creation_input_tokens=0, cache_read_input_tokens=2100)
    server = Server({("POST", "/v1/messages"): [ok(fixture("message")), ok(read)]})
    llm = AnthropicLLM(MODEL, client=client_for(server))
    first, second = llm.complete(CHAT), llm.complete(CHAT)
    # claude-haiku-4-5: $1 in, $5 out, $1.25 cache write, $0.10 cache read per MTok
    assert first.cost_usd == pytest.approx((12 * 1.0 + 6 * 5.0 + 2100 * 1.25) / 1e6)
    assert second.cost_usd == pytest.approx((12 * 1.0 + 6 * 5.0 + 2100 * 0.10) / 1e6)
    assert second.cache_read_tokens == 2100


def test_cache_prefix_flag_marks_a_user_block_and_breakpoints_are_capped():
    messages = [{"role": "user", "content": "static examples", "cache_prefix": True},
                {"role": "assistant", "content": "ok"}, {"role": "user", "content": "the question"}]
    body = message_request(MODEL, messages, SamplingParams(top_p=0.9))
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "static examples", "cache_control": {"type": "ephemeral"}}]
    assert body["messages"][2]["content"] == "the question" and body["top_p"] == 0.9
    too_many = [{"role": "system", "content": "s"}] + [
        {"role": r, "content": "x", "cache_prefix": True} for r in ("user", "assistant", "user", "assistant")]
    with pytest.raises(UserError, match="cache breakpoints"):
        message_request(MODEL, too_many + [{"role": "user", "content": "q"}], SamplingParams())


def test_sdk_retries_529_and_429_honouring_retry_after():
    overloaded = http.Response(529, json=fixture("overloaded"), headers={"retry-after": "0.3"})
    limited = http.Response(429, json={"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}},
                            headers={"retry-after-ms": "200"})
    server = Server({("POST", "/v1/messages"): [overloaded, limited, ok(fixture("message"))]})
    completion = AnthropicLLM(MODEL, client=client_for(server, max_retries=3)).complete(CHAT)
    times = [t for *_, t in server.seen]
    assert len(times) == 3 and completion.output_tokens == 6
    assert times[1] - times[0] >= 0.3 and times[2] - times[1] >= 0.2


def test_no_second_retry_loop_failure_after_max_retries_is_an_llm_error():
    overloaded = http.Response(529, json=fixture("overloaded"), headers={"retry-after": "0.01"})
    server = Server({("POST", "/v1/messages"): [overloaded]})
    with pytest.raises(LLMError, match="529"):
        AnthropicLLM(MODEL, client=client_for(server, max_retries=1)).complete(CHAT)
    assert len(server.seen) == 2  # the first try plus the SDK's one retry, nothing more


def test_bad_key_is_a_user_error_and_missing_key_is_one_line(monkeypatch):
    unauthorized = http.Response(401, json={"type": "error", "error": {"type": "authentication_error",
                                                                       "message": "invalid x-api-key"}})
    server = Server({("POST", "/v1/messages"): [unauthorized]})
    with pytest.raises(UserError, match="ANTHROPIC_API_KEY"):
        AnthropicLLM(MODEL, client=client_for(server)).complete(CHAT)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(UserError, match="ANTHROPIC_API_KEY is not set"):
        AnthropicLLM(MODEL)
    with pytest.raises(UserError, match="no price known"):
        AnthropicLLM("gpt-4o", client=client_for(server))


def batch_server(in_progress_polls=1):
    """A batch API: create, `in_progress_polls` polls in progress then ended, results with one error."""
    def results(request):
        [created] = [orjson.loads(b) for m, p, b, _ in server.seen if (m, p) == ("POST", "/v1/messages/batches")]
        ids = [r["custom_id"] for r in created["requests"]]
        lines = [{"custom_id": ids[0], "result": {"type": "succeeded", "message": fixture("message")}}]
        lines += [{"custom_id": cid, "result": {"type": "errored", "error": fixture("overloaded")}} for cid in ids[1:]]
        return http.Response(200, content=b"\n".join(orjson.dumps(line) for line in lines))

    batch_path = "/v1/messages/batches/msgbatch_013Zva2CMHLNnXjNJJKqJ2EF"
    polls = [ok(fixture("batch_in_progress"))] * in_progress_polls + [ok(fixture("batch_ended"))]
    server = Server({("POST", "/v1/messages/batches"): [ok(fixture("batch_in_progress"))],
                     ("GET", batch_path): polls, ("GET", batch_path + "/results"): [results],
                     ("POST", "/v1/messages"): [ok(fixture("message"))]})
    return server


def test_message_batch_is_half_price_retries_errored_items_and_reattaches_after_a_kill(tmp_path):
    requests = [Request(CHAT, SamplingParams(max_tokens=50)),
                Request([{"role": "user", "content": "other"}], SamplingParams(max_tokens=50)),
                Request(CHAT, SamplingParams(max_tokens=50))]  # a duplicate shares the first's entry
    server = batch_server()
    llm = AnthropicLLM(MODEL, client=client_for(server), use_batches=True, batch_dir=tmp_path, poll_interval_s=0)
    seen_progress = []
    out = llm.complete_many(requests, progress=lambda done, total: seen_progress.append((done, total)))
    [created] = server.bodies("POST", "/v1/messages/batches")
    assert len(created["requests"]) == 2
    params = created["requests"][0]["params"]
    assert params["system"][0]["cache_control"] and params["temperature"] == 0.0 and params["max_tokens"] == 50
    full = anthropic_price(MODEL).cost_usd(12, 6, 0, 2100)
    assert out[0].batched and out[0].cost_usd == pytest.approx(full / 2) and out[2] == out[0]
    assert not out[1].batched and out[1].cost_usd == pytest.approx(full)  # errored -> retried synchronously
    assert seen_progress[-1] == (2, 2)
    state = list(tmp_path.glob("anthropic-batch-*.json"))
    assert len(state) == 1 and orjson.loads(state[0].read_bytes())["batch_id"].startswith("msgbatch_")

    # A new process issuing the same bulk call re-attaches to the persisted batch: no second submission.
    again = batch_server(in_progress_polls=0)
    llm2 = AnthropicLLM(MODEL, client=client_for(again), use_batches=True, batch_dir=tmp_path, poll_interval_s=0)
    again.routes[("GET", "/v1/messages/batches/msgbatch_013Zva2CMHLNnXjNJJKqJ2EF/results")] = [
        server.routes[("GET", "/v1/messages/batches/msgbatch_013Zva2CMHLNnXjNJJKqJ2EF/results")][0]]
    out2 = llm2.complete_many(requests)
    assert not again.bodies("POST", "/v1/messages/batches")
    assert out2[0].text == out[0].text


@pytest.mark.skipif(not os.environ.get("ANTHROPIC_API_KEY"), reason="live test needs ANTHROPIC_API_KEY")
def test_live_call_returns_text_tokens_and_cost():
    completion = AnthropicLLM(MODEL, max_retries=2).complete(
        [{"role": "user", "content": "Reply with the single word: pong"}], SamplingParams(max_tokens=10))
    assert "pong" in completion.text.lower()
    assert completion.input_tokens > 0 and completion.output_tokens > 0 and completion.cost_usd > 0
