"""The OpenAI-compatible client against a real HTTP server on 127.0.0.1 (http.server in a thread)."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from backends.llm import LLMError, Request, SamplingParams
from backends.openai_backend import OpenAICompatibleLLM
from backends.pricing import Price
from backends.spec import build_llm
from k1core.errors import UserError

REPLY = {"id": "chatcmpl-1", "object": "chat.completion", "model": "qwen2.5:7b",
         "choices": [{"index": 0, "message": {"role": "assistant", "content": "5"}, "finish_reason": "stop"}],
         "usage": {"prompt_tokens": 20, "completion_tokens": 1, "total_tokens": 21,
                   "prompt_tokens_details": {"cached_tokens": 8}}}


def send_json(handler: BaseHTTPRequestHandler, status: int, payload) -> None:
    """Answer a request with `payload` (a dict as JSON, or raw bytes)."""
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


@pytest.fixture
def server():
    """A chat server that records request bodies; `server.reply` is (status, body) for the next call."""
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.append((self.path, json.loads(body), self.headers.get("Authorization")))
            send_json(self, *httpd.reply)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.reply, httpd.seen = (200, REPLY), seen
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_request_body_and_completion(server):
    llm = build_llm(f"openai:{server.url}#qwen2.5:7b")
    chat = [{"role": "system", "content": "terse", "cache_prefix": True}, {"role": "user", "content": "2+3?"}]
    completion = llm.complete(chat, SamplingParams(max_tokens=5, seed=3, stop=("\n",)))
    [(path, body, auth)] = server.seen
    assert path == "/v1/chat/completions" and auth is None
    assert body == {"model": "qwen2.5:7b", "messages": [{"role": "system", "content": "terse"},
                                                        {"role": "user", "content": "2+3?"}],
                    "temperature": 0.0, "top_p": 1.0, "max_tokens": 5, "seed": 3, "stop": ["\n"]}
    assert completion.text == "5" and completion.stop_reason == "stop" and completion.backend == "openai"
    assert (completion.input_tokens, completion.cache_read_tokens, completion.output_tokens) == (12, 8, 1)
    assert completion.cost_usd == 0.0


def test_priced_server_and_api_key(server):
    llm = OpenAICompatibleLLM(server.url, "m", api_key="secret", price=Price(1.0, 2.0, 0.0, 0.5))
    completion = llm.complete([{"role": "user", "content": "hi"}])
    assert server.seen[0][2] == "Bearer secret"
    assert completion.cost_usd == pytest.approx((12 * 1.0 + 1 * 2.0 + 8 * 0.5) / 1e6)


def test_server_errors_and_malformed_replies_are_llm_errors(server):
    llm = OpenAICompatibleLLM(server.url, "m")
    server.reply = (500, {"error": "boom"})
    with pytest.raises(LLMError, match="returned 500"):
        llm.complete([{"role": "user", "content": "hi"}])
    server.reply = (200, b"not json")
    with pytest.raises(LLMError, match="malformed"):
        llm.complete([{"role": "user", "content": "hi"}])
    server.reply = (200, {"choices": []})
    with pytest.raises(LLMError, match="malformed"):
        llm.complete([{"role": "user", "content": "hi"}])


def test_unreachable_server_is_a_user_error():
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(UserError, match="cannot reach"):
        OpenAICompatibleLLM(f"http://127.0.0.1:{port}/v1", "m").complete([{"role": "user", "content": "hi"}])


def test_bulk_calls_keep_parallel_requests_in_flight_and_answer_in_order():
    """A server that answers slowly: complete_many has exactly `parallel` requests open at a time."""
    state = {"open": 0, "most": 0}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with lock:
                state["open"] += 1
                state["most"] = max(state["most"], state["open"])
            threading.Event().wait(0.15)
            with lock:
                state["open"] -= 1
            send_json(self, 200, {**REPLY, "choices": [{"index": 0, "finish_reason": "stop", "message": {
                "role": "assistant", "content": body["messages"][-1]["content"]}}]})

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        llm = OpenAICompatibleLLM(f"http://127.0.0.1:{httpd.server_address[1]}/v1", "m", parallel=3)
        requests = [Request([{"role": "user", "content": f"q{i}"}]) for i in range(8)]
        seen, heard = [], []
        out = llm.complete_many(requests, progress=lambda d, n: seen.append(d), on_result=lambda i, c: heard.append(i))
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert [c.text for c in out] == [f"q{i}" for i in range(8)]
    assert state["most"] == 3 and seen == list(range(1, 9)) and sorted(heard) == list(range(8))


def test_a_failing_request_in_a_bulk_call_is_raised_after_those_in_flight(server):
    server.reply = (500, {"error": "overloaded"})
    llm = OpenAICompatibleLLM(server.url, "m", parallel=2)
    with pytest.raises(LLMError, match="returned 500"):
        llm.complete_many([Request([{"role": "user", "content": f"q{i}"}]) for i in range(30)])
    assert len(server.seen) < 30  # requests not yet sent when the first failure came back were never sent
